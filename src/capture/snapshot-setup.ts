import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import { isTributaryError } from '../core/errors.ts';
import type { EventLog } from '../core/event-log.ts';
import type { Lsn } from '../core/lsn.ts';
import type { PostgresSource } from '../source/postgres/postgres-source.ts';
import { SnapshotReader } from '../source/postgres/snapshot-reader.ts';
import { dropSlot } from '../source/postgres/source-setup.ts';
import { formatTableName, parseTableName, type TableName } from '../source/postgres/table-name.ts';
import { type CapturePosition, encodePosition } from './capture-position.ts';
import type { SnapshotJobState, SnapshotProgress } from './snapshot-tracker.ts';
import { SnapshotTracker } from './snapshot-tracker.ts';
import { SnapshotWorkers } from './snapshot-workers.ts';

export type SnapshotMode = TributaryConfig['snapshot']['mode'];

/**
 * Whether this start snapshots every captured table. `initial`/`initial_only`: when nothing is
 * stored yet (a new slot); `always`: at every start, unless an earlier one is still unfinished
 * (it resumes instead); `never`: no. A re-snapshot requested by `source.onSlotLost` always does.
 */
export function wantsFullSnapshot(mode: SnapshotMode, stored: CapturePosition | null): boolean {
  if (stored?.snapshot?.full) return true;
  switch (mode) {
    case 'never':
      return false;
    case 'initial':
    case 'initial_only':
      return stored === null;
    case 'always':
      return !(stored?.snapshot?.jobs ?? []).some((job) => job.kind === 'initial');
  }
}

export interface SnapshotSetupOptions {
  readonly config: TributaryConfig;
  readonly url: string;
  readonly log: EventLog;
  readonly checkpointName: string;
  readonly stored: CapturePosition | null;
  readonly logger: Logger;
}

/**
 * Builds the tracker from the stored position, plans a full snapshot when the mode asks for it
 * and stores the plan before streaming starts, so that a crash from here on resumes it rather
 * than forgetting it.
 */
export async function setUpSnapshots(
  options: SnapshotSetupOptions,
): Promise<{ tracker: SnapshotTracker; workers: SnapshotWorkers }> {
  const { config, url, log, checkpointName, stored, logger } = options;
  const tracker = new SnapshotTracker({
    progress: stored?.snapshot ?? null,
    signalTable: config.snapshot.signalTable,
  });
  if (wantsFullSnapshot(config.snapshot.mode, stored)) {
    const tables = await capturedTables(url, config);
    const run = randomUUID().slice(0, 8);
    const jobs: SnapshotJobState[] = tables.map((name, i) => ({
      id: `initial-${run}-${i}`,
      schema: name.schema,
      table: name.table,
      kind: 'initial',
      condition: null,
      cursor: null,
      rows: 0,
    }));
    // A full snapshot replaces the unfinished jobs of an earlier one (backfills stay).
    const kept = (stored?.snapshot?.jobs ?? []).filter((job) => job.kind === 'backfill');
    const progress: SnapshotProgress = { jobs: [...kept, ...jobs] };
    await log.append([], {
      source: checkpointName,
      position: encodePosition({ lsn: stored?.lsn ?? 0n, tx: stored?.tx ?? null, snapshot: progress }),
    });
    tracker.plan(jobs);
    logger.info({ tables: tables.map(formatTableName), mode: config.snapshot.mode }, 'snapshot planned');
  } else if (tracker.unfinished > 0) {
    logger.info({ jobs: tracker.unfinished }, 'unfinished snapshot found: resuming it');
  }
  const workers = new SnapshotWorkers({
    url,
    tracker,
    chunkRows: config.snapshot.chunkRows,
    maxParallelChunks: config.snapshot.maxParallelChunks,
    initialChunks: config.snapshot.initialChunks,
    logger,
  });
  return { tracker, workers };
}

/** The publication's tables, less the excluded ones and the signal table. */
async function capturedTables(url: string, config: TributaryConfig): Promise<TableName[]> {
  const reader = new SnapshotReader(url);
  try {
    const key = (t: TableName) => `${t.schema}\0${t.table}`;
    const skip = new Set(
      [...config.filter.excludeTables, config.snapshot.signalTable].map((t) => key(parseTableName(t))),
    );
    return (await reader.publicationTables(config.source.publication)).filter((t) => !skip.has(key(t)));
  } finally {
    await reader.close();
  }
}

/**
 * `source.onSlotLost = resnapshot`: when preparing the source fails with SLOT_LOST, stores a
 * position that asks for a full snapshot (first, so that a crash in between does it again),
 * drops the stale slot and prepares a new source, which creates the slot afresh.
 */
export async function prepareSource(
  source: PostgresSource,
  create: (startLsn: Lsn | undefined) => PostgresSource,
  options: Omit<SnapshotSetupOptions, 'stored'>,
): Promise<{ source: PostgresSource; stored: CapturePosition | null } | null> {
  try {
    await source.prepare();
    return null;
  } catch (error) {
    if (
      !isTributaryError(error) ||
      error.code !== 'SLOT_LOST' ||
      options.config.source.onSlotLost !== 'resnapshot'
    )
      throw error;
    const { config, url, log, checkpointName, logger } = options;
    logger.warn(
      { slot: config.source.slot, reason: error.message },
      'replication slot lost: changes since the last position may be missing; onSlotLost=resnapshot: recreating the slot and snapshotting every table again',
    );
    await source.stop();
    const stored: CapturePosition = { lsn: 0n, tx: null, snapshot: { jobs: [], full: true } };
    await log.append([], { source: checkpointName, position: encodePosition(stored) });
    const client = new pg.Client({ connectionString: url, application_name: 'tributary' });
    await client.connect();
    try {
      await dropSlot(client, config.source.slot);
    } finally {
      await client.end();
    }
    const fresh = create(undefined);
    try {
      await fresh.prepare();
    } catch (failure) {
      await fresh.stop();
      throw failure;
    }
    return { source: fresh, stored };
  }
}

/**
 * With a table list, the publication is set to exactly those tables at each start: the signal
 * table joins them when it exists, or backfill signals would stop reaching capture.
 */
export async function withSignalTable(url: string, config: TributaryConfig): Promise<TableName[]> {
  const tables = config.source.tables.map(parseTableName);
  if (tables.length === 0) return tables;
  const signal = parseTableName(config.snapshot.signalTable);
  if (tables.some((t) => t.schema === signal.schema && t.table === signal.table)) return tables;
  const client = new pg.Client({ connectionString: url, application_name: 'tributary' });
  try {
    await client.connect();
    const found = await client.query(
      `select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relname = $2`,
      [signal.schema, signal.table],
    );
    return found.rowCount ? [...tables, signal] : tables;
  } catch {
    // Connection problems are reported, with their fix, by the source's own checks.
    return tables;
  } finally {
    await client.end().catch(() => undefined);
  }
}
