/**
 * Supervisor benchmark: records/s through the whole consumer path (embedded log → replica
 * processes → a no-op handler → offsets committed), with 1 and with 3 replicas, and the memory
 * (RSS) of each replica process. The log is filled first (Debezium-sized values, 4 partitions,
 * 64 keys); the clock runs from the supervisor's start until the group's lag is 0, so it includes
 * the replicas' start (fork, tsx, module load).
 *
 *   npx tsx bench/supervisor.ts [--records 200000] [--replicas 1,3]
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { Supervisor } from '../src/consumers/supervisor.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';

const { values } = parseArgs({
  options: { records: { type: 'string', default: '200000' }, replicas: { type: 'string', default: '1,3' } },
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

async function run(
  replicas: number,
): Promise<{ replicas: number; seconds: number; perSecond: number; rss: number[] }> {
  const root = mkdtempSync(join(tmpdir(), 'bench-supervisor-'));
  const dataDir = join(root, 'data');
  const consumersDir = join(root, 'consumers');
  mkdirSync(join(consumersDir, 'noop'), { recursive: true });
  writeFileSync(
    join(consumersDir, 'noop', 'index.ts'),
    `import { defineConsumer } from ${JSON.stringify(DEFINE)};
export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], replicas: ${replicas}, batch: { maxRecords: 500 }, handle() {} });
`,
  );
  const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 4, durable: false });
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
  return { replicas, seconds, perSecond: RECORDS / seconds, rss };
}

console.log(`supervisor benchmark: ${RECORDS.toLocaleString('en')} records, 4 partitions, no-op handler`);
console.log('replicas  seconds  records/s  RSS per replica (MB)');
for (const n of REPLICAS) {
  const r = await run(n);
  console.log(
    `${String(r.replicas).padStart(8)}  ${r.seconds.toFixed(2).padStart(7)}  ${Math.round(r.perSecond).toLocaleString('en').padStart(9)}  ${r.rss.map((m) => m.toFixed(0)).join(', ')}`,
  );
}
