/**
 * Consumer throughput and memory: the real worker process (forked as the supervisor does) reading
 * the embedded log.
 *
 *   npx tsx bench/consumers.ts [--records 200000] [--pg 15|18] [--latency-seconds 5]
 *     [--capture-rows 200000] [--groups 5] [--rounds 3] [--modes none,slow,no-op]
 *     [--backlogs 100000,1000000] [--behind-seconds 8]
 *     [--niceness 10] [--e2e-rate 2000] [--e2e-seconds 20] [--e2e-connections 4]
 *     [--follow-rates 50000,5000] [--only noop,pgsink,latency,follow,capture,e2e,backlog]
 *     [--diag] [--syscalls]
 *
 * 1. no-op: records/s through a consumer whose handler does nothing (batches of 500, 4 lanes).
 * 2. PostgreSQL transactional sink: each batch upserts its rows into a table and writes the
 *    offsets in the same transaction (`postgresTarget`), on a throwaway cluster.
 * 3. latency: records appended at a steady 2,000/s while the consumer follows; time from the
 *    append (record timestamp) to the handler's start, p50/p99 (the log-to-handler part of the
 *    end-to-end latency; polling backoff at the end of a partition is 2-25 ms).
 * follow: CPU of a no-op replica (batches of 100, 4 lanes) that keeps up with records appended at
 *    each of `--follow-rates` records/s for 5 s (capture-sized Debezium values): CPU µs per record.
 * 4. capture with consumers reading: a real capture (PostgreSQL -> embedded log, durable) catches up
 *    a WAL backlog of `--capture-rows` single-row changes, with 0 consumer groups, with `--groups`
 *    slow groups (each a replica process handling 100 records per 50 ms, so it falls behind), and
 *    with `--groups` no-op groups (each reading as fast as it can), all reading the same topic
 *    while capture writes it. Capture's records/s is taken from its restart to the last record
 *    durable in the log.
 *    Every round runs the modes back to back (in reverse order every other round); the medians over
 *    the rounds are printed last, with the median of the per-round changes (each round's rate
 *    against that round's rate without groups).
 *    Replicas run at `--niceness` (10, the default of `consumers.niceness`; 0 = capture's priority;
 *    above 0 the worker also puts itself in the SCHED_IDLE class, see worker/priority.ts), and wait
 *    while the capture catches up (`consumers.yieldToCapture`, default auto: the time they were
 *    held back is printed with each round).
 *    `--diag` prints, per round, where the capture process spent the window (its main thread's run
 *    time and run-queue wait from /proc schedstat, context switches, the walsender's CPU, the
 *    machine's busy share, the log's largest WAL file); `--syscalls` also writes a `perf trace -s`
 *    summary of the capture process to /tmp/syscalls-<mode>-<round>.txt (slows it down).
 * e2e: end-to-end latency from the source commit to the handler's start. `tributary run` (a real
 *    capture, durable log, and its supervisor running one consumer replica) follows a database
 *    into which `--e2e-connections` connections commit `--e2e-rate` single-row transactions per
 *    second, paced, for `--e2e-seconds` (sessions with synchronous_commit `--e2e-synchronous-commit`,
 *    default on); the handler records `Date.now() - source.ts_us / 1000`.
 * 5. backlog: the peak RSS of a replica draining `--backlogs` records that are all in the log
 *    before it starts, and of a slow replica (80 ms per batch) running `--behind-seconds` with that
 *    backlog behind it (the worker buffers at most a bounded number of records per partition).
 * Memory: the worker's peak RSS (VmHWM).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import pino from 'pino';
import { type RunningCapture, startCapture } from '../src/capture/capture-runner.ts';
import { readStatus } from '../src/capture/capture-status.ts';
import { loadConfig } from '../src/config/config-loader.ts';
import { ConsumerStore } from '../src/consumers/consumer-store.ts';
import type { AppendRecord } from '../src/core/record.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { WalBound } from '../src/log/embedded/wal-bound.ts';
import { FakeParent, launch, writeConsumer } from '../test/integration/consumer-worker-support.ts';
import { recordCount, tempDir, waitFor } from '../test/support/capture-harness.ts';
import { type CliProcess, startCli } from '../test/support/cli.ts';
import { startCluster } from '../test/support/pg-cluster.ts';

const { values } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    pg: { type: 'string', default: '15' },
    'latency-seconds': { type: 'string', default: '5' },
    'capture-rows': { type: 'string', default: '200000' },
    groups: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'none,slow,no-op' },
    'behind-seconds': { type: 'string', default: '8' },
    backlogs: { type: 'string', default: '100000,1000000' },
    only: { type: 'string', default: 'noop,pgsink,latency,follow,capture,e2e,backlog' },
    niceness: { type: 'string', default: '10' },
    'e2e-rate': { type: 'string', default: '2000' },
    'e2e-seconds': { type: 'string', default: '20' },
    'e2e-connections': { type: 'string', default: '4' },
    'e2e-synchronous-commit': { type: 'string', default: 'on' },
    'follow-rates': { type: 'string', default: '50000,5000' },
    diag: { type: 'boolean', default: false },
    syscalls: { type: 'boolean', default: false },
    'log-durable': { type: 'string', default: 'true' },
  },
});
const N = Number(values.records);
/** Heartbeat interval of the capture bench's replicas: `consumers.heartbeatMs`'s default. */
const HEARTBEAT_MS = 1000;
/** Niceness of the bench's replica processes, as the supervisor sets it (`consumers.niceness`). */
const NICENESS = Number(values.niceness);
const ONLY = new Set(values.only.split(','));
if (values.diag) timeAppends();
const PARTITIONS = 2;

function orderRecords(count: number, from: number, timestamp = Date.now()): AppendRecord[] {
  return Array.from({ length: count }, (_, j) => {
    const i = from + j;
    const id = i % 5000;
    return {
      topic: 'bench.public.orders',
      key: `{"id":${id}}`,
      value: `{"before":null,"after":{"id":${id},"total":"${(i % 997) + 0.5}","status":"paid"},"source":{"lsn":${i}},"op":"u","ts_ms":${timestamp}}`,
      headers: {},
      timestamp,
    };
  });
}

/** User + system CPU seconds of a process so far (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return Number.NaN;
  }
}

/** Run time and run-queue wait (ns) of a thread or process (`/proc/.../schedstat`). */
function schedstat(path: string): { run: number; wait: number } {
  try {
    const [run, wait] = readFileSync(path, 'utf8').split(' ').map(Number);
    return { run: run!, wait: wait! };
  } catch {
    return { run: 0, wait: 0 };
  }
}

function contextSwitches(path: string): { voluntary: number; involuntary: number } {
  try {
    const status = readFileSync(path, 'utf8');
    return {
      voluntary: Number(/voluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
      involuntary: Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(status)?.[1] ?? 0),
    };
  } catch {
    return { voluntary: 0, involuntary: 0 };
  }
}

/** Machine-wide busy and total jiffies (`/proc/stat`), to tell whether both cores were saturated. */
function machineJiffies(): { busy: number; total: number } {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - cpu[3]! - cpu[4]!, total };
}

/**
 * `--diag`: where the capture process (this one: capture runs in the bench process) spends the
 * capture window — its main thread's run time and run-queue wait, its context switches, all its
 * threads' CPU, the walsender's CPU and the log's WAL file size.
 */
/** `--diag`: wall time the capture spent in appends, and in the WAL bound's checkpoints among them. */
const appendTiming = {
  appendMs: 0,
  appends: 0,
  boundMs: 0,
  checkpoints: 0,
  busy: 0,
  busyMs: 0,
  longestMs: 0,
  /** Checkpoints run while the capture paused (seen at the next append). */
  idle: 0,
};
function timeAppends(): void {
  const append = EmbeddedEventLog.prototype.append;
  EmbeddedEventLog.prototype.append = async function (this: EmbeddedEventLog, ...args) {
    const started = performance.now();
    try {
      return await append.apply(this, args);
    } finally {
      appendTiming.appendMs += performance.now() - started;
      appendTiming.appends++;
    }
  };
  const afterWrite = WalBound.prototype.afterWrite;
  WalBound.prototype.afterWrite = function (this: WalBound) {
    const started = performance.now();
    const before = this.stats;
    try {
      afterWrite.call(this);
    } finally {
      const ms = performance.now() - started;
      const after = this.stats;
      appendTiming.boundMs += ms;
      appendTiming.checkpoints += after.restarts - before.restarts;
      if (after.busy > before.busy) {
        appendTiming.busy++;
        appendTiming.busyMs += ms;
      }
      appendTiming.longestMs = Math.max(appendTiming.longestMs, ms);
      appendTiming.idle = after.idle;
    }
  };
}

function captureProbe(dataDir: string) {
  const main = `/proc/self/task/${process.pid}`;
  const s0 = schedstat(`${main}/schedstat`);
  const c0 = contextSwitches(`${main}/status`);
  const cpu0 = process.cpuUsage();
  const m0 = machineJiffies();
  const t0 = threadTicks();
  const a0 = { ...appendTiming };
  let walsender: number | undefined;
  let walsender0 = 0;
  let walMax = 0;
  const wal = join(dataDir, 'log.sqlite-wal');
  return {
    hasWalsender: () => walsender !== undefined,
    setWalsender(pid: number) {
      walsender = pid;
      walsender0 = cpuSeconds(pid);
    },
    sample() {
      try {
        walMax = Math.max(walMax, statSync(wal).size);
      } catch {
        // no WAL yet
      }
    },
    report(seconds: number): string {
      const s1 = schedstat(`${main}/schedstat`);
      const c1 = contextSwitches(`${main}/status`);
      const cpu = process.cpuUsage(cpu0);
      const m1 = machineJiffies();
      const busy = (m1.busy - m0.busy) / (m1.total - m0.total);
      return [
        `main thread run ${((s1.run - s0.run) / 1e9).toFixed(2)} s, runqueue wait ${((s1.wait - s0.wait) / 1e9).toFixed(2)} s`,
        `vol/invol cs ${c1.voluntary - c0.voluntary}/${c1.involuntary - c0.involuntary}`,
        `process CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (sys ${(cpu.system / 1e6).toFixed(2)})`,
        `walsender CPU ${walsender === undefined ? '?' : (cpuSeconds(walsender) - walsender0).toFixed(2)} s`,
        `machine busy ${(busy * 100).toFixed(0)} %`,
        `WAL max ${(walMax / 1e6).toFixed(0)} MB`,
        `wall ${seconds.toFixed(2)} s`,
        `appends ${appendTiming.appends - a0.appends} in ${((appendTiming.appendMs - a0.appendMs) / 1000).toFixed(2)} s (WAL bound ${((appendTiming.boundMs - a0.boundMs) / 1000).toFixed(2)} s: ${appendTiming.checkpoints - a0.checkpoints} checkpoints, ${appendTiming.busy - a0.busy} busy taking ${((appendTiming.busyMs - a0.busyMs) / 1000).toFixed(2)} s, longest ${appendTiming.longestMs.toFixed(0)} ms; ${appendTiming.idle - a0.idle} in pauses)`,
        `threads ${threadReport(t0, threadTicks())}`,
      ].join(', ');
    },
  };
}

/** CPU ticks (user + system) of each thread of this process, by thread id, with its name. */
function threadTicks(): Map<string, { name: string; ticks: number }> {
  const out = new Map<string, { name: string; ticks: number }>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, {
        name: tid === String(process.pid) ? 'main' : name,
        ticks: Number(f[11]) + Number(f[12]),
      });
    } catch {
      // ended meanwhile
    }
  }
  return out;
}

/** CPU seconds per thread name over the window (threads of one name summed), busiest first. */
function threadReport(
  before: Map<string, { name: string; ticks: number }>,
  after: Map<string, { name: string; ticks: number }>,
): string {
  const byThread = new Map<string, number>();
  for (const [tid, t] of after) {
    const ticks = t.ticks - (before.get(tid)?.ticks ?? 0);
    byThread.set(`${t.name}:${tid}`, ticks);
  }
  return [...byThread]
    .filter(([, ticks]) => ticks > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([name, ticks]) => `${name} ${(ticks / 100).toFixed(2)}`)
    .join(' / ');
}

async function fill(dataDir: string, count = N): Promise<EmbeddedEventLog> {
  const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: PARTITIONS, durable: false });
  for (let i = 0; i < count; i += 10_000) await log.append(orderRecords(Math.min(10_000, count - i), i));
  return log;
}

async function drain(
  name: string,
  module: string,
  dataDir: string,
  group: string,
  count = N,
): Promise<{ rate: number; rss: number }> {
  const parent = new FakeParent(launch(name, module, dataDir));
  try {
    await parent.ready();
    const started = performance.now();
    parent.assign(
      Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: 'bench.public.orders', partition })),
    );
    const store = ConsumerStore.open({ dataDir });
    let rss = 0;
    try {
      await waitFor(
        () => {
          rss = Math.max(rss, peakRssMb(parent.child.pid!));
          return store.committed(group).reduce((n, p) => n + p.offset, 0) >= count;
        },
        `${count} records consumed by ${name}`,
        600_000,
      );
    } finally {
      store.close();
    }
    const seconds = (performance.now() - started) / 1000;
    rss = Math.max(rss, peakRssMb(parent.child.pid!));
    await parent.stop();
    return { rate: count / seconds, rss };
  } finally {
    parent.child.kill('SIGKILL');
  }
}

/** Runs a consumer for `seconds` on a log it cannot catch up with; its peak RSS and records handled. */
async function behind(
  name: string,
  module: string,
  dataDir: string,
  seconds: number,
): Promise<{ consumed: number; rss: number }> {
  const parent = new FakeParent(launch(name, module, dataDir));
  const store = ConsumerStore.open({ dataDir });
  try {
    await parent.ready();
    parent.assign(
      Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: 'bench.public.orders', partition })),
    );
    const until = Date.now() + seconds * 1000;
    let rss = 0;
    await waitFor(
      () => {
        rss = Math.max(rss, peakRssMb(parent.child.pid!));
        return Date.now() >= until;
      },
      `${seconds} s`,
      seconds * 1000 + 60_000,
    );
    rss = Math.max(rss, peakRssMb(parent.child.pid!));
    await parent.stop();
    return { consumed: store.committed(name).reduce((n, p) => n + p.offset, 0), rss };
  } finally {
    store.close();
    parent.child.kill('SIGKILL');
  }
}

/**
 * A capture catching up `--capture-rows` changes (WAL written while it was stopped) while `groups`
 * consumer groups read the same topic. Returns capture's records/s and what the groups consumed
 * (committed offsets) by the time capture had written the last record.
 */
async function captureWithGroups(
  serverUrl: string,
  groups: number,
  mode: 'none' | 'slow' | 'no-op',
  round: number,
  settings: Readonly<Record<string, string>>,
): Promise<{ rate: number; seconds: number; consumed: string }> {
  const rows = Number(values['capture-rows']);
  const name = `bench_capture_${mode.replace('-', '')}_${round}_${Date.now()}`;
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = serverUrl.replace(/\/postgres$/, `/${name}`);
  const db = new pg.Client(url);
  await db.connect();
  const d = tempDir('tributary-bench-capture-');
  const workers: FakeParent[] = [];
  let capture: RunningCapture | undefined;
  try {
    await db.query('create table items (id int primary key, qty int not null, note text not null)');
    const config = loadConfig({
      env: {},
      cwd: d.path,
      flags: {
        'source.url': url,
        dataDir: d.path,
        topicPrefix: 'cap',
        'log.partitions': PARTITIONS,
        'source.tables': 'public.items',
        'log.durable': values['log-durable'] !== 'false',
        // The table is empty at the first start: with a snapshot to do, the restart would finish
        // it inside the measured window and start its reader threads there (~1 CPU s).
        'snapshot.mode': 'never',
        ...Object.fromEntries(Object.entries(settings).filter(([k]) => !k.startsWith('env.'))),
      },
    });
    // `@env.NAME=value`: the replicas' environment in this mode's rounds.
    const env = Object.entries(settings).filter(([k]) => k.startsWith('env.'));
    for (const [k, v] of env) process.env[k.slice(4)] = v;
    // Warnings and errors on stderr: a capture that fails must say why, not look like a hang.
    const logger = pino({ level: 'warn' }, pino.destination(2));
    // First start: slot, publication and log; then the backlog is written while capture is stopped.
    capture = await startCapture(config, { logger });
    await capture.stop();
    capture = undefined;
    for (let i = 0; i < rows; i += 5000) {
      await db.query(
        `insert into items select g, g % 100, 'item ' || g from generate_series(${i + 1}, ${Math.min(rows, i + 5000)}) g`,
      );
    }
    const topic = 'cap.public.items';
    const handle =
      mode === 'slow' ? 'async handle() { await new Promise((r) => setTimeout(r, 50)); }' : 'handle() {}';
    for (let g = 0; g < groups; g++) {
      const module = writeConsumer(
        d.path,
        `group${g}`,
        `export default defineConsumer({ topics: [${JSON.stringify(topic)}], batch: { maxRecords: 100 }, concurrency: ${mode === 'slow' ? 1 : 4}, ${handle} });`,
      );
      // Heartbeats at the supervisor's default (`consumers.heartbeatMs`), not the tests' 100 ms:
      // they come into this process, which is the capture's, as they come into `tributary run`'s.
      const p = new FakeParent({
        ...launch(`group${g}`, module, d.path, 0),
        niceness: NICENESS,
        heartbeatMs: HEARTBEAT_MS,
      });
      p.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition })));
      workers.push(p);
    }
    for (const [k] of env) delete process.env[k.slice(4)];
    await Promise.all(workers.map((w) => w.ready()));
    // Settled, as replicas that run for long are when a catch-up starts: assigned, their log open,
    // idle at the end of their partitions (a heartbeat after the assignment).
    await waitFor(
      () => workers.every((w) => w.messages.filter((m) => m.type === 'heartbeat').length >= 2),
      'the replicas settled',
      60_000,
    );
    const cpuBefore = workers.reduce((t, w) => t + cpuSeconds(w.child.pid!), 0);
    const probe = values.diag ? captureProbe(d.path) : undefined;
    if (probe && workers.length > 0) {
      const pid = workers[0]!.child.pid!;
      const threads = readdirSync(`/proc/${pid}/task`).map((t) =>
        readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1]!.split(' '),
      );
      const autogroup = (p: number | 'self') => {
        try {
          return readFileSync(`/proc/${p}/autogroup`, 'utf8').trim();
        } catch {
          return 'no autogroup';
        }
      };
      console.error(
        `[diag] capture ${autogroup('self')}; replica ${autogroup(pid)}, its threads' nice ${[...new Set(threads.map((f) => f[16]))].join(',')}, policy ${[...new Set(threads.map((f) => f[38]))].join(',')} (5 = SCHED_IDLE)`,
      );
    }
    // `--syscalls`: system calls of this process (capture) during the window, counted and timed by
    // `perf trace -s` (per thread; lower overhead than strace, which stops the process at each call).
    const tracer = values.syscalls
      ? spawn('perf', ['trace', '-s', '-o', join(d.path, 'syscalls.txt'), '-p', String(process.pid)], {
          stdio: 'ignore',
        })
      : undefined;
    if (tracer) await new Promise((r) => setTimeout(r, 500));
    const started = performance.now();
    capture = await startCapture(config, { logger });
    const log = capture.log;
    // A capture that ends before it has every record fails the round at once.
    let ended: Error | undefined;
    capture.done.then(
      () => (ended = new Error('the capture ended before it had captured every record')),
      (error: unknown) => (ended = error instanceof Error ? error : new Error(String(error))),
    );
    await waitFor(
      async () => {
        if (ended) throw ended;
        if (probe) {
          probe.sample();
          if (!probe.hasWalsender()) {
            const pid = await db.query<{ pid: number }>(
              'select active_pid as pid from pg_replication_slots where database = current_database() and active',
            );
            if (pid.rows[0]) probe.setWalsender(pid.rows[0].pid);
          }
        }
        return (await recordCount(log, topic)) >= rows;
      },
      `${rows} records captured`,
      600_000,
    );
    const seconds = (performance.now() - started) / 1000;
    const held = capture.consumerYield.stats;
    if (probe) console.error(`[diag] ${mode} round ${round}: ${probe.report(seconds)}`);
    if (tracer) {
      tracer.kill('SIGINT');
      await new Promise((r) => tracer!.once('exit', r));
      writeFileSync(`/tmp/syscalls-${mode}-${round}.txt`, readFileSync(join(d.path, 'syscalls.txt')));
    }
    const groupsCpu = workers.reduce((t, w) => t + cpuSeconds(w.child.pid!), 0) - cpuBefore;
    let consumed = '-';
    if (groups > 0) {
      const store = ConsumerStore.open({ dataDir: d.path });
      try {
        const consumedBy = (g: number) => store.committed(`group${g}`).reduce((n, p) => n + p.offset, 0);
        const counts = workers.map((_, g) => consumedBy(g));
        consumed = `${Math.min(...counts).toLocaleString('en')}-${Math.max(...counts).toLocaleString('en')} records, ${groupsCpu.toFixed(1)} CPU s, held back ${(held.heldMs / 1000).toFixed(2)} s (${held.holds}x)`;
        if (mode === 'no-op') {
          // When the groups had handled everything, from the capture's start: how far behind the
          // burst left them.
          await waitFor(
            () => workers.every((_, g) => consumedBy(g) >= rows),
            'the groups caught up',
            600_000,
          );
          consumed += `, all caught up at ${((performance.now() - started) / 1000).toFixed(2)} s`;
        }
      } finally {
        store.close();
      }
    }
    return { rate: rows / seconds, seconds, consumed };
  } finally {
    await capture?.stop();
    await Promise.all(workers.map((w) => w.kill9()));
    await db.end();
    await dropBenchDatabase(serverUrl, name);
    d.remove();
  }
}

/** Records shaped like the capture's (Debezium envelope of a 3-column row), committed now. */
function captureLikeRecords(count: number, from: number): AppendRecord[] {
  const ts = Date.now();
  return Array.from({ length: count }, (_, j) => {
    const i = from + j;
    const source = {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'cap',
      ts_ms: ts,
      ts_us: ts * 1000,
      snapshot: 'false',
      db: 'bench',
      schema: 'public',
      table: 'items',
      txId: 1000 + i,
      lsn: 12_345_678 + i,
    };
    const after = { id: i, qty: i % 100, note: `item ${i}` };
    return {
      topic: 'cap.public.items',
      key: `{"id":${i}}`,
      value: JSON.stringify({ before: null, after, source, op: 'c', ts_ms: ts, transaction: null }),
      headers: {},
      timestamp: ts,
    };
  });
}

/** CPU seconds a no-op replica uses to keep up with `rate` records/s appended for `seconds`. */
async function follow(rate: number, seconds: number): Promise<{ sent: number; cpu: number }> {
  const d = tempDir('tributary-bench-follow-');
  const log = EmbeddedEventLog.open({ dataDir: d.path, defaultPartitions: PARTITIONS, durable: false });
  const topic = 'cap.public.items';
  const module = writeConsumer(
    d.path,
    'follow',
    `export default defineConsumer({ topics: ['${topic}'], batch: { maxRecords: 100 }, concurrency: 4, handle() {} });`,
  );
  const parent = new FakeParent({ ...launch('follow', module, d.path), niceness: NICENESS });
  const store = ConsumerStore.open({ dataDir: d.path });
  try {
    await log.append(captureLikeRecords(1, 0));
    await parent.ready();
    parent.assign(Array.from({ length: PARTITIONS }, (_, partition) => ({ topic, partition })));
    await waitFor(() => store.committed('follow').length > 0, 'the replica following', 30_000);
    const before = cpuSeconds(parent.child.pid!);
    const started = Date.now();
    let sent = 1;
    while (Date.now() - started < seconds * 1000) {
      const due = Math.floor(((Date.now() - started) / 1000) * rate);
      if (due > sent) {
        await log.append(captureLikeRecords(due - sent, sent));
        sent = due;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await waitFor(
      () => store.committed('follow').reduce((n, p) => n + p.offset, 0) >= sent,
      'the replica caught up',
      60_000,
    );
    return { sent, cpu: cpuSeconds(parent.child.pid!) - before };
  } finally {
    store.close();
    await parent.kill9();
    await log.close();
    d.remove();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * End-to-end latency: `tributary run` (capture + supervisor + one replica of a consumer) follows a
 * database receiving `--e2e-rate` single-row transactions/s. A warm-up second (phase 0) is not
 * measured; the handler writes `Date.now() - ts_us / 1000` of every phase-1 record.
 */
async function endToEnd(serverUrl: string): Promise<{
  rate: number;
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  held: string;
}> {
  const rate = Number(values['e2e-rate']);
  const seconds = Number(values['e2e-seconds']);
  const name = 'bench_e2e';
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = serverUrl.replace(/\/postgres$/, `/${name}`);
  const d = tempDir('tributary-bench-e2e-');
  const out = join(d.path, 'latency.txt');
  const warmFile = join(d.path, 'warm.txt');
  const consumersDir = join(d.path, 'consumers');
  const clients = Array.from({ length: Number(values['e2e-connections']) }, () => new pg.Client(url));
  let run: CliProcess | undefined;
  try {
    await Promise.all(clients.map((c) => c.connect()));
    // The throwaway cluster runs synchronous_commit=off (fast setup); a commit's WAL then reaches
    // the walsender only at the WAL writer's next flush (wal_writer_delay, 200 ms). PostgreSQL's
    // default, and what applications commit with, is on: the driver's sessions use it.
    const sync = values['e2e-synchronous-commit'] === 'off' ? 'off' : 'on';
    await Promise.all(clients.map((c) => c.query(`set synchronous_commit = ${sync}`)));
    await clients[0]!.query('create table ticks (id bigserial primary key, phase int not null)');
    writeConsumer(
      consumersDir,
      'latency',
      `export default defineConsumer({ topics: ['e2e.public.ticks'], handle(batch) {
  const now = Date.now();
  const lines = [];
  for (const r of batch) if (r.value?.after?.phase === 1) lines.push(now - Number(r.value.source.ts_us) / 1000);
  if (lines.length < batch.length && !existsSync(${JSON.stringify(warmFile)})) appendFileSync(${JSON.stringify(warmFile)}, 'warm');
  if (lines.length > 0) appendFileSync(${JSON.stringify(out)}, lines.join('\\n') + '\\n');
} });`,
    );
    writeFileSync(out, '');
    run = startCli(['run', '--source', url, '--data-dir', join(d.path, 'data'), '--topic-prefix', 'e2e'], {
      env: { TRIBUTARY_CONSUMERS_DIR: consumersDir, TRIBUTARY_CONSUMERS_NICENESS: String(NICENESS) },
    });
    const lines = () => readFileSync(out, 'utf8').split('\n').filter(Boolean);
    let next = 0;
    /** Commits single-row transactions at `rate`/s for `ms`, spread over the connections. */
    const drive = async (phase: number, ms: number): Promise<number> => {
      const started = Date.now();
      let sent = 0;
      // One query at a time per connection (queued behind the previous one), round-robin.
      const chains: Promise<unknown>[] = clients.map(() => Promise.resolve());
      while (Date.now() - started < ms) {
        const due = Math.floor(((Date.now() - started) / 1000) * rate);
        for (; sent < due; sent++) {
          const i = next++ % clients.length;
          chains[i] = chains[i]!.then(() =>
            clients[i]!.query('insert into ticks (phase) values ($1)', [phase]),
          );
        }
        await new Promise((r) => setTimeout(r, 2));
      }
      await Promise.all(chains);
      return sent;
    };
    // Warm-up until the replica handles phase-0 records (capture, slot and consumer all running).
    await waitFor(
      async () => {
        await clients[0]!.query('insert into ticks (phase) values (0)');
        return existsSync(warmFile);
      },
      `tributary run and its consumer started\n${run.stderr}`,
      120_000,
    );
    await drive(0, 2000);
    const sent = await drive(1, seconds * 1000);
    await waitFor(
      () => lines().length >= sent,
      `${sent} latencies recorded\n${run.stderr.slice(-2000)}`,
      120_000,
    );
    const ms = lines()
      .map(Number)
      .sort((a, b) => a - b);
    const q = (p: number) => Math.round(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!);
    // A capture that keeps up never holds its consumer back (consumers.yieldToCapture).
    await waitFor(() => readStatus(join(d.path, 'data'))?.consumersHeld, 'the capture status');
    const held = readStatus(join(d.path, 'data'))!.consumersHeld!;
    return {
      rate,
      count: ms.length,
      p50: q(0.5),
      p95: q(0.95),
      p99: q(0.99),
      max: Math.round(ms.at(-1)!),
      held: `held back ${held.holds}x, ${(held.heldMs / 1000).toFixed(2)} s`,
    };
  } finally {
    if (run && run.child.exitCode === null) {
      run.child.kill('SIGTERM');
      await run.exited;
    }
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await dropBenchDatabase(serverUrl, name);
    d.remove();
  }
}

const dir = tempDir('tributary-bench-consumers-');
const results: [string, string, string][] = [];
const cluster =
  ONLY.has('pgsink') || ONLY.has('capture') || ONLY.has('e2e')
    ? await startCluster({ version: Number(values.pg) })
    : undefined;
try {
  const log = await fill(dir.path, ONLY.has('noop') || ONLY.has('pgsink') || ONLY.has('latency') ? N : 0);

  if (ONLY.has('noop')) {
    const noop = writeConsumer(
      dir.path,
      'noop',
      `export default defineConsumer({ topics: ['bench.public.orders'], batch: { maxRecords: 500 }, concurrency: 4, handle() {} });`,
    );
    const a = await drain('noop', noop, dir.path, 'noop');
    results.push([
      'no-op consumer',
      `${Math.round(a.rate).toLocaleString('en')} records/s`,
      `${a.rss.toFixed(0)} MB`,
    ]);
  }

  if (cluster && ONLY.has('pgsink')) {
    const url = cluster.url();
    const client = new pg.Client(url);
    await client.connect();
    await client.query('create table orders_sink (id int primary key, total numeric, status text)');
    await client.end();
    const sink = writeConsumer(
      dir.path,
      'pgsink',
      `export default defineConsumer({
  topics: ['bench.public.orders'],
  batch: { maxRecords: 500 },
  concurrency: 2,
  transactional: postgresTarget(${JSON.stringify(url)}),
  async handle(batch, ctx) {
    // Last change per key wins inside a batch (one statement per batch).
    const rows = new Map();
    for (const r of batch) if (r.value?.after) rows.set(r.value.after.id, r.value.after);
    const list = [...rows.values()];
    await ctx.tx.query(
      'insert into orders_sink select * from unnest($1::int[], $2::numeric[], $3::text[]) on conflict (id) do update set total = excluded.total, status = excluded.status',
      [list.map((r) => r.id), list.map((r) => r.total), list.map((r) => r.status)],
    );
  },
});`,
    );
    const b = await drain('pgsink', sink, dir.path, 'pgsink');
    results.push([
      `PostgreSQL ${values.pg} transactional sink`,
      `${Math.round(b.rate).toLocaleString('en')} records/s`,
      `${b.rss.toFixed(0)} MB`,
    ]);
  }

  if (ONLY.has('latency')) {
    // Latency at a steady 2,000 records/s (200 every 100 ms) with the consumer caught up.
    const latencyFile = join(dir.path, 'latency.txt');
    const follow = writeConsumer(
      dir.path,
      'follow',
      `export default defineConsumer({ topics: ['bench.public.orders'], batch: { maxRecords: 500 }, handle(batch) {
  const now = Date.now();
  appendFileSync(${JSON.stringify(latencyFile)}, batch.map((r) => now - r.timestamp).join('\\n') + '\\n');
} });`,
    );
    const parent = new FakeParent(launch('follow', follow, dir.path));
    try {
      await parent.ready();
      const store = ConsumerStore.open({ dataDir: dir.path });
      // Start at the end: commit the current end offsets for the group first.
      const ends = (await log.topics())[0]!.partitions;
      store.commit(
        'follow',
        ends.map((p) => ({ topic: 'bench.public.orders', partition: p.partition, offset: p.endOffset })),
      );
      store.close();
      parent.assign(
        Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: 'bench.public.orders', partition })),
      );
      const seconds = Number(values['latency-seconds']);
      const started = Date.now();
      let sent = 0;
      while (Date.now() - started < seconds * 1000) {
        const due = Math.floor(((Date.now() - started) / 1000) * 2000);
        if (due > sent) {
          await log.append(orderRecords(due - sent, N + sent));
          sent = due;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      await waitFor(
        () => readFileSync(latencyFile, 'utf8').split('\n').filter(Boolean).length >= sent,
        'latency records',
        60_000,
      );
      const ms = readFileSync(latencyFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .sort((x, y) => x - y);
      const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!;
      results.push([
        'log append -> handler start at 2,000/s',
        `p50 ${q(0.5)} ms, p99 ${q(0.99)} ms`,
        `${sent} records`,
      ]);
      await parent.stop();
    } finally {
      parent.child.kill('SIGKILL');
    }
  }
  await log.close();

  if (ONLY.has('follow')) {
    for (const rate of values['follow-rates'].split(',').map(Number)) {
      const r = await follow(rate, 5);
      results.push([
        `no-op replica keeping up with ${rate.toLocaleString('en')} appends/s (niceness ${NICENESS})`,
        `${((r.cpu / r.sent) * 1e6).toFixed(1)} CPU µs/record`,
        `${r.cpu.toFixed(2)} CPU s, ${r.sent.toLocaleString('en')} records`,
      ]);
    }
  }

  if (cluster && ONLY.has('capture')) {
    const groups = Number(values.groups);
    // A mode is `none`, `slow` or `no-op`, then any `@<setting>=<value>` of the capture's config
    // (e.g. `no-op@log.walLimitMb=0`: the WAL left to SQLite's automatic checkpoints;
    // `no-op@consumers.yieldToCapture=never`: groups that read during the catch-up) or
    // `@env.<NAME>=<value>` of the replicas' environment, so that settings can be compared in the
    // same rounds.
    const modes = values.modes.split(',');
    const parse = (mode: string) => {
      const [kind, ...pairs] = mode.split('@') as ['none' | 'slow' | 'no-op', ...string[]];
      const settings = Object.fromEntries(pairs.map((p) => p.split('=') as [string, string]));
      return { kind, settings, suffix: pairs.map((p) => `@${p}`).join('') };
    };
    const label = (mode: string) => {
      const { kind, settings } = parse(mode);
      const what = kind === 'none' ? 'no consumer group' : `${groups} ${kind} groups`;
      return [what, ...Object.entries(settings).map(([k, v]) => `${k} ${v}`)].join(', ');
    };
    const rates = new Map<string, number[]>(modes.map((m) => [m, []]));
    for (let round = 1; round <= Number(values.rounds); round++) {
      // Every other round runs the modes in reverse, so that neither is always first.
      for (const mode of round % 2 === 1 ? modes : [...modes].reverse()) {
        const { kind, settings } = parse(mode);
        const r = await captureWithGroups(cluster.url(), kind === 'none' ? 0 : groups, kind, round, settings);
        rates.get(mode)!.push(r.rate);
        results.push([
          `capture, ${label(mode)} (round ${round})`,
          `${Math.round(r.rate).toLocaleString('en')} records/s`,
          kind === 'none'
            ? `${r.seconds.toFixed(2)} s`
            : `${r.seconds.toFixed(2)} s, groups consumed ${r.consumed}`,
        ]);
      }
    }
    for (const mode of modes) {
      const { kind, suffix } = parse(mode);
      // Against the rounds without groups at the same settings (or the defaults).
      const none = rates.get(`none${suffix}`) ?? rates.get('none') ?? [];
      const base = median(none);
      const m = median(rates.get(mode)!);
      // Paired: each round's rate against the same round's rate without groups (run next to it),
      // so that a slow spell of a shared machine weighs on both sides of the ratio.
      const paired = none.length
        ? median(rates.get(mode)!.map((rate, i) => (rate - none[i]!) / none[i]!)) * 100
        : Number.NaN;
      results.push([
        `capture median, ${label(mode)}${kind === 'none' ? '' : ` (niceness ${NICENESS})`}`,
        `${Math.round(m).toLocaleString('en')} records/s`,
        kind === 'none' || !base
          ? '-'
          : `${(((m - base) / base) * 100).toFixed(1)} % vs none (median of rounds: ${paired.toFixed(1)} %)`,
      ]);
    }
  }

  if (cluster && ONLY.has('e2e')) {
    const r = await endToEnd(cluster.url());
    results.push([
      `source commit -> handler start, ${r.rate.toLocaleString('en')} tx/s for ${values['e2e-seconds']} s`,
      `p50 ${r.p50} ms, p95 ${r.p95} ms, p99 ${r.p99} ms, max ${r.max} ms`,
      `${r.count} records, ${r.held}`,
    ]);
  }

  if (ONLY.has('backlog')) {
    for (const count of values.backlogs.split(',').map(Number)) {
      const d = tempDir('tributary-bench-backlog-');
      try {
        const backlog = await fill(d.path, count);
        await backlog.close();
        const module = writeConsumer(
          d.path,
          'drain',
          `export default defineConsumer({ topics: ['bench.public.orders'], handle() {} });`,
        );
        const r = await drain('drain', module, d.path, 'drain', count);
        results.push([
          `no-op consumer (defaults), draining ${count.toLocaleString('en')} records behind`,
          `${Math.round(r.rate).toLocaleString('en')} records/s`,
          `${r.rss.toFixed(0)} MB`,
        ]);
        // A consumer slower than its backlog (80 ms per batch of 100, 4 lanes) for a fixed time:
        // what it holds must not depend on how much waits behind it.
        const slow = writeConsumer(
          d.path,
          'behind',
          `export default defineConsumer({ topics: ['bench.public.orders'], async handle() { await new Promise((r) => setTimeout(r, 80)); } });`,
        );
        const b = await behind('behind', slow, d.path, Number(values['behind-seconds']));
        results.push([
          `slow consumer (80 ms per batch of 100, 4 lanes), ${count.toLocaleString('en')} records behind, ${values['behind-seconds']} s`,
          `${b.consumed.toLocaleString('en')} records handled`,
          `${b.rss.toFixed(0)} MB`,
        ]);
      } finally {
        d.remove();
      }
    }
  }
} finally {
  await cluster?.stop();
  dir.remove();
}

console.log(
  `\nConsumers: ${N.toLocaleString('en')} records in ${PARTITIONS} partitions (no-op, sink, latency); capture of ${Number(values['capture-rows']).toLocaleString('en')} changes\n`,
);
const w = [0, 1, 2].map((i) => Math.max(...results.map((r) => r[i]!.length), 8));
for (const r of results)
  console.log(`${r[0].padEnd(w[0]!)}  ${r[1].padStart(w[1]!)}  ${r[2].padStart(w[2]!)}`);

/** Drops a bench database and the slots left on it (capture stopped, so none is active). */
async function dropBenchDatabase(serverUrl: string, name: string): Promise<void> {
  const admin = new pg.Client(serverUrl);
  await admin.connect();
  try {
    await admin.query(
      'select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = $1 and not active',
      [name],
    );
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
