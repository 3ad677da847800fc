/**
 * The last truncate of each table a sink has applied, by source LSN, kept in the sink's own
 * SQLite database (in its transaction). See `RowChange` for why: partitions are read
 * independently, so a change older than a truncate may arrive after it and must be ignored.
 */
import type Database from 'better-sqlite3';

export const TRUNCATE_FENCE_DDL =
  'create table if not exists sink_truncates (table_name text primary key, lsn integer not null);';

export class TruncateFence {
  readonly #get;
  readonly #put;

  constructor(db: Database.Database) {
    db.exec(TRUNCATE_FENCE_DDL);
    this.#get = db.prepare('select lsn from sink_truncates where table_name = ?').pluck();
    this.#put = db.prepare(
      `insert into sink_truncates values (?, ?) on conflict (table_name) do update set lsn = max(lsn, excluded.lsn)`,
    );
  }

  /** A change at `lsn` that a truncate applied already removed (it must not be applied). */
  stale(table: string, lsn: number | null): boolean {
    if (lsn === null) return false;
    const fence = this.#get.get(table) as number | undefined;
    return fence !== undefined && lsn <= fence;
  }

  /** Records a truncate at `lsn`; returns the cut: rows whose LSN is below it (or unknown) go. */
  truncate(table: string, lsn: number | null): number {
    if (lsn === null) return Number.MAX_SAFE_INTEGER;
    this.#put.run(table, lsn);
    return lsn;
  }
}
