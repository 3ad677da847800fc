/**
 * One data directory has one owner: the `run` or `up` process that captures into it and runs its
 * consumers. A second one would run a second set of replicas of the same consumer groups and
 * fight over the replication slot, so it is refused at once, naming the owner.
 *
 * Mechanism, and why: the owner holds an open write transaction (`BEGIN IMMEDIATE`, SQLite's
 * RESERVED lock) on a dedicated SQLite file, `<dataDir>/owner.lock`. SQLite takes that lock with
 * `fcntl`, which the kernel releases when the process dies in any way (kill -9, OOM), so a dead
 * owner never blocks a new one and no stale-pid guessing decides who owns the directory. Taking
 * the lock is atomic, so two processes starting at the same moment cannot both win (a pidfile
 * needs a remove-and-retry step for stale files, which two starters can interleave). Node has no
 * flock; better-sqlite3 is already a dependency.
 *
 * Who the owner is (pid, command, since when) and what commands acting on the running pipeline
 * need (the source URL, publication, signal table, dashboard URL) are written by the owner to
 * `<dataDir>/owner.json`, mode 0600 (the source URL may hold a password). That file is only
 * information: it is trusted while its pid is alive with the same start time (from
 * /proc/<pid>/stat, against pid reuse), and removed on a clean stop. Readers never touch the lock,
 * so a `snapshot` or `status` never makes a starting `run` fail.
 *
 * Read-only commands (read, topics, status, consumers, logs, dlq list/show) take no lock.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConfigError, TributaryError } from '../core/errors.ts';

export const OWNER_LOCK_FILE = 'owner.lock';
export const OWNER_FILE = 'owner.json';

/** What the owner of a data directory tells other commands about itself. */
export interface DataDirOwner {
  readonly pid: number;
  /** The process's start time in clock ticks since boot (Linux), to tell a reused pid apart. */
  readonly pidStart: string | null;
  /** `run` or `up`. */
  readonly command: string;
  readonly argv: readonly string[];
  /** ISO time the ownership was taken. */
  readonly since: string;
  /** The captured database (may hold a password: the file is mode 0600). */
  readonly source?: string;
  readonly slot?: string;
  readonly publication?: string;
  readonly signalTable?: string;
  /** The dashboard / API URL, when the HTTP server runs. */
  readonly httpUrl?: string;
}

/** A second owner was refused. */
export class DataDirOwnedError extends TributaryError {
  constructor(dataDir: string, owner: DataDirOwner | null) {
    const who = owner
      ? `\`tributary ${owner.command}\` (pid ${owner.pid}, since ${owner.since})`
      : 'another process that is starting';
    super('DATA_DIR_OWNED', `data directory ${dataDir} is owned by ${who}`, {
      hint: owner
        ? `one data directory has one owner: stop pid ${owner.pid} first, or pass another --data-dir; read-only commands (read, topics, status, consumers, logs) work beside it`
        : 'one data directory has one owner: wait for it to start and stop it, or pass another --data-dir',
    });
  }
}

/**
 * What to do when the directory is already owned. Today: refuse (throw). The seam for a future
 * explicit standby mode: a policy that waits for the lock instead (polling `tryLock`), then
 * returns, so that the standby takes over when the owner dies.
 */
export type WhenOwned = (dataDir: string, owner: DataDirOwner | null) => never;

export const refuseWhenOwned: WhenOwned = (dataDir, owner) => {
  throw new DataDirOwnedError(dataDir, owner);
};

/** The ownership held by this process; `release` is idempotent (process death releases it too). */
export interface DataDirOwnership {
  /** Adds what commands acting on the running pipeline need (source, HTTP URL...) to owner.json. */
  publish(
    details: Partial<Pick<DataDirOwner, 'source' | 'slot' | 'publication' | 'signalTable' | 'httpUrl'>>,
  ): void;
  release(): void;
}

/** Takes the ownership of `dataDir` for `command`, or applies `whenOwned` (default: refuse). */
export function claimDataDir(
  dataDir: string,
  command: string,
  whenOwned: WhenOwned = refuseWhenOwned,
): DataDirOwnership {
  mkdirSync(dataDir, { recursive: true });
  const db = tryLock(dataDir);
  if (!db) whenOwned(dataDir, readOwner(dataDir));
  let info: DataDirOwner = {
    pid: process.pid,
    pidStart: processStart(process.pid),
    command,
    argv: process.argv.slice(2),
    since: new Date().toISOString(),
  };
  writeOwner(dataDir, info);
  let held = true;
  return {
    publish(details) {
      if (!held) return;
      info = { ...info, ...details };
      writeOwner(dataDir, info);
    },
    release() {
      if (!held) return;
      held = false;
      rmSync(join(dataDir, OWNER_FILE), { force: true });
      db?.exec('ROLLBACK');
      db?.close();
    },
  };
}

/** The lock database with the lock held, or null when another process holds it. */
function tryLock(dataDir: string): Database.Database | null {
  const db = new Database(join(dataDir, OWNER_LOCK_FILE), { timeout: 0 });
  try {
    db.exec('BEGIN IMMEDIATE');
    return db;
  } catch (error) {
    db.close();
    if ((error as { code?: string }).code === 'SQLITE_BUSY') return null;
    throw error;
  }
}

function writeOwner(dataDir: string, info: DataDirOwner): void {
  const path = join(dataDir, OWNER_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

/**
 * The live owner of `dataDir` as it describes itself, or null when there is none (no file, or
 * its process is gone: killed owners leave the file behind).
 */
export function readOwner(dataDir: string): DataDirOwner | null {
  let info: DataDirOwner;
  try {
    info = JSON.parse(readFileSync(join(dataDir, OWNER_FILE), 'utf8')) as DataDirOwner;
  } catch {
    return null;
  }
  if (!alive(info.pid)) return null;
  const start = processStart(info.pid);
  if (info.pidStart !== null && start !== null && start !== info.pidStart) return null;
  return info;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks), or null where there is no /proc. */
export function processStart(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after its end.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19] ?? null;
  } catch {
    return null;
  }
}

/** What `publish` takes from a loaded config (and the HTTP server's URL). */
export function pipelineDetails(
  config: TributaryConfig,
  httpUrl?: string,
): Parameters<DataDirOwnership['publish']>[0] {
  return {
    ...(config.source.url ? { source: config.source.url } : {}),
    slot: config.source.slot,
    publication: config.source.publication,
    signalTable: config.snapshot.signalTable,
    ...(httpUrl ? { httpUrl } : {}),
  };
}

/**
 * The source of the pipeline running on `dataDir`, for commands that act on it (`snapshot`,
 * `doctor`) when no source was given: its owner published it. Throws the usual "no source" error
 * naming both ways to fix it.
 */
export function runningPipelineSource(dataDir: string): DataDirOwner & { source: string } {
  const owner = readOwner(dataDir);
  if (owner?.source) return { ...owner, source: owner.source };
  throw new ConfigError(`no source database given, and no running pipeline in ${dataDir}`, {
    hint: 'pass --source postgres://user:password@host:5432/db (or set DATABASE_URL), or --data-dir <dir> of a running `tributary run`/`up`',
  });
}
