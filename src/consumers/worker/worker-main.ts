/**
 * Entry of a consumer replica process, forked by the supervisor with `TRIBUTARY_WORKER` (a
 * `WorkerLaunch` as JSON) and an IPC channel; see `consumer-protocol.ts` for the conversation.
 * Exit codes: 0 after `stop`/SIGTERM/SIGINT or when the parent goes away, 1 on a fatal error
 * (bad module or definition: reported in a `fatal` message first), 2 without a valid launch.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ConfigError } from '../../core/errors.ts';
import { NatsLogBucket } from '../../log/nats/nats-log-bucket.ts';
import { type NatsLogRef, type OpenedEventLog, openLogReader } from '../../log/open-event-log.ts';
import { YieldGate } from '../capture-yield.ts';
import type {
  SupervisorToWorker,
  TopicPartitionRef,
  WorkerLaunch,
  WorkerToSupervisor,
} from '../consumer-protocol.ts';
import type { ConsumerState } from '../consumer-state.ts';
import { CONSUMER_STORE_FILE, ConsumerStore } from '../consumer-store.ts';
import { NatsConsumerState } from '../nats/nats-consumer-state.ts';
import { ConsumerRunner } from './consumer-runner.ts';
import { describeConsumer, loadConsumer } from './load-consumer.ts';
import { watchParent } from './parent-watch.ts';
import { lowerPriority } from './priority.ts';

/** Resolves once the message is written, or at once when the parent is gone (never hangs). */
function send(message: WorkerToSupervisor): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send || !process.connected) return resolve();
    const timer = setTimeout(resolve, 2000);
    try {
      process.send(message, undefined, undefined, () => {
        clearTimeout(timer);
        resolve();
      });
    } catch {
      clearTimeout(timer);
      resolve();
    }
  });
}

/** How long a shutdown may take before the process exits anyway (a handler that never returns). */
const SHUTDOWN_GRACE_MS = 5000;
const SHUTDOWN_DEADLINE_MS = SHUTDOWN_GRACE_MS + 10_000;

// Registered first: a parent that dies (or stops us) while the module loads must still end us.
const shutdown = new AbortController();
const stop = () => shutdown.abort();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('disconnect', stop);
if (process.send && !process.connected) stop();
// A supervisor killed with kill -9 cannot stop a replica whose handler blocks the event loop.
if (process.send) watchParent(SHUTDOWN_DEADLINE_MS + 2000);
shutdown.signal.addEventListener('abort', () => {
  // Uncommitted records are handled again by the next owner: exiting late is safe, hanging is not.
  setTimeout(() => process.exit(1), SHUTDOWN_DEADLINE_MS).unref();
});
const pending: SupervisorToWorker[] = [];
let handle: ((m: SupervisorToWorker) => void) | undefined;
process.on('message', (m: SupervisorToWorker) => {
  if (m.type === 'stop') shutdown.abort();
  else if (handle) handle(m);
  else pending.push(m);
});

function errorFields(error: unknown): { message: string; stack?: string } {
  if (error instanceof Error)
    return { message: error.message, ...(error.stack ? { stack: error.stack } : {}) };
  return { message: String(error) };
}

function parseLaunch(): WorkerLaunch {
  const text = process.env.TRIBUTARY_WORKER;
  if (!text) throw new ConfigError('TRIBUTARY_WORKER is not set: this entry is started by the supervisor');
  const launch = JSON.parse(text) as WorkerLaunch;
  for (const field of ['name', 'module', 'dataDir'] as const) {
    if (typeof launch[field] !== 'string')
      throw new ConfigError(`TRIBUTARY_WORKER.${field} must be a string`);
  }
  return launch;
}

/** The log exists once the capture appended; until then the replica waits (heartbeating). */
async function openLog(
  dataDir: string,
  nats: NatsLogRef | undefined,
  signal: AbortSignal,
  logger: Logger,
): Promise<OpenedEventLog | undefined> {
  let warned = false;
  while (!signal.aborted) {
    try {
      const log = await openLogReader(dataDir, nats);
      if (log !== undefined) return log;
    } catch (error) {
      if (!warned) logger.warn({ err: error }, 'cannot open the event log yet; retrying');
      warned = true;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return undefined;
}

/**
 * Offsets an earlier version kept in the data directory for a `run --log nats://` consumer move to
 * the bucket once, when the bucket has none for the group (so an upgrade does not start it over).
 */
async function adoptLocalOffsets(
  dataDir: string,
  group: string,
  nats: NatsConsumerState,
  logger: Logger,
): Promise<void> {
  if (!existsSync(join(dataDir, CONSUMER_STORE_FILE))) return;
  if ((await nats.committed(group)).length > 0) return;
  const local = ConsumerStore.open({ dataDir });
  try {
    const offsets = local.committed(group);
    if (offsets.length === 0) return;
    await nats.commit(group, offsets);
    logger.info({ group, partitions: offsets.length }, 'offsets of the data directory moved to the NATS log');
  } finally {
    local.close();
  }
}

async function main(): Promise<number> {
  let launch: WorkerLaunch;
  try {
    launch = parseLaunch();
  } catch (error) {
    process.stderr.write(`${errorFields(error).message}\n`);
    await send({ type: 'fatal', ...errorFields(error) });
    return 2;
  }
  // Below the capture (see priority.ts): the supervisor already lowered the main thread's niceness.
  const lowered = lowerPriority(launch.niceness);
  const level = launch.logLevel ?? process.env.TRIBUTARY_LOG_LEVEL ?? 'info';
  const logger = pino({ level, base: { consumer: launch.name, replica: launch.replica, pid: process.pid } });
  if (lowered) {
    void lowered.autogroup.then((autogroup) =>
      logger.debug({ niceness: lowered.niceness, idle: lowered.idle, autogroup }, 'priority lowered'),
    );
  }
  let consumer: Awaited<ReturnType<typeof loadConsumer>>;
  try {
    consumer = await loadConsumer(launch.name, launch.module);
  } catch (error) {
    logger.fatal({ err: error }, 'cannot load the consumer');
    await send({ type: 'fatal', ...errorFields(error) });
    return 1;
  }

  let fatal: Error | undefined;
  let store: ConsumerState;
  let closeStore: () => Promise<void> | void;
  try {
    if (launch.log !== undefined) {
      // On a NATS log the state is in its bucket, wherever the replica runs: `consumers run`
      // replicas (a member: fenced commits) and those of `run --log nats://` alike.
      const bucket = await NatsLogBucket.open(launch.log, { waitMs: 60_000, signal: shutdown.signal });
      const nats = new NatsConsumerState(bucket.kv, {
        ...(launch.member !== undefined ? { member: launch.member } : {}),
        logger,
      });
      if (launch.member === undefined) await adoptLocalOffsets(launch.dataDir, consumer.group, nats, logger);
      store = nats;
      closeStore = () => bucket.close();
    } else {
      const local = ConsumerStore.open({ dataDir: launch.dataDir });
      store = local;
      closeStore = () => local.close();
    }
  } catch (error) {
    logger.fatal({ err: error }, 'cannot open the consumer store');
    await send({ type: 'fatal', ...errorFields(error) });
    return 1;
  }
  let runner: ConsumerRunner | undefined;
  const heartbeat = () => {
    const { counters, metrics } = runner?.takeCounters() ?? {
      counters: { processed: 0, failed: 0, retried: 0, deadLettered: 0, durations: [] },
      metrics: {},
    };
    return send({
      type: 'heartbeat',
      inFlight: runner?.inFlight ?? 0,
      lastProgressAt: runner?.lastProgressAt ?? Date.now(),
      counters,
      ...(Object.keys(metrics).length > 0 ? { metrics } : {}),
      ...(runner?.failing ? { failing: true } : {}),
    });
  };
  const timer = setInterval(() => void heartbeat(), Math.max(50, launch.heartbeatMs || 1000));
  await send({ type: 'ready', description: describeConsumer(consumer) });

  // Until the log exists (no capture yet) the replica holds nothing: it remembers assignments
  // and answers revokes at once.
  let waiting: TopicPartitionRef[] = [];
  const same = (a: TopicPartitionRef, b: TopicPartitionRef) =>
    a.topic === b.topic && a.partition === b.partition;
  handle = (m) => {
    if (m.type === 'assign') waiting.push(...m.partitions.filter((p) => !waiting.some((w) => same(w, p))));
    else if (m.type === 'revoke') {
      waiting = waiting.filter((w) => !m.partitions.some((p) => same(w, p)));
      void send({ type: 'revoked', id: m.id });
    }
  };
  for (const m of pending.splice(0)) handle(m);
  const log = await openLog(launch.dataDir, launch.log, shutdown.signal, logger);
  if (log) {
    runner = new ConsumerRunner({
      consumer,
      replica: launch.replica,
      log,
      store,
      logger,
      shutdownGraceMs: SHUTDOWN_GRACE_MS,
      // The capture writing to this data directory may ask its consumers to wait (consumers.yieldToCapture).
      yieldGate: new YieldGate(launch.dataDir),
      onFatal: (error) => {
        fatal ??= error;
        shutdown.abort();
      },
      ...(launch.failure ? { failure: launch.failure } : {}),
      ...(launch.offsetReset ? { offsetReset: launch.offsetReset } : {}),
      onFailing: (failing) => void send({ type: 'failing', ...failing }),
    });
  }

  try {
    if (runner) {
      const r = runner;
      await r.start();
      // Messages run one after the other: a revoke answered before the next assign.
      const failed = (error: unknown) => {
        fatal ??= error instanceof Error ? error : new Error(String(error));
        shutdown.abort();
      };
      let chain = r.assign(waiting).catch(failed);
      handle = (m) => {
        chain = chain
          .then(async () => {
            if (shutdown.signal.aborted) return;
            if (m.type === 'assign') await r.assign(m.partitions);
            else if (m.type === 'revoke') {
              await r.revoke(m.partitions);
              await send({ type: 'revoked', id: m.id });
            }
          })
          .catch(failed);
      };
      for (const m of pending.splice(0)) handle(m);
      void heartbeat();
    }
    if (!shutdown.signal.aborted) {
      await new Promise((resolve) => shutdown.signal.addEventListener('abort', resolve, { once: true }));
    }
    await runner?.stop();
  } catch (error) {
    fatal ??= error instanceof Error ? error : new Error(String(error));
    await runner?.stop().catch(() => {});
  } finally {
    clearInterval(timer);
  }
  // The last counters (the records drained at stop) must reach the supervisor before the exit.
  await heartbeat();
  await closeStore();
  await log?.close();
  if (fatal) {
    logger.error({ err: fatal }, 'replica stopped on an error');
    await send({ type: 'error', ...errorFields(fatal) });
    return 1;
  }
  logger.info('replica stopped');
  return 0;
}

process.exitCode = await main();
if (process.connected) process.disconnect();
// Ends whatever the user's module left open (timers, sockets) once everything is committed.
setTimeout(() => process.exit(), 50).unref();
