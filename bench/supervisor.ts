/**
 * Supervisor benchmark: records/s through the whole consumer path (embedded log → replica
 * processes → a no-op handler → offsets committed), with 1 and with 3 replicas, and the memory
 * (RSS) of each replica process. The log is filled first (Debezium-sized values, 4 partitions,
 * 64 keys); the clock runs from the supervisor's start until the group's lag is 0, so it includes
 * the replicas' start (fork, tsx, module load).
 *
 * With `--nats` the same consumer also runs as a `tributary consumers run` process would
 * (StandaloneConsumer: replica processes sharing partitions through the log's KV bucket, offsets
 * committed there) on an R1 and an R3 stream of a 3-node NATS cluster on loopback, filled with the
 * same records; the clock runs from its start until the group's lag in NATS is 0. Printed beside
 * the embedded runs with the same replica counts, as a ratio.
 *
 *   npx tsx bench/supervisor.ts [--records 200000] [--replicas 1,3] [--nats]
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { StandaloneConsumer } from '../src/consumers/nats/standalone-consumer.ts';
import { Supervisor } from '../src/consumers/supervisor.ts';
import type { EventLog } from '../src/core/event-log.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { NatsEventLog } from '../src/log/nats/nats-event-log.ts';
import { NatsCluster } from '../test/support/nats-cluster.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    replicas: { type: 'string', default: '1,3' },
    nats: { type: 'boolean', default: false },
  },
});
const RECORDS = Number(values.records);
const REPLICAS = values.replicas.split(',').map(Number);
const TOPIC = 'bench.public.orders';
const DEFINE = fileURLToPath(new URL('../src/consumers/define-consumer.ts', import.meta.url));

const value = (i: number) =>
  JSON.stringify({
    before: null,
    after: {
      id: i,
      customer_id: i % 997,
      total_amount: '129.90',
      status: 'pending',
      created_at: 1795296807106123,
    },
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'bench',
      ts_ms: Date.now(),
      db: 'shop',
      schema: 'public',
      table: 'orders',
      txId: i,
      lsn: i * 100,
    },
    op: 'c',
    ts_ms: Date.now(),
    transaction: null,
  });

function rssMb(pid: number): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

interface Result {
  readonly engine: string;
  readonly replicas: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly rss: number[];
}

/** A no-op consumer of `replicas` replicas in a fresh folder; returns the folder and its module. */
function writeNoop(root: string, replicas: number): { consumersDir: string; module: string } {
  const consumersDir = join(root, 'consumers');
  mkdirSync(join(consumersDir, 'noop'), { recursive: true });
  const module = join(consumersDir, 'noop', 'index.ts');
  writeFileSync(
    module,
    `import { defineConsumer } from ${JSON.stringify(DEFINE)};
export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], replicas: ${replicas}, batch: { maxRecords: 500 }, handle() {} });
`,
  );
  return { consumersDir, module };
}

async function fill(log: EventLog): Promise<void> {
  for (let i = 0; i < RECORDS; i += 5000) {
    const n = Math.min(5000, RECORDS - i);
    await log.append(
      Array.from({ length: n }, (_, j) => ({
        topic: TOPIC,
        key: JSON.stringify({ id: (i + j) % 64 }),
        value: value(i + j),
        headers: {},
        timestamp: Date.now(),
      })),
    );
  }
}

async function run(replicas: number): Promise<Result> {
  const root = mkdtempSync(join(tmpdir(), 'bench-supervisor-'));
  const dataDir = join(root, 'data');
  const { consumersDir } = writeNoop(root, replicas);
  const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 4, durable: false });
  await fill(log);
  await log.close();
  const supervisor = new Supervisor({
    dataDir,
    consumersDir,
    logger: pino({ level: 'silent' }),
    watch: false,
    reconcileMs: 100,
    refreshMs: 100,
    settings: { heartbeatMs: 200 },
  });
  const started = performance.now();
  await supervisor.start();
  let rss: number[] = [];
  for (;;) {
    const s = supervisor.api.status('noop');
    if (s && s.replicas.ready === replicas && rss.length === 0 && s.processed > RECORDS / 4) {
      rss = s.pids.map(rssMb);
    }
    if (s && s.processed >= RECORDS && s.lag.records === 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  if (rss.length === 0) rss = (supervisor.api.status('noop')?.pids ?? []).map(rssMb);
  await supervisor.stop();
  rmSync(root, { recursive: true, force: true });
  return { engine: 'embedded, supervisor', replicas, seconds, perSecond: RECORDS / seconds, rss };
}

/** The same consumer through a `consumers run` process (StandaloneConsumer) on an R`streamReplicas` stream. */
async function runNats(cluster: NatsCluster, streamReplicas: number, replicas: number): Promise<Result> {
  const root = mkdtempSync(join(tmpdir(), 'bench-standalone-'));
  const name = `benchr${streamReplicas}x${replicas}`;
  const log = await NatsEventLog.open({
    servers: cluster.urls,
    name,
    defaultPartitions: 4,
    stream: { replicas: streamReplicas },
  });
  await fill(log);
  const { module } = writeNoop(root, replicas);
  const standalone = new StandaloneConsumer({
    name: 'noop',
    module,
    dataDir: join(root, 'data'),
    log: { url: cluster.url, name },
    replicas,
    logger: pino({ level: 'silent' }),
    leaseMs: 2000,
    heartbeatMs: 200,
  });
  const stop = new AbortController();
  const started = performance.now();
  const running = standalone.run(stop.signal);
  let rss: number[] = [];
  for (;;) {
    const lag = await log.lag('noop');
    const behind = lag.reduce((n, p) => n + p.records, 0);
    if (lag.length === 4 && behind === 0) break;
    if (rss.length === 0 && lag.length === 4 && behind < RECORDS * 0.75) rss = replicaPids().map(rssMb);
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  stop.abort();
  await running;
  await log.close();
  rmSync(root, { recursive: true, force: true });
  return {
    engine: `NATS R${streamReplicas}, consumers run`,
    replicas,
    seconds,
    perSecond: RECORDS / seconds,
    rss,
  };
}

/** Pids of this process's children running the consumer worker (the replicas). */
function replicaPids(): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('worker-main')) out.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return out;
}

console.log(`supervisor benchmark: ${RECORDS.toLocaleString('en')} records, 4 partitions, no-op handler`);
console.log('engine                      replicas  seconds  records/s  × embedded  RSS per replica (MB)');
const embedded = new Map<number, number>();
const print = (r: Result) =>
  console.log(
    `${r.engine.padEnd(26)}  ${String(r.replicas).padStart(8)}  ${r.seconds.toFixed(2).padStart(7)}  ${Math.round(r.perSecond).toLocaleString('en').padStart(9)}  ${(r.perSecond / (embedded.get(r.replicas) ?? r.perSecond)).toFixed(2).padStart(10)}  ${r.rss.map((m) => m.toFixed(0)).join(', ')}`,
  );
for (const n of REPLICAS) {
  const r = await run(n);
  embedded.set(n, r.perSecond);
  print(r);
}
if (values.nats) {
  const cluster = await NatsCluster.start();
  try {
    for (const streamReplicas of [1, 3])
      for (const n of REPLICAS) print(await runNats(cluster, streamReplicas, n));
  } finally {
    await cluster.stop();
  }
}
