/**
 * The lake sink's throughput, query times, compaction and memory, in one process.
 *
 *   npx tsx bench/lake.ts [--orders 1000000] [--batch 50000] [--updates 0.2] [--no-read-ahead]
 *     [--via-worker] [--no-history]
 *
 * 1. changes/s into bronze + silver: `--orders` inserts of an orders-like table then
 *    `--updates` × as many updates, as Debezium records (as the worker hands them from the
 *    embedded log: kept as its row batches, values left as bytes until read), through the lake
 *    sink's `write` and transactional target, one commit (snapshot + offsets) per `--batch`
 *    records (a commit every few seconds or less), each batch offering the next one as the
 *    worker's lane does (read and staged ahead while DuckDB writes; not with `--no-read-ahead`).
 *    Columns are typed by a schema history record, as a configured sink's are (`--no-history`: by
 *    value). Timed from the first transaction to the last commit; files are fsynced. With
 *    `--via-worker`, also through a replica's `ConsumerRunner` reading an embedded log.
 * 2. baseline: DuckDB's own `COPY (SELECT * FROM read_json(<the same records as NDJSON>)) TO
 *    'x.parquet'` in the same run (parsing the same JSON text, writing one Parquet file); ratio.
 * 3. silver count/aggregate and the gold models' query time over the result, before and after
 *    compaction, and the files before/after.
 *    Also what one copy-on-write commit would cost at that size (rewriting silver), against the
 *    mean merge-on-read commit (the batch's delta files).
 * 4. peak RSS of the process (the sink's DuckDB runs in it), sampled every 50 ms.
 * 5. `recordsOnly`: the same records made with no sink (the worker's decoding, which the lake's
 *    figures include: the part of them that is not the sink's).
 */
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DuckDBInstance } from '@duckdb/node-api';
import type { ConsumerRecord } from '../src/consumers/define-consumer.ts';
import { consumerRecord, recordValueText } from '../src/consumers/worker/lazy-record.ts';
import type { Record } from '../src/core/record.ts';
import { encodeRecords, recordsCodec } from '../src/log/embedded/record-batch.ts';
import { LakeCatalog } from '../src/sinks/lake/lake-catalog.ts';
import { compact } from '../src/sinks/lake/lake-maintenance.ts';
import { queryLake } from '../src/sinks/lake/lake-query.ts';
import { LAKE_OPTIONS, lakeWrite } from '../src/sinks/lake/lake-sink.ts';
import { LakeTarget } from '../src/sinks/lake/lake-target.ts';
import { lakeProgress, orderChange, writeHistory } from './lake-records.ts';
import { runSinkReplica } from './sink-worker.ts';

const { values } = parseArgs({
  options: {
    orders: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '50000' },
    updates: { type: 'string', default: '0.2' },
    'no-read-ahead': { type: 'boolean', default: false },
    'via-worker': { type: 'boolean', default: false },
    'no-history': { type: 'boolean', default: false },
  },
});
const orders = Number(values.orders);
const TOPIC = 'bench.public.orders';
const TIMESTAMP = 1_767_323_045_123;
const batch = Number(values.batch);
const updates = Math.round(orders * Number(values.updates));

let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, process.memoryUsage().rss);
}, 50);

/**
 * The records, kept per batch as the embedded log keeps appended records (a `records` row batch:
 * UTF-8 bytes, off the JavaScript heap), and made into records as the worker hands them when a
 * batch is read: opened by the log's codec (keys decoded, values left as bytes until read,
 * core/blob-record.ts), wrapped for the handler (values parsed on access). So the bench process
 * holds a few batches of records, not all of them (a heap of every record made its garbage
 * collection, not the lake, the cost measured).
 */
const batches: { header: string; data: Buffer }[] = [];

function makeBatches(): void {
  for (let from = 0; from < total; from += batch) {
    const records: Record[] = [];
    for (let i = from; i < Math.min(total, from + batch); i++) {
      const change = orderChange(i, orders);
      records.push({ topic: TOPIC, key: change.key, value: change.value, headers: {}, timestamp: TIMESTAMP });
    }
    const encoded = encodeRecords(
      records,
      records.map(() => null),
      records.map((_, j) => j),
    );
    batches.push({ header: encoded.header, data: Buffer.from(encoded.data) });
  }
}

/** Batch `k`'s records as the worker hands them ([] past the last). */
function recordsOf(k: number): ConsumerRecord<unknown>[] {
  const b = batches[k];
  if (!b) return [];
  const opened = recordsCodec.open(b.header, b.data);
  const out: ConsumerRecord<unknown>[] = [];
  for (let j = 0; j < opened.count; j++) out.push(consumerRecord(opened.stored!(j, TOPIC, 0, k * batch + j)));
  return out;
}

/**
 * `--via-worker`: the same records appended to an embedded log, then written into another lake by
 * a replica's `ConsumerRunner` running the lake sink (`batchSize` = `--batch`), as a configured
 * sink runs: log reads, the lane, read-ahead, commits. Timed from the assignment until the lake's
 * stored offset reaches the end.
 */
async function throughWorker() {
  const dataDir = mkdtempSync(join(tmpdir(), 'lake-bench-worker-'));
  if (!values['no-history']) await writeHistory(dataDir);
  const spec = {
    name: 'lake-worker',
    common: { kind: 'lake', batchSize: batch },
    options: LAKE_OPTIONS.parse({
      path: join(dataDir, 'lake'),
      compactFiles: 100_000,
      modelsRefreshChanges: 1e9,
      modelsRefreshSeconds: 1e6,
    }),
    topics: ['bench.public.orders'],
  };
  const progress = lakeProgress(dataDir, spec.name, total);
  try {
    // A batch of records at a time, as the bench's lake path decodes them.
    const chunks = function* () {
      for (let k = 0; k < batches.length; k++) {
        yield recordsOf(k).map((r) => ({
          topic: r.topic,
          key: r.key,
          value: recordValueText(r)!,
          timestamp: r.timestamp,
        }));
      }
    };
    const run = await runSinkReplica(
      dataDir,
      'bench.public.orders',
      chunks(),
      spec,
      { name: spec.name, dataDir, topicPrefix: 'bench', format: 'debezium' },
      progress.done,
    );
    return { seconds: run.seconds, cpuSeconds: +run.cpuSeconds.toFixed(2) };
  } finally {
    progress.catalog()?.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const total = orders + updates;
const root = mkdtempSync(join(tmpdir(), 'lake-bench-'));
const historyDir = mkdtempSync(join(tmpdir(), 'lake-bench-history-'));
try {
  const options = LAKE_OPTIONS.parse({
    compactFiles: 100_000,
    modelsRefreshChanges: 1e9,
    modelsRefreshSeconds: 1e6,
  });
  if (!values['no-history']) await writeHistory(historyDir);
  const target = new LakeTarget(root, options, { dataDir: historyDir, topicPrefix: 'bench' });
  const session = await target.open();
  const write = lakeWrite();
  // The records' bytes are made before the clock starts; each batch is decoded as it is read.
  makeBatches();
  const started = performance.now();
  const cpu0 = process.cpuUsage();
  let commits = 0;
  let next = recordsOf(0);
  for (let k = 0; k < batches.length; k++) {
    const slice = next;
    next = recordsOf(k + 1);
    const offered = values['no-read-ahead'] ? [] : next;
    await session.transaction(
      'bench',
      [{ topic: 'bench.public.orders', partition: 0, offset: k * batch + slice.length }],
      async (tx) => {
        // As the sink's replica: the next batch offered for reading ahead (a full one waits).
        await write(slice, tx, { upcoming: () => offered });
      },
    );
    commits++;
  }
  const lakeSeconds = (performance.now() - started) / 1000;
  const lakeCpu = process.cpuUsage(cpu0);
  await session.close();

  // The records alone: the same decoding with no sink (two batches held, as the loop above holds
  // them): the part of the lake's time that is the worker's making of records, not the sink's.
  const recordsStarted = performance.now();
  const cpuRecords = process.cpuUsage();
  let held = [recordsOf(0)];
  for (let k = 0; k < batches.length; k++) held = [held.at(-1)!, recordsOf(k + 1)];
  const recordsSeconds = (performance.now() - recordsStarted) / 1000;
  const recordsCpu = process.cpuUsage(cpuRecords);

  // Baseline: DuckDB parses the same JSON text and writes one Parquet file.
  const ndjson = join(root, 'records.ndjson');
  writeFileSync(ndjson, '');
  for (let k = 0; k < batches.length; k++) {
    const text = recordsOf(k).map((r) => `${recordValueText(r)}\n`);
    appendFileSync(ndjson, text.join(''));
  }
  const viaWorker = values['via-worker'] ? await throughWorker() : undefined;
  batches.length = 0;
  const duck = await DuckDBInstance.create(':memory:', { threads: '2' });
  const c = await duck.connect();
  const t0 = performance.now();
  const cpu1 = process.cpuUsage();
  await c.run(
    `COPY (SELECT * FROM read_json('${ndjson}', format = 'newline_delimited')) TO '${join(root, 'x.parquet')}' (FORMAT parquet)`,
  );
  const copySeconds = (performance.now() - t0) / 1000;
  const copyCpu = process.cpuUsage(cpu1);
  const cpuSeconds = (u: NodeJS.CpuUsage) => +((u.user + u.system) / 1e6).toFixed(2);
  c.closeSync();
  duck.closeSync();

  const catalog = new LakeCatalog(join(root, 'catalog.db'));
  const filesBefore = catalog.files(catalog.currentSnapshot()).length;
  const time = async (sql: string) => {
    const t = performance.now();
    const r = await queryLake(root, sql);
    return { ms: Math.round(performance.now() - t), rows: r.rows };
  };
  const AGG =
    'SELECT count(*), sum(total_amount::DECIMAL(18,2)), count(DISTINCT customer_id) FROM silver.orders';
  const GOLD = `SELECT customer_id, count(*) AS orders, sum(total_amount::DECIMAL(18,2)) AS ltv FROM silver.orders GROUP BY 1 ORDER BY ltv DESC LIMIT 10`;
  const silverBefore = await time(AGG);
  // What one copy-on-write commit would cost: rewriting the table's whole current state.
  const cow = await DuckDBInstance.create(':memory:', { threads: '2' });
  const cowConn = await cow.connect();
  const { createLakeViews } = await import('../src/sinks/lake/lake-views.ts');
  await createLakeViews(cowConn, catalog, root, { snapshot: catalog.currentSnapshot() });
  const tw = performance.now();
  await cowConn.run(`COPY (SELECT * FROM silver.orders) TO '${join(root, 'cow.parquet')}' (FORMAT parquet)`);
  const cowMs = Math.round(performance.now() - tw);
  cowConn.closeSync();
  cow.closeSync();
  const goldBefore = await time(GOLD);
  const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
  const conn = await inst.connect();
  const tc = performance.now();
  await compact(conn, catalog, root, { all: true });
  const compactSeconds = (performance.now() - tc) / 1000;
  conn.closeSync();
  inst.closeSync();
  const filesAfter = catalog.files(catalog.currentSnapshot()).length;
  catalog.close();
  const silverAfter = await time(AGG);
  const goldAfter = await time(GOLD);
  clearInterval(sampler);
  const rate = total / lakeSeconds;
  const copyRate = total / copySeconds;
  const out = {
    changes: total,
    batch,
    commits,
    lakeSeconds: +lakeSeconds.toFixed(2),
    changesPerSecond: Math.round(rate),
    duckdbCopySeconds: +copySeconds.toFixed(2),
    duckdbCopyRowsPerSecond: Math.round(copyRate),
    ratio: +(rate / copyRate).toFixed(2),
    ...(viaWorker
      ? {
          viaWorker: {
            seconds: +viaWorker.seconds.toFixed(2),
            changesPerSecond: Math.round(total / viaWorker.seconds),
            ratio: +(total / viaWorker.seconds / copyRate).toFixed(2),
            cpuSeconds: viaWorker.cpuSeconds,
          },
        }
      : {}),
    // On a shared machine wall time depends on the load: the CPU seconds each side used.
    lakeCpuSeconds: cpuSeconds(lakeCpu),
    // Included in the lake's figures: making the records as the worker hands them.
    recordsOnly: { seconds: +recordsSeconds.toFixed(2), cpuSeconds: cpuSeconds(recordsCpu) },
    duckdbCopyCpuSeconds: cpuSeconds(copyCpu),
    silverAggregateMs: { beforeCompaction: silverBefore.ms, afterCompaction: silverAfter.ms },
    copyOnWriteCommitMs: cowMs,
    mergeOnReadCommitMs: Math.round((lakeSeconds * 1000) / commits),
    silverRows: String(silverBefore.rows[0]?.[0]),
    goldQueryMs: { beforeCompaction: goldBefore.ms, afterCompaction: goldAfter.ms },
    files: { beforeCompaction: filesBefore, afterCompaction: filesAfter },
    compactionSeconds: +compactSeconds.toFixed(2),
    peakRssMb: Math.round(peak / 1048576),
  };
  console.log(JSON.stringify(out, null, 2));
} finally {
  rmSync(root, { recursive: true, force: true });
  rmSync(historyDir, { recursive: true, force: true });
}
