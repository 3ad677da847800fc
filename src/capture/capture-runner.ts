import { mkdirSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConfigError, isTributaryError } from '../core/errors.ts';
import { formatLsn } from '../core/lsn.ts';
import { createEncoder } from '../encode/index.ts';
import type { LeaderTerm } from '../log/nats/nats-leadership.ts';
import { type OpenedEventLog, openEventLog } from '../log/open-event-log.ts';
import { readTableColumns } from '../source/postgres/filter-catalog.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import { PostgresSource } from '../source/postgres/postgres-source.ts';
import type { SlotState } from '../source/postgres/source-catalog.ts';
import { Capture, type CaptureObserver } from './capture.ts';
import { readStatus, writeStatus } from './capture-status.ts';
import { ConsumerYield } from './consumer-yield.ts';
import { EventFilter } from './event-filter.ts';
import { RateMeter } from './rate-meter.ts';
import { schemaHistoryTopic } from './schema-history.ts';
import { SlotLagMonitor } from './slot-lag-monitor.ts';
import { snapshotHistory } from './snapshot-history.ts';
import { prepareSource, setUpSnapshots, withSignalTable } from './snapshot-setup.ts';
import type { SnapshotJobStatus, SnapshotTracker } from './snapshot-tracker.ts';
import type { SnapshotWorkers } from './snapshot-workers.ts';

export interface RunningCapture {
  readonly capture: Capture;
  readonly source: PostgresSource;
  readonly log: OpenedEventLog;
  /** Settles when capture ends: resolves after `stop()`, rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Snapshot jobs and their progress (initial snapshot, backfills). */
  readonly snapshots: SnapshotTracker;
  /** This run's snapshot jobs after those finished in earlier runs (see snapshot-history.ts). */
  snapshotJobs(): SnapshotJobStatus[];
  /** Holds the consumers of this data directory back while the capture catches up. */
  readonly consumerYield: ConsumerYield;
  /** The slot as last polled (every status interval), `null` before the first answer. */
  slotState(): SlotState | null;
  /** NATS: the leadership term this capture took (undefined on the embedded log). */
  readonly term: LeaderTerm | undefined;
  /** Idempotent: stops reading, makes what was read durable, confirms it, closes everything. */
  stop(): Promise<void>;
}

export interface StartCaptureOptions {
  readonly logger: Logger;
  /** How often the status file and slot lag are refreshed. */
  readonly statusIntervalMs?: number;
  /** Metrics hook, told of every durable append. */
  readonly observer?: CaptureObserver;
  /** `wal_sender_timeout` of the replication connection (`run --standby` sets it, capture-standby.ts). */
  readonly walSenderTimeoutMs?: number;
  /** Longest wait between attempts to get the slot back (`run --standby`: a standby that lost the race retries often). */
  readonly reconnectMaxDelayMs?: number;
}

/** Wires source → encoder → embedded log from a configuration and starts capturing. */
export async function startCapture(
  config: TributaryConfig,
  options: StartCaptureOptions,
): Promise<RunningCapture> {
  const url = config.source.url;
  if (!url) {
    throw new ConfigError('no source database given', {
      hint: 'pass --source postgres://user:password@host:5432/db, set DATABASE_URL, or use `tributary up` for the embedded demo',
    });
  }
  const { logger } = options;
  // Contradictory filter and mask settings fail before anything is opened.
  const filter = EventFilter.fromConfig(config);
  mkdirSync(config.dataDir, { recursive: true });
  const log = await openEventLog(config, {
    // NATS without a quorum: the append waits and retries (capture pauses, the slot is kept).
    onRetry: (error, attempt) =>
      logger.warn(
        { err: error, attempt },
        'the event log cannot store the append yet; retrying (capture paused)',
      ),
  });
  const checkpointName = `postgres:${config.source.slot}`;
  // NATS (docs/nats.md, "Capture active/standby"): once the source holds the slot (the lock),
  // this capture takes the next leadership term, which fences a former leader, and only then
  // reads where to resume: whatever the former leader appended until then is skipped.
  let term: LeaderTerm | undefined;
  const takeLeadership = log.takeLeadership?.bind(log);
  const onSlotHeld = takeLeadership
    ? async () => {
        const taken = await takeLeadership(checkpointName, leaderHolder(config));
        term = taken.term;
        logger.info(
          { term: term.term, previous: taken.previous?.holder ?? null },
          taken.previous
            ? 'holding the slot: took over the capture leadership'
            : 'took the capture leadership',
        );
        await capture.reloadPosition();
      }
    : undefined;
  let source: PostgresSource;
  let position: Awaited<ReturnType<typeof Capture.position>>;
  const tables = await withSignalTable(url, config);
  const createSource = (startLsn: bigint | undefined) =>
    new PostgresSource({
      url,
      slot: config.source.slot,
      publication: config.source.publication,
      tables,
      ...(startLsn !== undefined ? { startLsn } : {}),
      statusIntervalMs: config.source.statusIntervalMs,
      heartbeatIntervalMs: config.source.heartbeatIntervalMs,
      toastFetch: config.toast.fetch,
      logger,
      ...(onSlotHeld ? { onSlotHeld } : {}),
      ...(options.walSenderTimeoutMs ? { walSenderTimeoutMs: options.walSenderTimeoutMs } : {}),
      ...(options.reconnectMaxDelayMs ? { reconnect: { maxDelayMs: options.reconnectMaxDelayMs } } : {}),
    });
  try {
    position = await Capture.position(log, checkpointName);
    // A position at LSN 0 holds only a planned snapshot: nothing was streamed yet.
    source = createSource(position && position.lsn > 0n ? position.lsn : undefined);
  } catch (error) {
    await log.close();
    throw error;
  }
  let capture: Capture;
  let snapshots: { tracker: SnapshotTracker; workers: SnapshotWorkers };
  // Read before this run rewrites the status file: the snapshots finished by earlier runs.
  let earlier: readonly SnapshotJobStatus[] = [];
  try {
    earlier = readStatus(config.dataDir)?.snapshot ?? [];
  } catch {
    // an unreadable status file only loses the history
  }
  const snapshotJobs = () => snapshotHistory(earlier, snapshots.tracker.status());
  try {
    // Before prepare(), so that a filter naming a missing table or column creates no slot.
    if (filter) filter.check(await readTableColumns(url, filter.tables()), config.source.tables);
    const setup = { config, url, log, checkpointName, logger };
    const recreated = await prepareSource(source, createSource, setup);
    if (recreated) ({ source, stored: position } = recreated);
    snapshots = await setUpSnapshots({ ...setup, stored: position });
    const encoderOptions = {
      format: config.format,
      topicPrefix: config.topicPrefix,
      tombstones: config.tombstones,
    } as const;
    capture = new Capture({
      source,
      log,
      encoder: createEncoder(encoderOptions),
      encoderOptions,
      checkpointName,
      serverName: config.topicPrefix,
      database: await source.database(),
      maxBatchRecords: config.capture.maxBatchRecords,
      schemaHistoryTopic: schemaHistoryTopic(config.topicPrefix),
      ...(filter ? { filter } : {}),
      ...(options.observer ? { observer: options.observer } : {}),
      snapshots: snapshots.tracker,
      logger,
    });
  } catch (error) {
    await source.stop();
    await log.close();
    throw error;
  }

  const consumerYield = new ConsumerYield({
    dataDir: config.dataDir,
    mode: config.consumers.yieldToCapture,
    logger,
    // The status refresh's first slot query, started just before (no second query at start-up).
    startBacklog: async () => (await slotPoll)?.lagBytes ?? null,
    received: () => source.stats.messagesReceived,
    backlog: async () => {
      const streamed = source.stats.streamedLsn;
      if (streamed === 0n) return null;
      return Math.max(0, Number((await source.serverLsn()) - streamed));
    },
  });
  const startedAt = new Date().toISOString();
  const meter = new RateMeter();
  let slot: SlotState | null = null;
  let slotPoll: Promise<SlotState | null> | undefined;
  let polling = false;
  const lag = new SlotLagMonitor(config.source.slot, config.source.lagWarningBytes, logger);
  let statusFailing = false;
  const refresh = (poll = true) => {
    if (poll && !polling) {
      polling = true;
      slotPoll = source.slotState();
      slotPoll
        .then((state) => {
          slot = state;
          lag.observe(state);
        })
        .catch((error) => logger.debug({ err: error }, 'slot state query failed'))
        .finally(() => {
          polling = false;
        });
    }
    try {
      writeStatus(config.dataDir, {
        pid: process.pid,
        startedAt,
        updatedAt: new Date().toISOString(),
        source: describeTarget(url),
        slot: config.source.slot,
        publication: config.source.publication,
        connected: source.stats.connected,
        confirmedLsn: formatLsn(source.stats.confirmedLsn),
        durableLsn: formatLsn(capture.stats.durableLsn),
        serverLsn: slot ? formatLsn(slot.serverLsn) : null,
        lagBytes: slot?.lagBytes ?? null,
        retainedWalBytes: slot?.retainedBytes ?? null,
        transactions: capture.stats.transactions,
        events: capture.stats.events,
        records: capture.stats.records,
        recordsPerSecond: Math.round(meter.sample(Date.now(), capture.stats.records)),
        reconnects: source.stats.reconnects,
        diskFull: source.stats.diskFull,
        snapshot: snapshotJobs(),
        consumersHeld: consumerYield.stats,
        role: 'active',
        ...(term ? { term: term.term } : {}),
      });
      if (statusFailing) logger.info('the status file is written again');
      statusFailing = false;
    } catch (error) {
      // Once per episode (a full disk fails every write until space returns), not every interval.
      if (!statusFailing) logger.warn({ err: error }, 'could not write the status file');
      statusFailing = true;
    }
  };
  refresh();
  const timer = setInterval(() => refresh(), options.statusIntervalMs ?? 1000);
  const retention =
    config.log.retention.maxAgeHours || config.log.retention.maxBytes
      ? setInterval(() => void log.enforceRetention?.(Date.now()), 60_000)
      : undefined;

  // Before the stream: a capture that starts behind holds its consumers before its first append.
  consumerYield.start();
  const done = capture.run().finally(() => {
    clearInterval(timer);
    if (retention) clearInterval(retention);
    consumerYield.stop();
  });
  done.catch(() => undefined);
  snapshots.workers.start();
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      consumerYield.stop();
      await snapshots.workers.stop();
      await source.stop(() => capture.settle());
      await done.catch(() => undefined);
      refresh(false);
      await log.close();
    })();
    return stopping;
  };
  if (config.snapshot.mode === 'initial_only') {
    // Snapshot, then stop: `done` resolves once the last chunk is durable.
    void snapshots.tracker.whenIdle().then(() => {
      logger.info('snapshot finished (snapshot.mode initial_only): stopping');
      return stop();
    });
  }
  return {
    capture,
    source,
    log,
    done,
    snapshots: snapshots.tracker,
    snapshotJobs,
    consumerYield,
    slotState: () => slot,
    get term() {
      return term;
    },
    stop,
  };
}

/** Who a leadership term names: host, pid and data directory (shown by a standby's status). */
export function leaderHolder(config: TributaryConfig): string {
  return `${hostname()} pid ${process.pid} (${config.dataDir})`;
}

/**
 * Waits until `until` settles (a signal) or capture ends. With `source.onSlotLost = resnapshot`, a
 * slot lost while streaming does not end it: the capture is stopped and started again, and the
 * start finds the slot lost, recreates it and snapshots every table (as at start-up).
 * `restarted` is told of each new capture. Returns the capture running at the end; rethrows any
 * other failure.
 */
export async function keepCapturing(
  first: RunningCapture,
  config: TributaryConfig,
  options: StartCaptureOptions,
  until: Promise<unknown>,
  restarted: (running: RunningCapture) => void,
): Promise<RunningCapture> {
  let running = first;
  for (;;) {
    const ended = await Promise.race([until, running.done]).then(
      () => null,
      (error: unknown) => ({ error }),
    );
    if (!ended) return running;
    const { error } = ended;
    if (!isTributaryError(error) || error.code !== 'SLOT_LOST' || config.source.onSlotLost !== 'resnapshot')
      throw error;
    options.logger.warn(
      { err: error },
      'replication slot lost while streaming; source.onSlotLost=resnapshot: restarting capture, which recreates the slot and snapshots every table again',
    );
    await running.stop();
    running = await startCapture(config, options);
    restarted(running);
  }
}
