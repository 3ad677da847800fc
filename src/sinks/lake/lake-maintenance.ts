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
import type { FileEntry, LakeCatalog } from './lake-catalog.ts';
import { literal } from './lake-columns.ts';
import { STAGE_DIR } from './lake-stage.ts';
import { makeDurable, newFilePath } from './lake-writer.ts';

export interface CompactionResult {
  readonly layer: string;
  readonly name: string;
  readonly before: number;
  readonly after: number;
}

function read(root: string, files: readonly { path: string }[]): string {
  return `read_parquet([${files.map((f) => literal(join(root, f.path))).join(', ')}], union_by_name = true)`;
}

async function count(connection: DuckDBConnection, path: string): Promise<number> {
  const r = await connection.runAndReadAll(`SELECT count(*)::INTEGER FROM read_parquet(${literal(path)})`);
  return r.getRows()[0]?.[0] as number;
}

/**
 * Compacts every table whose live files in a layer number more than `minFiles` (all of them with
 * `minFiles` 1): silver into one file of live rows, bronze into one file per day.
 */
export async function compact(
  connection: DuckDBConnection,
  catalog: LakeCatalog,
  root: string,
  options: { minFiles: number; now?: () => number },
): Promise<CompactionResult[]> {
  const now = options.now ?? Date.now;
  const s = catalog.currentSnapshot();
  const live = catalog.files(s);
  const results: CompactionResult[] = [];
  const groups = new Map<string, typeof live>();
  for (const f of live) {
    if (f.layer === 'gold') continue;
    const key = `${f.layer}\0${f.name}\0${f.layer === 'bronze' ? f.day : ''}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  for (const [key, files] of groups) {
    const [layer, name, day] = key.split('\0') as [string, string, string];
    if (
      files.length <= options.minFiles ||
      (files.length === 1 && (layer === 'bronze' || files[0]!.compacted))
    )
      continue;
    const path = newFilePath(layer, name, layer === 'bronze' ? `day=${day}` : undefined);
    const full = join(root, path);
    let select: string;
    if (layer === 'bronze') {
      select = `SELECT * FROM ${read(root, files)} ORDER BY _lsn, _offset`;
    } else {
      const t = catalog.truncatedAt(name, s);
      const after = t ? `WHERE _lsn > ${t.lsn} OR (_lsn = ${t.lsn} AND _off > ${t.off})` : '';
      select = `SELECT * FROM (SELECT * FROM ${read(root, files)} ${after}
        QUALIFY row_number() OVER (PARTITION BY _key ORDER BY _lsn DESC, _off DESC) = 1) WHERE _op <> 'd'`;
    }
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(full, '..'), { recursive: true });
    await connection.run(`COPY (${select}) TO ${literal(full)} (FORMAT parquet)`);
    makeDurable(root, [path]);
    const entry: FileEntry = {
      layer: layer as 'bronze' | 'silver',
      name,
      path,
      rows: await count(connection, full),
      bytes: statSync(full).size,
      minLsn: Math.min(...files.map((f) => f.minLsn)),
      maxLsn: Math.max(...files.map((f) => f.maxLsn)),
      compacted: layer === 'silver',
      day: layer === 'bronze' ? day : null,
    };
    try {
      await catalog.write(async () => {
        catalog.addSnapshot({ kind: 'compact', added: [entry], removed: files.map((f) => f.id), now: now() });
      });
    } catch (error) {
      rmSync(full, { force: true });
      throw error;
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
