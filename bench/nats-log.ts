/**
 * The log engines under the capture's append pattern, in one run: the embedded log, an R1 stream and
 * an R3 stream on a 3-node NATS cluster on loopback (test/support/nats-cluster.ts). Each append is
 * what the capture hands the log: `--batch` Debezium-like records (~450 bytes, partitioned by key
 * over `--partitions`) with its checkpoint, awaited before the next (the capture never overlaps
 * appends). Then every record is read back partition by partition (what a consumer group does).
 *
 *   npx tsx bench/nats-log.ts [--records 100000] [--batch 500] [--partitions 4]
 *
 * This measures the log side of capture, not decoding from PostgreSQL (bench/capture/ does that):
 * the capture's own ceiling on this machine is the lower of the two.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { EventLog } from '../src/core/event-log.ts';
import type { AppendRecord } from '../src/core/record.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { NatsEventLog } from '../src/log/nats/nats-event-log.ts';
import { NatsCluster } from '../test/support/nats-cluster.ts';

const { values: args } = parseArgs({
  options: {
    records: { type: 'string', default: '100000' },
    batch: { type: 'string', default: '500' },
    partitions: { type: 'string', default: '4' },
  },
});
const TOTAL = Number(args.records);
const BATCH = Number(args.batch);
const PARTITIONS = Number(args.partitions);
const TOPIC = 'shop.public.orders';

function makeRecords(): AppendRecord[] {
  const now = 1_700_000_000_000;
  return Array.from({ length: TOTAL }, (_, i) => {
    const value = JSON.stringify({
      before: null,
      after: {
        id: i,
        customer_id: (i * 7919) % 10_007,
        status: 'paid',
        total: ((i % 997) * 1.37).toFixed(2),
      },
      source: {
        version: '2.5.0',
        connector: 'postgresql',
        name: 'shop',
        ts_ms: now + i,
        db: 'shop',
        schema: 'public',
        table: 'orders',
        txId: 1000 + (i >> 3),
        lsn: 24_000_000 + i * 100,
      },
      op: 'c',
      ts_ms: now + i,
      note: 'x'.repeat(60),
    });
    return { topic: TOPIC, key: JSON.stringify({ id: i }), value, headers: {}, timestamp: now + i };
  });
}

interface Result {
  readonly engine: string;
  readonly appendPerSecond: number;
  readonly readPerSecond: number;
}

async function measure(engine: string, log: EventLog, records: AppendRecord[]): Promise<Result> {
  const t0 = performance.now();
  for (let i = 0; i < records.length; i += BATCH) {
    await log.append(records.slice(i, i + BATCH), { source: 'bench', position: String(i + BATCH) });
  }
  const appendMs = performance.now() - t0;
  const t1 = performance.now();
  let read = 0;
  for (let p = 0; p < PARTITIONS; p++) {
    for (let offset = 0; ; ) {
      const page = await log.read(TOPIC, p, offset, 1_000);
      if (page.length === 0) break;
      read += page.length;
      offset = page.at(-1)!.offset + 1;
    }
  }
  const readMs = performance.now() - t1;
  if (read !== records.length) throw new Error(`${engine} read back ${read} of ${records.length} records`);
  await log.close();
  return {
    engine,
    appendPerSecond: Math.round((records.length / appendMs) * 1000),
    readPerSecond: Math.round((records.length / readMs) * 1000),
  };
}

async function main(): Promise<void> {
  const records = makeRecords();
  const dir = mkdtempSync(join(tmpdir(), 'tributary-bench-log-'));
  const cluster = await NatsCluster.start();
  const results: Result[] = [];
  try {
    results.push(
      await measure(
        'embedded (SQLite, fsync per append)',
        EmbeddedEventLog.open({ dataDir: dir, defaultPartitions: PARTITIONS }),
        records,
      ),
    );
    for (const replicas of [1, 3]) {
      const log = await NatsEventLog.open({
        servers: cluster.urls,
        name: `bench-r${replicas}`,
        defaultPartitions: PARTITIONS,
        stream: { replicas },
      });
      results.push(await measure(`NATS R${replicas} (3-node loopback cluster)`, log, records));
    }
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const embedded = results[0]!.appendPerSecond;
  console.log(`${TOTAL} records, appends of ${BATCH} with a checkpoint, ${PARTITIONS} partitions\n`);
  console.log('engine                                   append rec/s   × embedded   read rec/s');
  for (const r of results) {
    console.log(
      `${r.engine.padEnd(40)} ${String(r.appendPerSecond).padStart(12)}   ${(r.appendPerSecond / embedded).toFixed(2).padStart(10)}   ${String(r.readPerSecond).padStart(10)}`,
    );
  }
}

await main();
