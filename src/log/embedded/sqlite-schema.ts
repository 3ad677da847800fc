import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { LogError } from '../../core/errors.ts';
import { diskFullError, freeBytes } from './disk-space.ts';

/** Stamped in the SQLite header (`PRAGMA application_id`) so we never mistake another database for a log. */
export const APPLICATION_ID = 0x54524942; // "TRIB"
/** Format 2 added the `batches` table (row batches); format 1 logs are migrated by the writer. */
export const SCHEMA_VERSION = 2;
export const LOG_FILE_NAME = 'log.sqlite';

/**
 * Record ids pack the partition and the offset into SQLite's 64-bit rowid:
 * `(partition_id << 43) | offset`. The records table is then one table B-tree whose interior pages hold
 * only integers; a WITHOUT ROWID table keyed by (topic, partition, offset) carries whole ~500-byte rows
 * in its interior cells and measured 15-40 % slower (docs/embedded-log.md). Limits: 2^43 offsets per
 * partition, 2^20 partitions over the life of a log. The shift is done in SQL because the id exceeds
 * JavaScript's safe integers.
 */
export const OFFSET_BITS = 43;
export const OFFSET_MASK = 2 ** OFFSET_BITS - 1;
export const MAX_PARTITION_ID = 2 ** 20 - 1;
/** Added to each record's text length to approximate its stored size (rowid, timestamp, cell header). */
export const RECORD_OVERHEAD_BYTES = 24;
/** Added to a row batch's codec, header and data lengths (rowid, offsets, timestamp, overflow pages). */
export const BATCH_OVERHEAD_BYTES = 48;
/** Measured ~30 % faster appends of ~400-byte records than 4 KiB pages; small commits stay a few pages. */
const PAGE_SIZE = 16_384;
export const BUSY_TIMEOUT_MS = 10_000;

/**
 * Row batches (format 2): one row per batch, id = `(partition_id << 43) + LAST offset`, so the batch
 * holding offset o is the first one with id >= (partition_id << 43) + o. `data` is the last column so
 * that reading the others never walks the blob's overflow pages.
 */
const BATCHES = `CREATE TABLE batches (
  id          INTEGER PRIMARY KEY,
  base_offset INTEGER NOT NULL,
  timestamp   INTEGER NOT NULL,
  codec       TEXT NOT NULL,
  header      TEXT NOT NULL,
  data        BLOB NOT NULL
);`;

const SCHEMA = `
CREATE TABLE topics (
  topic_id   INTEGER PRIMARY KEY,
  name       TEXT NOT NULL UNIQUE,
  partitions INTEGER NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE partitions (
  partition_id INTEGER PRIMARY KEY,
  topic_id     INTEGER NOT NULL,
  partition    INTEGER NOT NULL,
  start_offset INTEGER NOT NULL DEFAULT 0,
  end_offset   INTEGER NOT NULL DEFAULT 0,
  bytes        INTEGER NOT NULL DEFAULT 0,
  UNIQUE (topic_id, partition)
);
CREATE TABLE records (
  id        INTEGER PRIMARY KEY,
  key       TEXT,
  value     TEXT,
  headers   TEXT,
  timestamp INTEGER NOT NULL
);
${BATCHES}
CREATE TABLE checkpoints (
  source     TEXT PRIMARY KEY,
  position   TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE group_offsets (
  group_name  TEXT NOT NULL,
  topic       TEXT NOT NULL,
  partition   INTEGER NOT NULL,
  next_offset INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  PRIMARY KEY (group_name, topic, partition)
) WITHOUT ROWID;
`;

export interface OpenDatabaseOptions {
  readonly dataDir: string;
  readonly readonly: boolean;
  readonly durable: boolean;
}

/** Opens (and on first use creates) the log database, refusing anything that is not a Tributary log. */
export function openLogDatabase(options: OpenDatabaseOptions): { db: Database.Database; file: string } {
  const file = join(options.dataDir, LOG_FILE_NAME);
  if (!options.readonly) {
    try {
      mkdirSync(options.dataDir, { recursive: true });
    } catch (cause) {
      throw new LogError('LOG_OPEN_FAILED', `Cannot create the log directory ${options.dataDir}`, {
        cause,
        hint: 'Choose a data directory that is a writable folder (not a file), or fix its permissions.',
      });
    }
  }
  let db: Database.Database;
  try {
    db = new Database(file, {
      readonly: options.readonly,
      fileMustExist: options.readonly,
      timeout: BUSY_TIMEOUT_MS,
    });
  } catch (cause) {
    throw new LogError('LOG_OPEN_FAILED', `Cannot open the event log ${file}`, {
      cause,
      hint: options.readonly
        ? 'A read-only open needs an existing log: start the capture first or check the data directory.'
        : 'Check that the data directory is writable and not on a network file system.',
    });
  }
  try {
    prepare(db, file, options);
  } catch (error) {
    db.close();
    throw error;
  }
  return { db, file };
}

function prepare(db: Database.Database, file: string, options: OpenDatabaseOptions): void {
  const notALog = (detail: string, cause?: unknown) =>
    new LogError('LOG_CORRUPT', `${file} is not a Tributary event log (${detail})`, {
      cause,
      hint: 'Move the file away or point the data directory elsewhere; Tributary will not overwrite it.',
    });
  let applicationId: number;
  try {
    applicationId = db.pragma('application_id', { simple: true }) as number;
  } catch (cause) {
    throw classifySqliteError(cause, file, 'open', notALog('not a SQLite database', cause));
  }
  if (applicationId === 0) {
    const tables = db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table'")
      .pluck()
      .get() as number;
    if (tables > 0) throw notALog('a SQLite database written by another program');
    if (options.readonly) {
      throw new LogError('LOG_OPEN_FAILED', `The event log ${file} has not been initialised yet`, {
        hint: 'Start the writer (the capture process) once before opening the log read-only.',
      });
    }
    initialise(db, file);
  } else if (applicationId !== APPLICATION_ID) {
    throw notALog(`application id ${applicationId}`);
  }
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new LogError(
      'LOG_OPEN_FAILED',
      `${file} uses log format ${version}; this Tributary reads ${SCHEMA_VERSION}`,
      {
        hint: 'Upgrade Tributary to the version that wrote this log.',
      },
    );
  }
  if (!options.readonly) {
    // WAL lets readers in other processes see committed appends while this process writes.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new LogError('LOG_OPEN_FAILED', `${file} cannot use write-ahead logging (journal mode ${mode})`, {
        hint: 'Put the data directory on a local file system.',
      });
    }
    db.pragma(`synchronous = ${options.durable ? 'FULL' : 'NORMAL'}`);
    if (version < SCHEMA_VERSION) migrate(db);
  }
  db.pragma('cache_size = -65536');
}

function initialise(db: Database.Database, file: string): void {
  db.pragma(`page_size = ${PAGE_SIZE}`);
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    // Two writers may race to create the log: the loser finds it stamped inside its own transaction.
    if (db.pragma('application_id', { simple: true }) === APPLICATION_ID) return;
    db.exec(SCHEMA);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
  if (db.pragma('application_id', { simple: true }) !== APPLICATION_ID) {
    throw new LogError('LOG_OPEN_FAILED', `Could not initialise the event log ${file}`);
  }
}

/**
 * Brings an older format up to SCHEMA_VERSION in one transaction. Only the writer migrates: a
 * read-only open of a format 1 log works as is (it simply has no batches).
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    // Another writer may have migrated between our version check and this transaction.
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version < 2) db.exec(BATCHES);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Whether the log has the `batches` table (format 2); a read-only open of a format 1 log has not. */
export function hasBatchesTable(db: Database.Database): boolean {
  return (
    db.prepare("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'batches'").get() !== undefined
  );
}

/** Turns a better-sqlite3 error into a LogError with a stable code; already classified errors pass. */
export function classifySqliteError(
  error: unknown,
  file: string,
  action: string,
  fallback?: LogError,
): LogError {
  if (error instanceof LogError) return error;
  const code =
    typeof (error as { code?: unknown })?.code === 'string' ? (error as { code: string }).code : '';
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return (
      fallback ??
      new LogError('LOG_CORRUPT', `The event log ${file} is damaged (${code} while trying to ${action})`, {
        cause: error,
        hint: 'Restore the data directory from a backup, or move it away to start a new log.',
      })
    );
  }
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new LogError('LOG_BUSY', `The event log ${file} stayed locked by another process (${action})`, {
      cause: error,
      retryable: true,
      hint: 'Only one process may append; check that no other capture uses this data directory.',
    });
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new LogError('LOG_READONLY', `The event log ${file} cannot be written (${action})`, {
      cause: error,
      hint: 'Check the permissions of the data directory and its log.sqlite-wal and -shm files.',
    });
  }
  // ENOSPC reaches SQLite as SQLITE_FULL, or as an I/O error when the disk filled mid-write.
  if (code === 'SQLITE_FULL' || (code.startsWith('SQLITE_IOERR') && (freeBytes(dirname(file)) ?? 1) === 0))
    return diskFullError(file, action, error);
  if (code.startsWith('SQLITE_IOERR')) {
    return new LogError(
      'LOG_IO_FAILED',
      `Disk error on the event log ${file} (${code} while trying to ${action})`,
      {
        cause: error,
        retryable: true,
        hint: 'Free disk space or check the disk; nothing of the failed call was stored.',
      },
    );
  }
  return (
    fallback ?? new LogError('LOG_FAILED', `Could not ${action} the event log ${file}`, { cause: error })
  );
}
