/**
 * What the e-commerce services share: a SQLite database of their own (the offsets commit in it
 * with the figures: exactly-once effect across kill -9), the routing of each record by table,
 * and where the database lives by default (`<dataDir>/services/<sink name>.db`).
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Database from 'better-sqlite3';
import { sqliteTarget } from '../../consumers/transactional.ts';
import type { Sink, SinkEnvironment } from '../sink.ts';
import { deletedRow, type Row, rowChange } from '../sink-records.ts';
import { TRUNCATE_FENCE_DDL, TruncateFence } from '../truncate-fence.ts';
import { commerceTables } from './commerce-shape.ts';

/** The database file of a service sink: its `file` option, else under the data directory. */
export function serviceFile(
  options: { file?: string | undefined },
  env: Pick<SinkEnvironment, 'dataDir' | 'name'>,
): string {
  return options.file ?? join(env.dataDir, 'services', `${env.name}.db`);
}

export interface CommerceHandlers {
  product?(op: 'upsert' | 'delete', row: Row, lsn: number | null): void;
  order?(op: 'upsert' | 'delete', row: Row, lsn: number | null): void;
  item?(op: 'upsert' | 'delete', row: Row, lsn: number | null): void;
  /** Rows whose LSN is below `cut` (or unknown) go. */
  truncate(table: 'products' | 'orders' | 'items', cut: number): void;
  /** After each batch, inside its transaction (e.g. alert transitions of the products touched). */
  afterBatch?(): void;
}

export function commerceSink(
  options: { file?: string | undefined; productsTable: string; ordersTable: string; itemsTable: string },
  env: SinkEnvironment,
  ddl: string,
  handlers: (db: Database.Database) => CommerceHandlers,
): Sink<Database.Database> {
  const file = serviceFile(options, env);
  mkdirSync(dirname(file), { recursive: true });
  const tables = commerceTables(options);
  const byTable = new Map<string, 'products' | 'orders' | 'items'>([
    [tables.products, 'products'],
    [tables.orders, 'orders'],
    [tables.items, 'items'],
  ]);
  let bound: { db: Database.Database; h: CommerceHandlers; fence: TruncateFence } | undefined;
  const on = (db: Database.Database) => {
    if (bound?.db !== db) {
      // Statements are prepared once per session's database (the factory runs once per replica).
      bound = { db, h: handlers(db), fence: new TruncateFence(db) };
    }
    return bound;
  };
  return {
    target: sqliteTarget(file),
    async open() {
      // The tables exist before the first batch, so queries find an empty service, not an error.
      const db = new Database(file, { timeout: 10_000 });
      try {
        db.exec(ddl + TRUNCATE_FENCE_DDL);
      } finally {
        db.close();
      }
    },
    async write(batch, db) {
      const { h, fence } = on(db);
      for (const record of batch) {
        const change = rowChange(record);
        if (!change) continue;
        const which = byTable.get(change.table);
        if (!which) continue;
        if (change.op === 'truncate') {
          h.truncate(which, fence.truncate(which, change.lsn));
          continue;
        }
        if (fence.stale(which, change.lsn)) continue;
        const row = change.op === 'delete' ? deletedRow(change) : change.row;
        if (!row) continue;
        if (which === 'products') h.product?.(change.op, row, change.lsn);
        else if (which === 'orders') h.order?.(change.op, row, change.lsn);
        else h.item?.(change.op, row, change.lsn);
      }
      h.afterBatch?.();
    },
  };
}
