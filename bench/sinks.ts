/**
 * Sink benchmark: change records/s into each sink with its offsets in the same transaction (as a
 * replica writes them: batches through the sink's target, the next batch offered for work ahead
 * as the worker's lane offers it), against a baseline writing the same rows in bulk without
 * offsets (PostgreSQL: multi-row INSERT of 5,000 rows per statement through unnest; SQLite: one
 * transaction of prepared inserts; Redis: pipelined HSET), and the ratio. For `table` into
 * PostgreSQL also "via worker": the same records appended to an embedded log and written by a
 * replica's `ConsumerRunner` (log reads, lanes, batches, offsets), what a configured sink does.
 * Batches are each sink's default size (`--batch` overrides). Peak RSS is printed at the end.
 *
 *   npx tsx bench/sinks.ts                          # 100,000 changes, PostgreSQL 18
 *   npx tsx bench/sinks.ts --records 100000 --only table-pg
 *
 * The workload: 70 % inserts of new keys, 25 % updates of a live key, 5 % deletes; the records are
 * Debezium JSON text as the capture writes them (`id`, `name`, `qty`, `big` int8 beyond 2^53,
 * `price` numeric, `created` timestamp). The records are built before the clock starts, their texts
 * flat strings as the log reader's.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Redis } from 'ioredis';
import pg from 'pg';
import { partitionKey } from '../src/consumers/transactional.ts';
import { consumerRecord } from '../src/consumers/worker/lazy-record.ts';
import type { StoredRecord } from '../src/core/record.ts';
import { redisSinkKind } from '../src/sinks/redis/redis-sink.ts';
import type { Sink, SinkKind } from '../src/sinks/sink.ts';
import { tableSinkKind } from '../src/sinks/table/table-sink.ts';
import { startCluster } from '../test/support/pg-cluster.ts';
import { runSinkReplica } from './sink-worker.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    batch: { type: 'string' },
    only: { type: 'string' },
    pg: { type: 'string', default: '18' },
  },
});
const N = Number(args.records);
/** Records per batch: `--batch`, else the sink kind's default, as a replica batches. */
const batchOf = (kind: Pick<SinkKind, 'defaultBatch'>) =>
  Number(args.batch ?? kind.defaultBatch?.maxRecords ?? 500);
const TYPES = { id: 'integer', qty: 'integer', big: 'bigint', price: 'numeric(12,2)', created: 'timestamp' };
let peakRss = 0;
/** CPU time of this process per change in the last `throughSink` (µs): the rest is waiting. */
let sinkCpu = 0;
/** The same with the CPU time of the PostgreSQL backend of the sink's transactions (µs). */
let sinkTotalCpu = 0;
/** The batch size and CPU of the last `throughSink` or `throughWorker`, for its line. */
let batchLabel = '';

/**
 * CPU time (µs) of PostgreSQL backends, from /proc (clock ticks of 10 ms): on a shared, loaded
 * machine the wall time measures the scheduler; CPU time of both sides does not.
 */
function backendCpu(pids: Iterable<number>): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10_000;
}

/** CPU time of this process plus `pids` so far (µs). */
function cpuNow(pids: Iterable<number>): number {
  const own = process.cpuUsage();
  return own.user + own.system + backendCpu(pids);
}
const sampler = setInterval(() => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, 50);

interface Row {
  id: number;
  name: string;
  qty: number;
  big: string;
  price: string;
  created: number;
}

/** The change records, and the rows they leave (for the baselines). */
function workload(): { records: StoredRecord[]; rows: Row[] } {
  const records: StoredRecord[] = [];
  const live: number[] = [];
  const rows: Row[] = [];
  let next = 1;
  let seed = 7;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const source = (offset: number) =>
    `{"version":"0.1.0","connector":"postgresql","name":"bench","ts_ms":1,"snapshot":"false","db":"shop","schema":"public","table":"items","txId":${offset},"lsn":${offset}}`;
  for (let offset = 0; offset < N; offset++) {
    const r = rnd();
    const op: 'c' | 'u' | 'd' = r < 0.7 || live.length < 10 ? 'c' : r < 0.95 ? 'u' : 'd';
    let id: number;
    if (op === 'c') {
      id = next++;
      live.push(id);
    } else {
      const at = Math.floor(rnd() * live.length);
      id = live[at]!;
      if (op === 'd') {
        live[at] = live[live.length - 1]!;
        live.pop();
      }
    }
    const row: Row = {
      id,
      name: `product ${id} ${Math.floor(rnd() * 1e6)}`,
      qty: Math.floor(rnd() * 1000),
      big: String(9007199254740993n + BigInt(offset)),
      price: (Math.floor(rnd() * 1e7) / 100).toFixed(2),
      created: 1_700_000_000_000_000 + offset * 1_000_003,
    };
    if (op === 'c') rows.push(row);
    const after = `{"id":${id},"name":${JSON.stringify(row.name)},"qty":${row.qty},"big":${row.big},"price":"${row.price}","created":${row.created}}`;
    const value =
      op === 'd'
        ? `{"before":{"id":${id}},"after":null,"source":${source(offset)},"op":"d","ts_ms":1}`
        : `{"before":null,"after":${after},"source":${source(offset)},"op":"${op}","ts_ms":1}`;
    records.push({
      topic: 'bench.public.items',
      partition: 0,
      offset,
      // Flat strings decoded from UTF-8, as the log reader hands them: a template literal is a
      // rope that the sink's first read would flatten (in place, promoting the copy), a cost the
      // worker never pays.
      key: Buffer.from(`{"id":${id}}`).toString('utf8'),
      value: Buffer.from(value).toString('utf8'),
      headers: {},
      timestamp: 0,
    });
  }
  return { records, rows };
}

/** Records/s through `sink`, batch by batch, offsets committed with each batch; batches printed. */
async function throughSink(sink: Sink<unknown>, records: StoredRecord[], BATCH: number): Promise<number> {
  const session = await sink.target.open({ connections: 1 });
  const started = performance.now();
  const cpu = process.cpuUsage();
  let backend: { pid: number; start: number } | undefined;
  const logger = { info() {}, warn() {}, error() {}, debug() {} } as never;
  for (let i = 0; i < records.length; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    const last = batch[batch.length - 1]!;
    await session.transaction(
      'bench',
      [{ topic: last.topic, partition: 0, offset: last.offset + 1 }],
      async (tx, stored) => {
        if (backend === undefined && tx instanceof pg.Client) {
          const r = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
          backend = { pid: r.rows[0]!.pid, start: backendCpu([r.rows[0]!.pid]) };
        }
        const from = stored.get(partitionKey(last.topic, 0)) ?? 0;
        const fresh = batch.filter((r) => r.offset >= from).map(consumerRecord);
        // As the worker's lane: the next batch, when it waits in full, for work done ahead.
        const upcoming = () => records.slice(i + BATCH, i + 2 * BATCH).map(consumerRecord);
        await sink.write(fresh, tx, {
          logger,
          metrics: { increment() {} },
          signal: new AbortController().signal,
          attempt: 1,
          tx,
          consumer: 'bench',
          replica: 0,
          upcoming,
        });
      },
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  sinkCpu = (used.user + used.system) / records.length;
  batchLabel = `batches of ${BATCH.toLocaleString('en-US')}; sink CPU ${sinkCpu.toFixed(1)} µs/change here`;
  sinkTotalCpu = sinkCpu + (backend ? (backendCpu([backend.pid]) - backend.start) / records.length : 0);
  await session.close();
  return records.length / seconds;
}

/**
 * Records/s through a replica's worker, as a configured sink runs: the records appended to an
 * embedded log first, then read, batched and written by `ConsumerRunner` (one partition: one
 * lane, with the next batch planned while the target works) until the target's stored offset
 * reaches the end. Timed from the assignment.
 */
async function throughWorker(url: string, options: unknown, records: StoredRecord[]): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-sinks-worker-'));
  const spec = { name: 'bench-worker', common: { kind: 'table' }, options, topics: [records[0]!.topic] };
  const client = new pg.Client(url);
  await client.connect();
  try {
    const stored = async () => {
      const r = await client
        .query<{ n: string }>(
          'select next_offset as n from tributary_consumer_offsets where group_name = $1',
          [spec.name],
        )
        .catch(() => ({ rows: [] as { n: string }[] }));
      return Number(r.rows[0]?.n ?? 0) >= records.length;
    };
    const run = await runSinkReplica(
      dataDir,
      records[0]!.topic,
      [records.map((r) => ({ ...r, value: r.value ?? '' }))],
      spec,
      { ...env, name: spec.name, dataDir },
      stored,
    );
    const batch = (tableSinkKind.defaultBatch?.maxRecords ?? 500).toLocaleString('en-US');
    batchLabel = `worker, batches of ${batch}; CPU here, log reads too, ${((run.cpuSeconds * 1e6) / records.length).toFixed(1)} µs/change`;
    return records.length / run.seconds;
  } finally {
    await client.end();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** Client + server CPU (µs) per change of the sink and per row of the baseline, and their ratio. */
function cpuLine(sinkUs: number, baseUs: number): void {
  console.log(
    `${''.padEnd(16)} CPU, client + PostgreSQL backend: ${sinkUs.toFixed(1)} µs/change, baseline ${baseUs.toFixed(1)} µs/row, ratio ${(baseUs / sinkUs).toFixed(2)}`,
  );
}

function line(name: string, sinkRate: number, baseRate: number, baseline: string): void {
  const f = (n: number) => Math.round(n).toLocaleString('en-US').padStart(10);
  console.log(
    `${name.padEnd(16)} ${f(sinkRate)} changes/s   baseline (${baseline}) ${f(baseRate)} rows/s   ratio ${(sinkRate / baseRate).toFixed(2)}   (${batchLabel})`,
  );
}

const { records, rows } = workload();
console.log(
  `${N.toLocaleString('en-US')} changes (${rows.length.toLocaleString('en-US')} inserts), batches of ${args.batch ?? "each sink's default"}`,
);
const env = { name: 'bench', dataDir: tmpdir(), topicPrefix: 'bench', format: 'debezium' as const };
const want = (k: string) => !args.only || args.only === k;

if (want('table-pg')) {
  const cluster = await startCluster({ version: Number(args.pg) });
  try {
    const admin = new pg.Client(cluster.url());
    await admin.connect();
    await admin.query('create database bench');
    await admin.end();
    const url = cluster.url('bench');
    const sink = (await tableSinkKind.create(
      { target: url, mapping: { 'public.items': { types: TYPES } } },
      env,
    )) as Sink<unknown>;
    const rate = await throughSink(sink, records, batchOf(tableSinkKind));
    const client = new pg.Client(url);
    await client.connect();
    const basePid = (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;
    await client.query(
      'create table base (id integer primary key, name text, qty integer, big bigint, price numeric(12,2), created timestamp)',
    );
    const cpu = cpuNow([basePid]);
    const started = performance.now();
    for (let i = 0; i < rows.length; i += 5000) {
      const chunk = rows.slice(i, i + 5000);
      await client.query(
        `insert into base
         select id, name, qty, big, price, 'epoch'::timestamp + created_us * interval '1 microsecond'
         from unnest($1::int[], $2::text[], $3::int[], $4::bigint[], $5::numeric[], $6::bigint[])
           u(id, name, qty, big, price, created_us)`,
        [
          chunk.map((r) => r.id),
          chunk.map((r) => r.name),
          chunk.map((r) => r.qty),
          chunk.map((r) => r.big),
          chunk.map((r) => r.price),
          chunk.map((r) => String(r.created)),
        ],
      );
    }
    const base = rows.length / ((performance.now() - started) / 1000);
    const baseUs = (cpuNow([basePid]) - cpu) / rows.length;
    await client.end();
    const sinkLabel = batchLabel;
    const worker = await throughWorker(
      url,
      { target: url, schema: 'worker', mapping: { 'public.items': { types: TYPES } } },
      records,
    );
    const workerLabel = batchLabel;
    batchLabel = sinkLabel;
    line('table → pg', rate, base, 'multi-row insert');
    cpuLine(sinkTotalCpu, baseUs);
    batchLabel = workerLabel;
    line('  via worker', worker, base, 'multi-row insert');
  } finally {
    await cluster.stop();
  }
}

if (want('table-sqlite')) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sinks-'));
  try {
    const sink = (await tableSinkKind.create(
      { target: `sqlite:${join(dir, 'sink.db')}`, mapping: { 'public.items': { types: TYPES } } },
      env,
    )) as Sink<unknown>;
    const rate = await throughSink(sink, records, batchOf(tableSinkKind));
    const db = new Database(join(dir, 'base.db'));
    db.pragma('journal_mode = WAL');
    db.exec(
      'create table base (id integer primary key, name text, qty integer, big integer, price text, created text)',
    );
    const insert = db.prepare('insert into base values (?, ?, ?, ?, ?, ?)');
    const started = performance.now();
    db.transaction(() => {
      for (const r of rows) insert.run(r.id, r.name, r.qty, BigInt(r.big), r.price, String(r.created));
    })();
    const base = rows.length / ((performance.now() - started) / 1000);
    db.close();
    line('table → sqlite', rate, base, 'one transaction');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (want('redis')) {
  const prefix = `bench-sinks-${process.pid}`;
  const redis = new Redis('redis://127.0.0.1:6379/0');
  try {
    const sink = (await redisSinkKind.create(
      { key: `${prefix}:items:{id}`, offsetsKey: `${prefix}:offsets` },
      env,
    )) as Sink<unknown>;
    const rate = await throughSink(sink, records, batchOf(redisSinkKind));
    const started = performance.now();
    for (let i = 0; i < rows.length; i += 5000) {
      const pipeline = redis.pipeline();
      for (const r of rows.slice(i, i + 5000)) {
        pipeline.hset(`${prefix}:base:${r.id}`, {
          id: r.id,
          name: r.name,
          qty: r.qty,
          big: r.big,
          price: r.price,
          created: r.created,
        });
      }
      await pipeline.exec();
    }
    const base = rows.length / ((performance.now() - started) / 1000);
    line('redis', rate, base, 'pipelined HSET');
  } finally {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
    redis.disconnect();
  }
}

clearInterval(sampler);
console.log(`peak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
