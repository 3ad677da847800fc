/**
 * `inventory`: per product the stock (from `products`), the units its order items take (items of
 * orders in `statuses`) and what is available, with low-stock alerts (see `inventory-store.ts`).
 *
 * Guarantees: exactly-once effect (state, alert transitions and offsets commit in one SQLite
 * transaction); once caught up, every product's figures equal the SQL in docs/services.md, and a
 * product is in the active alerts exactly when its available stock is below the threshold. Each
 * crossing appends one `raised` or `resolved` event; the control plane turns the active alerts
 * into dashboard alerts and webhook notifications (rule `low_stock`).
 */
import { z } from 'zod';
import {
  COMMERCE_TABLES,
  commerceTables,
  keyOf,
  PRODUCT_COLUMNS,
  parseItem,
  parseOrder,
} from '../commerce/commerce-shape.ts';
import { commerceSink } from '../commerce/commerce-sink.ts';
import { LEDGER_DDL, OrderLedger } from '../commerce/order-ledger.ts';
import type { SinkKind } from '../sink.ts';
import { SinkRecordError } from '../sink.ts';
import { INVENTORY_DDL, inventoryStore } from './inventory-store.ts';

export const TAKING_STATUSES = ['pending', 'paid', 'shipped', 'delivered'];

export const inventoryOptions = z
  .object({
    ...COMMERCE_TABLES,
    productColumns: PRODUCT_COLUMNS.describe('column names of the products table'),
    statuses: z
      .array(z.string())
      .min(1)
      .default(TAKING_STATUSES)
      .describe('order statuses whose items take units (default: every demo status but cancelled)'),
    threshold: z.number().int().default(10).describe('a product is low while available < threshold'),
    subtractOrdered: z
      .boolean()
      .default(false)
      .describe(
        'available = stock − units taken (true), or the stock alone (false: the shop already lowers stock_quantity when it takes an order, as the demo does)',
      ),
    file: z.string().min(1).optional().describe('the database file (default <dataDir>/services/<name>.db)'),
  })
  .strict();

export type InventoryOptions = z.infer<typeof inventoryOptions>;

export const inventorySinkKind: SinkKind<InventoryOptions> = {
  kind: 'inventory',
  description: 'stock per product, units taken by orders, low-stock alerts',
  options: inventoryOptions,
  defaultTables: (o) => {
    const t = commerceTables(o);
    return [t.products, t.orders, t.items];
  },
  create(o, env) {
    const pc = o.productColumns;
    return commerceSink(o, env, LEDGER_DDL + INVENTORY_DDL, (db) => {
      const store = inventoryStore(db, o);
      const ledger = new OrderLedger(db, o.statuses, store.hooks);
      return {
        product(op, row, lsn) {
          const id = keyOf(row, pc.id, 'products');
          if (op === 'delete') return store.deleteProduct(id);
          const name = row[pc.name];
          const stock =
            row[pc.stock] === null || row[pc.stock] === undefined ? 0 : keyOf(row, pc.stock, 'products');
          if (name !== null && name !== undefined && typeof name !== 'string') {
            throw new SinkRecordError(`products.${pc.name}: the name must be text`);
          }
          store.putProduct(id, name ?? null, stock, lsn);
        },
        order(op, row, lsn) {
          const id = keyOf(row, o.orderColumns.id, 'orders');
          ledger.applyOrder(id, op === 'upsert' ? parseOrder(row, o.orderColumns, o.scale) : undefined, lsn);
        },
        item(op, row, lsn) {
          const id = keyOf(row, o.itemColumns.id, 'order_items');
          ledger.applyItem(id, op === 'upsert' ? parseItem(row, o.itemColumns, o.scale) : undefined, lsn);
        },
        truncate(table, cut) {
          if (table === 'products') store.truncateProducts(cut);
          else ledger.truncate(table, cut);
        },
        afterBatch: () => store.settle(),
      };
    });
  },
};
