/**
 * The lake sink's memory against its backlog: the same records (orders-like inserts, then a tenth
 * as many updates, as bench/lake.ts makes them) appended to an embedded log, then a replica's
 * `ConsumerRunner` running the lake sink with its default options (batches of 25,000, compaction
 * by file count) started in a fresh process that catches up with the whole backlog. The process
 * holds only what the sink and its runner hold, so its peak RSS (the kernel's, `maxRSS`) is the
 * sink's: bounded when it does not grow with the backlog.
 *
 *   npx tsx bench/lake-backlog.ts [--backlogs 110000,1100000] [--no-history] [--compact-files N]
 *     [--batch N] [--append N]
 *
 * (`--compact-files`: the sink's `compactFiles`; 100000 turns compaction off in effect. `--batch`:
 * the sink's `batchSize`, 25,000 by default. `--append`: changes per append to the log, 500 by
 * default as the capture appends them; the log keeps each append as one row batch.)
 *
 * Prints, per backlog: seconds, changes/s and CPU seconds of the catch-up, peak RSS, live files
 * and the live bronze and silver files' size.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { LAKE_OPTIONS, lakeSinkKind } from '../src/sinks/lake/lake-sink.ts';
import { lakeProgress, orderChange, writeHistory } from './lake-records.ts';
import { runSinkReplica } from './sink-worker.ts';

const TOPIC = 'bench.public.orders';
const { values } = parseArgs({
  options: {
    backlogs: { type: 'string', default: '110000,1100000' },
    'no-history': { type: 'boolean', default: false },
    child: { type: 'string' },
    total: { type: 'string' },
    'compact-files': { type: 'string' },
    batch: { type: 'string' },
    append: { type: 'string', default: '500' },
  },
});

const perAppend = Number(values.append);
if (!Number.isSafeInteger(perAppend) || perAppend < 1) {
  throw new Error(`--append ${values.append}: give the changes per append as a whole number >= 1`);
}

/**
 * Appends `total` changes (inserts of a tenth less orders, then updates of them) to the log, `per`
 * changes per append (the capture appends at most `capture.maxBatchRecords`, 500 by default).
 */
async function appendBacklog(dataDir: string, total: number, per: number): Promise<void> {
  const orders = Math.round(total / 1.1);
  const log = EmbeddedEventLog.open({ dataDir, durable: false });
  try {
    for (let from = 0; from < total; from += per) {
      const records = [];
      for (let i = from; i < Math.min(total, from + per); i++) {
        const { key, value } = orderChange(i, orders);
        records.push({ topic: TOPIC, key, value, headers: {}, timestamp: 1_767_323_045_123 });
      }
      await log.append(records);
    }
  } finally {
    await log.close();
  }
}

/** In the child: catches up with the backlog of `dataDir`; prints its figures as one JSON line. */
async function catchUp(dataDir: string, total: number): Promise<void> {
  const spec = {
    name: 'lake-backlog',
    common: {
      kind: 'lake',
      batchSize: values.batch ? Number(values.batch) : (lakeSinkKind.defaultBatch?.maxRecords ?? 10_000),
    },
    options: LAKE_OPTIONS.parse({
      path: join(dataDir, 'lake'),
      ...(values['compact-files'] ? { compactFiles: Number(values['compact-files']) } : {}),
    }),
    topics: [TOPIC],
  };
  const progress = lakeProgress(dataDir, spec.name, total);
  const env = { name: spec.name, dataDir, topicPrefix: 'bench', format: 'debezium' as const };
  const run = await runSinkReplica(dataDir, TOPIC, [], spec, env, progress.done);
  const catalog = progress.catalog()!;
  const live = catalog.files(catalog.currentSnapshot());
  catalog.close();
  const mb = (layer: string) =>
    Math.round(live.filter((f) => f.layer === layer).reduce((n, f) => n + f.bytes, 0) / 1e5) / 10;
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  console.log(
    JSON.stringify({ ...run, peakRssMb, files: live.length, bronzeMb: mb('bronze'), silverMb: mb('silver') }),
  );
}

if (values.child) {
  await catchUp(values.child, Number(values.total));
} else {
  const rows = [];
  for (const backlog of values.backlogs.split(',').map(Number)) {
    const dataDir = mkdtempSync(join(tmpdir(), 'lake-backlog-'));
    try {
      if (!values['no-history']) await writeHistory(dataDir);
      await appendBacklog(dataDir, backlog, perAppend);
      const child = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          new URL(import.meta.url).pathname,
          '--child',
          dataDir,
          '--total',
          String(backlog),
          ...(values['compact-files'] ? ['--compact-files', values['compact-files']] : []),
          ...(values.batch ? ['--batch', values.batch] : []),
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
      );
      if (child.status !== 0) throw new Error(`the catch-up process failed (exit ${child.status})`);
      const r = JSON.parse(child.stdout.trim().split('\n').at(-1)!);
      rows.push({
        backlog,
        seconds: +r.seconds.toFixed(2),
        changesPerSecond: Math.round(backlog / r.seconds),
        cpuSeconds: +r.cpuSeconds.toFixed(2),
        peakRssMb: r.peakRssMb,
        liveFiles: r.files,
        bronzeMb: r.bronzeMb,
        silverMb: r.silverMb,
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
  console.table(rows);
}
