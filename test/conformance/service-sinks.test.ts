/**
 * The services of seed 003 that are not plain replicas (`inventory`, `sales-analytics`; `search`
 * has its own file) through the Sink conformance suite. Each reads the suite's `items` table as
 * its products (inventory) or its orders (sales analytics) by naming its columns, so the suite's
 * row changes are theirs. A row is what the service keeps of it (inventory: name and stock; sales:
 * the order's status, customer and total in its ledger), and every read also checks the service's
 * figures against those rows, so a figure counted twice or left behind by a rolled-back batch
 * fails the suite too:
 * - inventory: the low products are exactly those with stock < threshold, and each product's
 *   alert events alternate raised/resolved, ending raised exactly when it is low;
 * - sales: the status distribution is the count of orders per status, the customers' figures the
 *   orders and Σ totals per customer of the statuses that count as sales.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { inventorySinkKind } from '../../src/sinks/inventory/inventory-sink.ts';
import { salesAnalyticsSinkKind } from '../../src/sinks/sales-analytics/sales-analytics-sink.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { type ItemRow, sinkConformance } from './sink-conformance.ts';

const env = { name: 'items-service', dataDir: tmpdir(), topicPrefix: 'shop', format: 'debezium' as const };
const fresh = (name: string) => join(mkdtempSync(join(tmpdir(), `${name}-`)), 'service.db');
/** Tables the suite never writes: the services' other inputs stay empty. */
const unused = {
  ordersTable: 'public.no_orders',
  itemsTable: 'public.no_items',
  productsTable: 'public.no_products',
};

function read<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true });
  db.defaultSafeIntegers(true);
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function same(what: string, got: unknown, expected: unknown): void {
  const show = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x));
  if (show(got) !== show(expected)) throw new Error(`${what}: ${show(got)}, expected ${show(expected)}`);
}

const THRESHOLD = 10;

sinkConformance(
  'inventory',
  async () => {
    const file = fresh('inventory');
    const options = inventorySinkKind.options.parse({
      file,
      ...unused,
      productsTable: 'public.items',
      productColumns: { id: 'id', name: 'name', stock: 'qty' },
      threshold: THRESHOLD,
    });
    const sink = (await inventorySinkKind.create(options, env)) as Sink<unknown>;
    return {
      sink,
      rows: async () =>
        read(file, (db) => {
          const products = db
            .prepare('select product_id as id, name, stock from inv_products order by product_id')
            .all() as { id: bigint; name: string | null; stock: bigint }[];
          const low = (
            db.prepare('select product_id from inv_low order by product_id').pluck().all() as bigint[]
          ).map(String);
          same(
            'low products',
            low,
            products.filter((p) => p.stock < THRESHOLD).map((p) => String(p.id)),
          );
          const last = new Map<string, string>();
          const events = db
            .prepare('select product_id as id, kind from inv_alert_events order by seq')
            .all() as {
            id: bigint;
            kind: string;
          }[];
          for (const e of events) {
            const id = String(e.id);
            same(`alert event of product ${id}`, e.kind, last.get(id) === 'raised' ? 'resolved' : 'raised');
            last.set(id, e.kind);
          }
          same(
            'products whose last alert event is raised',
            [...last]
              .filter(([, kind]) => kind === 'raised')
              .map(([id]) => id)
              .sort(),
            [...low].sort(),
          );
          return new Map<string, ItemRow>(
            products.map((p) => [
              String(p.id),
              { name: p.name, qty: String(p.stock), big: null, price: null },
            ]),
          );
        }),
      close: async () => {},
    };
  },
  { columns: ['name', 'qty'] },
);

/** Statuses that count as sales: the names of the even items (the odd ones only show in the distribution). */
const SALES = Array.from({ length: 50 }, (_, n) => `item ${2 * n} "quoted" é`);
const money = (cents: bigint) => `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}`;

sinkConformance(
  'sales-analytics',
  async () => {
    const file = fresh('sales');
    const options = salesAnalyticsSinkKind.options.parse({
      file,
      ...unused,
      ordersTable: 'public.items',
      orderColumns: {
        id: 'id',
        customerId: 'qty',
        status: 'name',
        total: 'price',
        createdAt: 'no_such_column',
      },
      statuses: SALES,
    });
    const sink = (await salesAnalyticsSinkKind.create(options, env)) as Sink<unknown>;
    return {
      sink,
      rows: async () =>
        read(file, (db) => {
          const orders = db
            .prepare('select id, customer_id, status, total from ledger_orders order by id')
            .all() as { id: bigint; customer_id: bigint | null; status: string; total: bigint }[];
          const statuses = new Map<string, bigint>();
          const customers = new Map<string, { orders: bigint; spend: bigint }>();
          for (const o of orders) {
            statuses.set(o.status, (statuses.get(o.status) ?? 0n) + 1n);
            if (!SALES.includes(o.status) || o.customer_id === null) continue;
            const c = customers.get(String(o.customer_id)) ?? { orders: 0n, spend: 0n };
            customers.set(String(o.customer_id), { orders: c.orders + 1n, spend: c.spend + o.total });
          }
          same(
            'status distribution',
            db.prepare('select status, orders from sa_statuses order by status').all(),
            [...statuses].sort(([a], [b]) => (a < b ? -1 : 1)).map(([status, n]) => ({ status, orders: n })),
          );
          same(
            'customers',
            db.prepare('select customer_id, orders, spend from sa_customers order by customer_id').all(),
            [...customers]
              .sort(([a], [b]) => Number(a) - Number(b))
              .map(([id, c]) => ({ customer_id: BigInt(id), orders: c.orders, spend: c.spend })),
          );
          same(
            'daily figures (no order has a day)',
            db.prepare('select count(*) from sa_daily').pluck().get(),
            0n,
          );
          return new Map<string, ItemRow>(
            orders.map((o) => [
              String(o.id),
              {
                name: o.status,
                qty: o.customer_id === null ? null : String(o.customer_id),
                big: null,
                price: money(o.total),
              },
            ]),
          );
        }),
      close: async () => {},
    };
  },
  { columns: ['name', 'qty', 'price'] },
);
