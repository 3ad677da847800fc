import { mkdirSync } from 'node:fs';
import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConfigError, isTributaryError } from '../core/errors.ts';
import { formatLsn } from '../core/lsn.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { readTableColumns } from '../source/postgres/filter-catalog.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import { PostgresSource } from '../source/postgres/postgres-source.ts';
import type { SlotState } from '../source/postgres/source-catalog.ts';
import { Capture, type CaptureObserver } from './capture.ts';
import { RateMeter, writeStatus } from './capture-status.ts';
import { ConsumerYield } from './consumer-yield.ts';
import { EventFilter } from './event-filter.ts';
import { schemaHistoryTopic } from './schema-history.ts';
import { SlotLagMonitor } from './slot-lag-monitor.ts';
import { prepareSource, setUpSnapshots, withSignalTable } from './snapshot-setup.ts';
import type { SnapshotTracker } from './snapshot-tracker.ts';
import type { SnapshotWorkers } from './snapshot-workers.ts';

export interface RunningCapture {
  readonly capture: Capture;
  readonly source: PostgresSource;
  readonly log: EmbeddedEventLog;
  /** Settles when capture ends: resolves after `stop()`, rejects on a fatal error. */
  readonly done: Promise<void>;
  /** Snapshot jobs and their progress (initial snapshot, backfills). */
  readonly snapshots: SnapshotTracker;
  /** Holds the consumers of this data directory back while the capture catches up. */
  readonly consumerYield: ConsumerYield;
  /** The slot as last polled (every status interval), `null` before the first answer. */
  slotState(): SlotState | null;
  /** Idempotent: stops reading, makes what was read durable, confirms it, closes everything. */
  stop(): Promise<void>;
}

export interface StartCaptureOptions {
  readonly logger: Logger;
  /** How often the status file and slot lag are refreshed. */
  readonly statusIntervalMs?: number;
  /** Metrics hook, told of every durable append. */
  readonly observer?: CaptureObserver;
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
  const log = EmbeddedEventLog.open({
    dataDir: config.dataDir,
    defaultPartitions: config.log.partitions,
    durable: config.log.durable,
    walLimitBytes: config.log.walLimitMb * 1024 * 1024,
    retention: {
      ...(config.log.retention.maxAgeHours ? { maxAgeMs: config.log.retention.maxAgeHours * 3_600_000 } : {}),
      ...(config.log.retention.maxBytes ? { maxBytes: config.log.retention.maxBytes } : {}),
    },
  });
  const checkpointName = `postgres:${config.source.slot}`;
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
        snapshot: snapshots.tracker.status(),
        consumersHeld: consumerYield.stats,
      });
    } catch (error) {
      logger.warn({ err: error }, 'could not write the status file');
    }
  };
  refresh();
  const timer = setInterval(() => refresh(), options.statusIntervalMs ?? 1000);
  const retention =
    config.log.retention.maxAgeHours || config.log.retention.maxBytes
      ? setInterval(() => void log.enforceRetention(Date.now()), 60_000)
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
    consumerYield,
    slotState: () => slot,
    stop,
  };
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
