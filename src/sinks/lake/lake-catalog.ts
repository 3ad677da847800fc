/**
 * The lake's catalog: one SQLite database (`<lake>/catalog.db`) that says which Parquet files make
 * up each table at each snapshot, the tables' column types, the truncates and the sink's offsets.
 *
 * Guarantees:
 * - A snapshot is one SQLite transaction: its files (already written and fsynced by the caller),
 *   the files it removes, schema versions, truncates and the sink's partition offsets commit
 *   together or not at all. A file is visible to readers only once a committed snapshot names it.
 * - Files are never rewritten: a snapshot adds files and marks others removed (`removed_in`).
 *   The files of snapshot S are those with `added_in <= S` and (`removed_in` null or `> S`).
 * - Writers (the sink's replica, `tributary lake compact|expire|models refresh`) serialise on
 *   SQLite's write lock (`BEGIN IMMEDIATE`); readers never block (WAL mode).
 */
import Database from 'better-sqlite3';
import { OFFSETS_TABLE } from '../../consumers/transactional.ts';

export type Layer = 'bronze' | 'silver' | 'gold';

export interface FileEntry {
  readonly layer: Layer;
  /** Table (bronze, silver) or model (gold) name. */
  readonly name: string;
  /** Path relative to the lake root. */
  readonly path: string;
  readonly rows: number;
  readonly bytes: number;
  readonly minLsn: number;
  readonly maxLsn: number;
  /** Silver: the file holds one live row per key, deletes applied (a compaction's output). */
  readonly compacted: boolean;
  /** Bronze: the commit day (YYYY-MM-DD) of its rows, for retention. */
  readonly day: string | null;
}

export interface SnapshotInfo {
  readonly id: number;
  readonly committedAt: number;
  readonly kind: string;
  readonly maxLsn: number;
}

const SCHEMA = `
create table if not exists lake_snapshots (
  id integer primary key, committed_at integer not null, kind text not null,
  max_lsn integer not null default 0, rows_added integer not null default 0);
create table if not exists lake_files (
  id integer primary key, layer text not null, name text not null, path text not null unique,
  rows integer not null, bytes integer not null, min_lsn integer not null, max_lsn integer not null,
  compacted integer not null default 0, day text,
  added_in integer not null, removed_in integer);
create index if not exists lake_files_live on lake_files (layer, name, removed_in);
create table if not exists lake_columns (
  name text not null, version integer not null, columns text not null, snapshot integer not null,
  primary key (name, version));
create table if not exists lake_truncates (
  name text not null, lsn integer not null, off integer not null, snapshot integer not null);
create table if not exists lake_models (
  name text primary key, refreshed_at integer, error text, error_at integer);
create table if not exists ${OFFSETS_TABLE} (
  group_name text not null, topic text not null, partition integer not null,
  next_offset integer not null, updated_at integer not null,
  primary key (group_name, topic, partition));
`;

/** Column name → DuckDB type, in column order. */
export type Columns = [string, string][];

/** A snapshot would remove a file that is no longer live (another change removed it first). */
export class FileNotLiveError extends Error {
  constructor(readonly fileId: number) {
    super(`lake file ${fileId} is no longer live`);
  }
}

export class LakeCatalog {
  readonly db: Database.Database;

  constructor(file: string, options: { readonly?: boolean } = {}) {
    this.db = new Database(file, { timeout: 15_000, readonly: options.readonly ?? false });
    if (!options.readonly) {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.exec(SCHEMA);
    }
    this.db.pragma('busy_timeout = 15000');
  }

  close(): void {
    this.db.close();
  }

  /** The newest snapshot id (0 when none). */
  currentSnapshot(): number {
    const row = this.db.prepare('select max(id) as id from lake_snapshots').get() as { id: number | null };
    return row.id ?? 0;
  }

  snapshots(): SnapshotInfo[] {
    return (
      this.db.prepare('select id, committed_at, kind, max_lsn from lake_snapshots order by id').all() as {
        id: number;
        committed_at: number;
        kind: string;
        max_lsn: number;
      }[]
    ).map((r) => ({ id: r.id, committedAt: r.committed_at, kind: r.kind, maxLsn: r.max_lsn }));
  }

  /** The newest snapshot committed at or before `ms`, or undefined. */
  snapshotAt(ms: number): number | undefined {
    const row = this.db
      .prepare('select max(id) as id from lake_snapshots where committed_at <= ?')
      .get(ms) as { id: number | null };
    return row.id ?? undefined;
  }

  /** Files live at snapshot `s` (every layer, or one). */
  files(s: number, layer?: Layer): (FileEntry & { id: number })[] {
    const rows = this.db
      .prepare(
        `select * from lake_files where added_in <= ? and (removed_in is null or removed_in > ?)
         ${layer ? 'and layer = ?' : ''} order by id`,
      )
      .all(...(layer ? [s, s, layer] : [s, s])) as {
      id: number;
      layer: Layer;
      name: string;
      path: string;
      rows: number;
      bytes: number;
      min_lsn: number;
      max_lsn: number;
      compacted: number;
      day: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id,
      layer: r.layer,
      name: r.name,
      path: r.path,
      rows: r.rows,
      bytes: r.bytes,
      minLsn: r.min_lsn,
      maxLsn: r.max_lsn,
      compacted: r.compacted === 1,
      day: r.day,
    }));
  }

  /** Every path the catalog knows (live or kept for a retained snapshot). */
  allPaths(): Set<string> {
    return new Set(
      (this.db.prepare('select path from lake_files').all() as { path: string }[]).map((r) => r.path),
    );
  }

  /** The columns of `name` (a table) as of snapshot `s` (latest version at or before it). */
  columns(name: string, s: number = Number.MAX_SAFE_INTEGER): Columns | undefined {
    const row = this.db
      .prepare(
        'select columns from lake_columns where name = ? and snapshot <= ? order by version desc limit 1',
      )
      .get(name, s) as { columns: string } | undefined;
    return row ? (JSON.parse(row.columns) as Columns) : undefined;
  }

  tables(s: number = Number.MAX_SAFE_INTEGER): string[] {
    return (
      this.db.prepare('select distinct name from lake_columns where snapshot <= ? order by name').all(s) as {
        name: string;
      }[]
    ).map((r) => r.name);
  }

  /** The latest truncate of `name` at snapshot `s`: rows at or before it are gone from silver. */
  truncatedAt(name: string, s: number): { lsn: number; off: number } | undefined {
    return this.db
      .prepare(
        'select lsn, off from lake_truncates where name = ? and snapshot <= ? order by lsn desc, off desc limit 1',
      )
      .get(name, s) as { lsn: number; off: number } | undefined;
  }

  /**
   * Inside an open write transaction: a new snapshot adding `added`, removing the file ids in
   * `removed`, with new column versions and truncates. Returns the snapshot id.
   */
  addSnapshot(change: {
    kind: string;
    added: readonly FileEntry[];
    removed?: readonly number[];
    columns?: ReadonlyMap<string, Columns>;
    truncates?: readonly { name: string; lsn: number; off: number }[];
    now: number;
  }): number {
    const maxLsn = change.added.reduce((m, f) => Math.max(m, f.maxLsn), 0);
    const rows = change.added.reduce((m, f) => m + f.rows, 0);
    const id = Number(
      this.db
        .prepare('insert into lake_snapshots (committed_at, kind, max_lsn, rows_added) values (?, ?, ?, ?)')
        .run(change.now, change.kind, maxLsn, rows).lastInsertRowid,
    );
    const insert = this.db.prepare(
      `insert into lake_files (layer, name, path, rows, bytes, min_lsn, max_lsn, compacted, day, added_in)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const f of change.added) {
      insert.run(
        f.layer,
        f.name,
        f.path,
        f.rows,
        f.bytes,
        f.minLsn,
        f.maxLsn,
        f.compacted ? 1 : 0,
        f.day,
        id,
      );
    }
    const remove = this.db.prepare(
      'update lake_files set removed_in = ? where id = ? and removed_in is null',
    );
    for (const fileId of change.removed ?? []) {
      if (remove.run(id, fileId).changes !== 1) throw new FileNotLiveError(fileId);
    }
    for (const [name, columns] of change.columns ?? []) {
      const v = this.db
        .prepare('select coalesce(max(version), 0) + 1 as v from lake_columns where name = ?')
        .get(name) as { v: number };
      this.db
        .prepare('insert into lake_columns values (?, ?, ?, ?)')
        .run(name, v.v, JSON.stringify(columns), id);
    }
    for (const t of change.truncates ?? []) {
      this.db.prepare('insert into lake_truncates values (?, ?, ?, ?)').run(t.name, t.lsn, t.off, id);
    }
    return id;
  }

  /** Runs `work` in `BEGIN IMMEDIATE … COMMIT` (rolled back when it throws). */
  async write<T>(work: () => Promise<T>): Promise<T> {
    this.db.exec('begin immediate');
    try {
      const result = await work();
      this.db.exec('commit');
      return result;
    } catch (error) {
      if (this.db.inTransaction) this.db.exec('rollback');
      throw error;
    }
  }
}
