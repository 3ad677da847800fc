/**
 * `sales-analytics`: daily orders and revenue, top products by revenue, top customers by spend
 * and the order status distribution of an e-commerce database, kept incrementally and exactly.
 *
 * Guarantees: exactly-once effect (the figures and the offsets commit in one SQLite transaction,
 * so a replica killed at any instant leaves each change counted once); after the sink has caught
 * up, every figure equals the same question asked of the source with SQL (docs/services.md gives
 * that SQL); money exact at `scale` (a value with more decimal places is dead-lettered, naming the
 * column). Reads: `AnalyticsReader` (read-only, concurrent with the writes).
 */
import { z } from 'zod';
import { COMMERCE_TABLES, commerceTables, keyOf, parseItem, parseOrder } from '../commerce/commerce-shape.ts';
import { commerceSink } from '../commerce/commerce-sink.ts';
import { LEDGER_DDL, OrderLedger } from '../commerce/order-ledger.ts';
import type { SinkKind } from '../sink.ts';
import { ANALYTICS_DDL, analyticsHooks } from './analytics-store.ts';

export const SALES_STATUSES = ['paid', 'shipped', 'delivered'];

export const salesAnalyticsOptions = z
  .object({
    ...COMMERCE_TABLES,
    statuses: z
      .array(z.string())
      .min(1)
      .default(SALES_STATUSES)
      .describe('order statuses that count as sales (the others only show in the status distribution)'),
    file: z.string().min(1).optional().describe('the database file (default <dataDir>/services/<name>.db)'),
  })
  .strict();

export type SalesAnalyticsOptions = z.infer<typeof salesAnalyticsOptions>;

export const salesAnalyticsSinkKind: SinkKind<SalesAnalyticsOptions> = {
  kind: 'sales-analytics',
  description: 'daily sales, top 100 products and customers, order statuses; incremental and exact',
  options: salesAnalyticsOptions,
  defaultTables: (o) => {
    const t = commerceTables(o);
    return [t.orders, t.items];
  },
  create(o, env) {
    const counts = (status: string) => o.statuses.includes(status);
    return commerceSink(o, env, LEDGER_DDL + ANALYTICS_DDL, (db) => {
      const ledger = new OrderLedger(db, o.statuses, analyticsHooks(db, counts));
      return {
        order(op, row, lsn) {
          const id = keyOf(row, o.orderColumns.id, 'orders');
          ledger.applyOrder(id, op === 'upsert' ? parseOrder(row, o.orderColumns, o.scale) : undefined, lsn);
        },
        item(op, row, lsn) {
          const id = keyOf(row, o.itemColumns.id, 'order_items');
          ledger.applyItem(id, op === 'upsert' ? parseItem(row, o.itemColumns, o.scale) : undefined, lsn);
        },
        truncate(table, cut) {
          if (table !== 'products') ledger.truncate(table, cut);
        },
      };
    });
  },
};
