/**
 * Embedded log engines side by side: our SQLite log against a minimal equivalent on LMDB.
 * Same 200,000 records (4 partitions by Kafka murmur2 of the key, ~400-byte Debezium-like JSON values),
 * batches of 1,000, every batch committed durably with its checkpoint, then everything read back.
 * Each engine runs in its own process so peak RSS is its own.
 *
 *   npx tsx bench/log-engines.ts [--records 200000] [--partitions 4] [--rounds 1]
 *
 * The machine may be shared, so CPU time is reported beside wall time: records per CPU-second of the
 * process is the steadier figure when other work competes for the cores.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open as openLmdb } from 'lmdb';
import type { AppendRecord, StoredRecord } from '../src/core/record.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { partitionForKey } from '../src/log/partitioner.ts';

const ENGINES = ['sqlite', 'lmdb-async', 'lmdb-sync'] as const;
type Engine = (typeof ENGINES)[number];
const TOPIC = 'shop.public.orders';
const BATCH = 1_000;

interface Result {
  engine: Engine;
  appendPerSecond: number;
  appendPerCpuSecond: number;
  readPerSecond: number;
  peakRssMiB: number;
  /** Peak RSS minus the peak reached while generating the records: what the engine itself added. */
  engineRssMiB: number;
  diskMiB: number;
}

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string' },
    records: { type: 'string', default: '200000' },
    partitions: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '1' },
  },
});
const total = Number(args.records);
const PARTITIONS = Number(args.partitions);

function makeRecords(): AppendRecord[] {
  const now = 1_700_000_000_000;
  return Array.from({ length: total }, (_, i) => {
    const after = {
      id: i,
      customer_id: (i * 7919) % 10_007,
      status: 'paid',
      total: ((i % 997) * 1.37).toFixed(2),
    };
    const source = { version: '2.5.0', connector: 'postgresql', name: 'shop', ts_ms: now + i, db: 'shop' };
    const value = JSON.stringify({
      before: null,
      after: { ...after, note: 'x'.repeat(60), shipping_address: `${i} Main Street, Springfield` },
      source: {
        ...source,
        schema: 'public',
        table: 'orders',
        txId: 1000 + (i >> 3),
        lsn: 24_000_000 + i * 100,
      },
      op: 'c',
      ts_ms: now + i,
    });
    return { topic: TOPIC, key: JSON.stringify({ id: i }), value, headers: {}, timestamp: now + i };
  });
}

async function runSqlite(dir: string, records: AppendRecord[]): Promise<Timings> {
  const log = EmbeddedEventLog.open({ dataDir: dir, defaultPartitions: PARTITIONS, durable: true });
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < records.length; i += BATCH) {
    await log.append(records.slice(i, i + BATCH), { source: 'bench', position: String(i + BATCH) });
  }
  const appendMs = performance.now() - t0;
  const appendCpuMs = cpuMs(process.cpuUsage(cpu0));
  const t1 = performance.now();
  let read = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (let offset = 0; ; ) {
      const page = await log.read(TOPIC, p, offset, BATCH);
      if (page.length === 0) break;
      read += page.length;
      offset = page.at(-1)!.offset + 1;
    }
  }
  const readMs = performance.now() - t1;
  if (read !== records.length) throw new Error(`sqlite read ${read} of ${records.length}`);
  await log.close();
  return { appendMs, appendCpuMs, readMs };
}

/** The same layout on LMDB: key [topic, partition, offset], value the record, checkpoint in the same txn. */
async function runLmdb(dir: string, records: AppendRecord[], sync: boolean): Promise<Timings> {
  const db = openLmdb({ path: join(dir, 'log.mdb'), compression: false, overlappingSync: !sync });
  const next = new Array<number>(PARTITIONS).fill(0);
  const write = (batch: AppendRecord[], position: string) => {
    for (const r of batch) {
      const p = r.key === null ? 0 : partitionForKey(r.key, PARTITIONS);
      db.put([r.topic, p, next[p]!++], {
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestamp: r.timestamp,
      });
    }
    db.put(['__checkpoint', 'bench'], position);
  };
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < records.length; i += BATCH) {
    const batch = records.slice(i, i + BATCH);
    if (sync) db.transactionSync(() => write(batch, String(i + BATCH)));
    else {
      await db.transaction(() => write(batch, String(i + BATCH)));
      await db.flushed; // durable before the next batch, like the SQLite append
    }
  }
  const appendMs = performance.now() - t0;
  const appendCpuMs = cpuMs(process.cpuUsage(cpu0));
  const t1 = performance.now();
  let read = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    const out: StoredRecord[] = [];
    for (const { key, value } of db.getRange({ start: [TOPIC, p, 0], end: [TOPIC, p + 1] })) {
      const offset = (key as [string, number, number])[2];
      out.push({
        ...(value as Omit<StoredRecord, 'topic' | 'partition' | 'offset'>),
        topic: TOPIC,
        partition: p,
        offset,
      });
    }
    read += out.length;
  }
  const readMs = performance.now() - t1;
  if (read !== records.length) throw new Error(`lmdb read ${read} of ${records.length}`);
  await db.close();
  return { appendMs, appendCpuMs, readMs };
}

interface Timings {
  appendMs: number;
  appendCpuMs: number;
  readMs: number;
}

const cpuMs = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / 1000;

async function child(engine: Engine): Promise<void> {
  const records = makeRecords();
  const baselineKiB = process.resourceUsage().maxRSS;
  const dir = mkdtempSync(join(tmpdir(), `tributary-bench-${engine}-`));
  try {
    const { appendMs, appendCpuMs, readMs } =
      engine === 'sqlite'
        ? await runSqlite(dir, records)
        : await runLmdb(dir, records, engine === 'lmdb-sync');
    const diskKiB = Number(execFileSync('du', ['-sk', dir], { encoding: 'utf8' }).split('\t')[0]);
    const result: Result = {
      engine,
      appendPerSecond: Math.round((records.length / appendMs) * 1000),
      appendPerCpuSecond: Math.round((records.length / appendCpuMs) * 1000),
      readPerSecond: Math.round((records.length / readMs) * 1000),
      peakRssMiB: Math.round(process.resourceUsage().maxRSS / 1024),
      engineRssMiB: Math.round((process.resourceUsage().maxRSS - baselineKiB) / 1024),
      diskMiB: Math.round(diskKiB / 1024),
    };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function parent(): void {
  const sample = makeRecords()[0]!;
  console.log(
    `${total} records, ${BATCH}/batch, ${PARTITIONS} partitions, value ${sample.value!.length} bytes`,
  );
  const header = ['append rec/s', 'rec/CPU-s', 'read rec/s', 'peak RSS MiB', 'engine +MiB', 'disk MiB'];
  console.log(`engine     ${header.map((h) => h.padStart(13)).join(' ')}`);
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const engine of ENGINES) {
      const out = execFileSync(
        process.execPath,
        [
          '--import',
          'tsx',
          import.meta.filename,
          '--engine',
          engine,
          '--records',
          `${total}`,
          '--partitions',
          `${PARTITIONS}`,
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const r = JSON.parse(out.trim().split('\n').at(-1)!) as Result;
      const cells = [
        r.appendPerSecond,
        r.appendPerCpuSecond,
        r.readPerSecond,
        r.peakRssMiB,
        r.engineRssMiB,
        r.diskMiB,
      ];
      console.log(`${r.engine.padEnd(11)}${cells.map((n) => String(n).padStart(13)).join(' ')}`);
    }
  }
  console.log(
    'sqlite: synchronous=FULL, WAL; lmdb-async: overlappingSync + await flushed; lmdb-sync: fsync in commit',
  );
}

if (args.engine === undefined) parent();
else if ((ENGINES as readonly string[]).includes(args.engine)) await child(args.engine as Engine);
else throw new Error(`--engine must be one of ${ENGINES.join(', ')}`);
