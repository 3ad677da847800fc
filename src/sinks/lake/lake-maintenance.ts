/**
 * Lake maintenance: compaction, snapshot expiry, bronze retention and orphan removal.
 *
 * Guarantees:
 * - Compaction writes the merged file (durable) before a snapshot swaps it for the files it
 *   merged; the swap fails (nothing changes, the new file is an orphan) when any of them was
 *   removed meanwhile. Answers are unchanged: bronze keeps every event; silver keeps each key's
 *   newest live row (deletes and truncates applied).
 * - Expiry deletes snapshots older than the retention (never the current one), then only the
 *   files no retained snapshot names (removed at or before the oldest retained snapshot), after
 *   the catalog no longer lists them.
 * - Orphans (Parquet files the catalog does not name, left by a crash between the write and the
 *   commit) are removed, except those of a live process (the pid starts the file name).
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { type FileEntry, FileNotLiveError, type LakeCatalog } from './lake-catalog.ts';
import { literal } from './lake-columns.ts';
import { STAGE_DIR } from './lake-stage.ts';
import { BRONZE_PARQUET, copyParquet, makeDurable, newFilePath } from './lake-writer.ts';

export interface CompactionResult {
  readonly layer: string;
  readonly name: string;
  readonly before: number;
  readonly after: number;
}

function read(root: string, files: readonly { path: string }[]): string {
  return `read_parquet([${files.map((f) => literal(join(root, f.path))).join(', ')}], union_by_name = true)`;
}

/** A merge's input at most, in Parquet bytes: bounds a compaction's memory and time. */
export const MAX_MERGE_BYTES = 64 << 20;
/** The size of the smallest size class's files, at most. */
const CLASS_UNIT = 64 << 10;

/**
 * The sets of `files` (one table's layer, a bronze day) that an automatic compaction merges:
 * size-tiered. A file's size class is its size in powers of `fanout` (from 64 KiB); a class that
 * holds `fanout` files or more is merged into one file (of a larger class, when the merged size
 * reaches it), so each change is rewritten about once per class it climbs (a few times, not once
 * per compaction) and a table keeps at most `fanout - 1` files per class. A merge takes files,
 * smallest first, up to `MAX_MERGE_BYTES` (two at least, else none), and files of half that or
 * more are left as they are (two of them are past it): a merge's memory and time do not grow
 * with the table.
 */
export function mergeSets<F extends { readonly bytes: number }>(files: readonly F[], fanout: number): F[][] {
  const classes = new Map<number, F[]>();
  for (const f of files) {
    if (f.bytes >= MAX_MERGE_BYTES / 2) continue;
    const c = Math.floor(Math.log(Math.max(f.bytes, CLASS_UNIT) / CLASS_UNIT) / Math.log(fanout));
    const of = classes.get(c);
    if (of) of.push(f);
    else classes.set(c, [f]);
  }
  const sets: F[][] = [];
  for (const of of classes.values()) {
    if (of.length < fanout) continue;
    const set: F[] = [];
    let bytes = 0;
    for (const f of [...of].sort((x, y) => x.bytes - y.bytes)) {
      if (bytes + f.bytes > MAX_MERGE_BYTES) break;
      set.push(f);
      bytes += f.bytes;
    }
    if (set.length >= 2) sets.push(set);
  }
  return sets;
}

/** One merge a compaction makes: its files (one table's layer, a bronze day). */
interface MergeJob {
  /** Its table's layer (and day): a group whose files changed meanwhile is left alone. */
  readonly group: string;
  readonly layer: string;
  readonly name: string;
  readonly day: string;
  readonly files: readonly (FileEntry & { id: number })[];
  /** The merge takes all of the table's files of the layer (or the day). */
  readonly whole: boolean;
  readonly truncate: { lsn: number; off: number } | undefined;
}

/**
 * Compacts each table's layers (a bronze day at a time): with `fanout`, the size-tiered merges of
 * `mergeSets`; with `all` (the `lake compact` command), every table's files into one (silver:
 * the live rows; bronze: a file per day). A silver merge keeps each key's newest row among the
 * files it merges, and keeps tombstones unless it merges all of the table's files (a tombstone
 * must still hide the key's older row in a file not merged). A table whose files changed
 * meanwhile (another compaction, expiry) is left as it is.
 *
 * `serialize` runs the catalog reads and each snapshot's commit (the writer's queue, so that a
 * compaction runs beside the batches and only its commits wait for them); the merges run outside.
 */
export async function compact(
  connection: DuckDBConnection,
  catalog: LakeCatalog,
  root: string,
  options: ({ fanout: number } | { all: true }) & {
    now?: () => number;
    serialize?: <T>(run: () => Promise<T>) => Promise<T>;
  },
): Promise<CompactionResult[]> {
  const now = options.now ?? Date.now;
  const serialize = options.serialize ?? ((run) => run());
  const jobs = await serialize(async () => plan(catalog, options));
  const results: CompactionResult[] = [];
  const skipped = new Set<string>();
  for (const job of jobs) {
    const { layer, name, day, files } = job;
    if (skipped.has(job.group)) continue;
    const merged = await merge(connection, root, job);
    try {
      await serialize(() =>
        catalog.write(async () => {
          catalog.addSnapshot({
            kind: 'compact',
            added: [merged],
            removed: files.map((f) => f.id),
            now: now(),
          });
        }),
      );
    } catch (error) {
      rmSync(join(root, merged.path), { force: true });
      // Removed meanwhile (the catalog changed nothing): this table is left for the next time.
      if (!(error instanceof FileNotLiveError)) throw error;
      skipped.add(job.group);
      continue;
    }
    results.push({
      layer,
      name: layer === 'bronze' ? `${name} ${day}` : name,
      before: files.length,
      after: 1,
    });
  }
  return results;
}

/** The merges of the current snapshot's files (see `compact`). */
function plan(catalog: LakeCatalog, options: { fanout: number } | { all: true }): MergeJob[] {
  const s = catalog.currentSnapshot();
  const live = catalog.files(s);
  const groups = new Map<string, typeof live>();
  for (const f of live) {
    if (f.layer === 'gold') continue;
    const key = `${f.layer}\0${f.name}\0${f.layer === 'bronze' ? f.day : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const jobs: MergeJob[] = [];
  for (const [key, files] of groups) {
    const [layer, name, day] = key.split('\0') as [string, string, string];
    let sets: (typeof live)[];
    if ('all' in options) {
      const done = files.length === 1 && (layer === 'bronze' || files[0]!.compacted);
      sets = done ? [] : [files];
    } else {
      sets = mergeSets(files, options.fanout);
    }
    const truncate = layer === 'silver' ? catalog.truncatedAt(name, s) : undefined;
    for (const set of sets)
      jobs.push({ group: key, layer, name, day, files: set, whole: set.length === files.length, truncate });
  }
  return jobs;
}

/** Writes the merge of `job`'s files (durable) and returns its catalog entry. */
async function merge(connection: DuckDBConnection, root: string, job: MergeJob): Promise<FileEntry> {
  const { layer, name, day, files, whole, truncate: t } = job;
  const path = newFilePath(layer, name, layer === 'bronze' ? `day=${day}` : undefined);
  const full = join(root, path);
  let select: string;
  if (layer === 'bronze') {
    // The files one after the other in log order (a stream: no sort, memory independent of size).
    const ordered = [...files].sort((a, b) => a.minLsn - b.minLsn || a.id - b.id);
    select = `SELECT * FROM ${read(root, ordered)}`;
  } else {
    const after = t ? `WHERE _lsn > ${t.lsn} OR (_lsn = ${t.lsn} AND _off > ${t.off})` : '';
    const newest = `SELECT * FROM ${read(root, files)} ${after}
      QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC, _off DESC) = 1`;
    select = whole ? `SELECT * FROM (${newest}) WHERE _op <> 'd'` : newest;
  }
  let rows: number;
  try {
    rows = await copyParquet(connection, select, full, layer === 'bronze' ? BRONZE_PARQUET : undefined);
    makeDurable(root, [path]);
  } catch (error) {
    // A file it read was deleted meanwhile (another process's compaction and expiry), say.
    rmSync(full, { force: true });
    throw error;
  }
  return {
    layer: layer as 'bronze' | 'silver',
    name,
    path,
    rows,
    bytes: statSync(full).size,
    minLsn: Math.min(...files.map((f) => f.minLsn)),
    maxLsn: Math.max(...files.map((f) => f.maxLsn)),
    compacted: layer === 'silver' && whole,
    day: layer === 'bronze' ? day : null,
  };
}

/** Removes bronze files of commit days older than `days` (in a new snapshot). */
export async function applyBronzeRetention(
  catalog: LakeCatalog,
  days: number,
  now: number = Date.now(),
): Promise<number> {
  const cutoff = new Date(now - days * 86_400_000).toISOString().slice(0, 10);
  const old = catalog
    .files(catalog.currentSnapshot(), 'bronze')
    .filter((f) => f.day !== null && f.day < cutoff);
  if (old.length === 0) return 0;
  await catalog.write(async () => {
    catalog.addSnapshot({ kind: 'retention', added: [], removed: old.map((f) => f.id), now });
  });
  return old.length;
}

/** Expires snapshots committed before `now - olderThanMs` (keeping the current one); deletes unneeded files. */
export async function expire(
  catalog: LakeCatalog,
  root: string,
  olderThanMs: number,
  now: number = Date.now(),
): Promise<{ snapshots: number; files: number }> {
  const gone: string[] = [];
  let snapshots = 0;
  await catalog.write(async () => {
    const current = catalog.currentSnapshot();
    const row = catalog.db
      .prepare('select min(id) as id from lake_snapshots where committed_at >= ? or id = ?')
      .get(now - olderThanMs, current) as { id: number | null };
    const oldest = row.id ?? current;
    const files = catalog.db
      .prepare('select id, path from lake_files where removed_in is not null and removed_in <= ?')
      .all(oldest) as { id: number; path: string }[];
    for (const f of files) gone.push(f.path);
    catalog.db.prepare('delete from lake_files where removed_in is not null and removed_in <= ?').run(oldest);
    snapshots = catalog.db.prepare('delete from lake_snapshots where id < ?').run(oldest).changes;
  });
  for (const p of gone) rmSync(join(root, p), { force: true });
  return { snapshots, files: gone.length };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Deletes Parquet files the catalog does not name, and stage files (lake-writer.ts), whose writer
 * is gone; returns their paths.
 */
export function removeOrphans(catalog: LakeCatalog, root: string): string[] {
  const known = catalog.allPaths();
  const removed: string[] = [];
  const walk = (dir: string) => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.name.endsWith('.parquet') || e.name.includes('.parquet.') || e.name.endsWith('.ndjson')) {
        const rel = relative(root, full);
        if (known.has(rel)) continue;
        const pid = Number(e.name.split('-')[0]);
        if (Number.isInteger(pid) && pid !== process.pid && alive(pid)) continue;
        rmSync(full, { force: true });
        removed.push(rel);
      }
    }
  };
  for (const layer of ['bronze', 'silver', 'gold', STAGE_DIR]) walk(join(root, layer));
  return removed;
}
