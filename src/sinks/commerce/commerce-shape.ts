/**
 * The shape the e-commerce services read (products, orders, order items), as options: the table
 * and column names default to the demo schema (`examples/ecommerce/schema.sql`), so any database
 * with the same shape under other names works by configuration.
 */
import { z } from 'zod';
import { SinkRecordError } from '../sink.ts';
import { qualifiedTable, type Row } from '../sink-records.ts';
import { toScaled } from './money.ts';

const name = (fallback: string, what: string) => z.string().min(1).default(fallback).describe(what);

export const PRODUCT_COLUMNS = z
  .object({
    id: name('id', 'the product key column'),
    name: name('name', 'the product name'),
    stock: name('stock_quantity', 'units in stock (an integer)'),
  })
  .strict()
  .default({ id: 'id', name: 'name', stock: 'stock_quantity' });

export const ORDER_COLUMNS = z
  .object({
    id: name('id', 'the order key column'),
    customerId: name('customer_id', 'the customer of the order'),
    status: name('status', 'the order status (text)'),
    total: name('total_amount', 'what the order costs (a decimal)'),
    createdAt: name('created_at', 'when the order was placed (timestamp): its day in the daily figures'),
  })
  .strict()
  .default({
    id: 'id',
    customerId: 'customer_id',
    status: 'status',
    total: 'total_amount',
    createdAt: 'created_at',
  });

export const ITEM_COLUMNS = z
  .object({
    id: name('id', 'the item key column'),
    orderId: name('order_id', 'the order the item belongs to'),
    productId: name('product_id', 'the product ordered'),
    quantity: name('quantity', 'units ordered (an integer)'),
    price: name('price', 'the unit price (a decimal)'),
  })
  .strict()
  .default({ id: 'id', orderId: 'order_id', productId: 'product_id', quantity: 'quantity', price: 'price' });

export const COMMERCE_TABLES = {
  productsTable: name('public.products', 'the products table (`schema.table`)'),
  ordersTable: name('public.orders', 'the orders table (`schema.table`)'),
  itemsTable: name('public.order_items', 'the order items table (`schema.table`)'),
  orderColumns: ORDER_COLUMNS.describe('column names of the orders table'),
  itemColumns: ITEM_COLUMNS.describe('column names of the order items table'),
  scale: z
    .number()
    .int()
    .min(0)
    .max(12)
    .default(2)
    .describe('decimal places money is kept at exactly (a value with more is dead-lettered)'),
};

export type OrderColumns = z.infer<typeof ORDER_COLUMNS>;
export type ItemColumns = z.infer<typeof ITEM_COLUMNS>;

export interface LedgerOrder {
  readonly id: number;
  readonly customerId: number | null;
  readonly status: string;
  readonly total: bigint;
  /** `YYYY-MM-DD` of `created_at`, `null` when it is null. */
  readonly day: string | null;
}

export interface LedgerItem {
  readonly id: number;
  readonly orderId: number | null;
  readonly productId: number | null;
  readonly quantity: number;
  /** `quantity × price`, scaled. */
  readonly amount: bigint;
}

export function keyOf(row: Row, column: string, what: string): number {
  const v = row[column];
  const n = typeof v === 'string' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) {
    const shown = typeof v === 'bigint' ? String(v) : JSON.stringify(v);
    throw new SinkRecordError(`${what}.${column}: ${shown} is not an integer key`, {
      hint: `set the service's ${what} column names to the table's integer key`,
    });
  }
  return n;
}

function optionalKey(row: Row, column: string, what: string): number | null {
  return row[column] === null || row[column] === undefined ? null : keyOf(row, column, what);
}

export function parseOrder(row: Row, c: OrderColumns, scale: number): LedgerOrder {
  const status = row[c.status];
  if (status !== null && status !== undefined && typeof status !== 'string') {
    throw new SinkRecordError(`orders.${c.status}: the status must be text`);
  }
  return {
    id: keyOf(row, c.id, 'orders'),
    customerId: optionalKey(row, c.customerId, 'orders'),
    status: status ?? '',
    total:
      row[c.total] === null || row[c.total] === undefined
        ? 0n
        : toScaled(row[c.total], scale, `orders.${c.total}`),
    day: dayOf(row[c.createdAt]),
  };
}

export function parseItem(row: Row, c: ItemColumns, scale: number): LedgerItem {
  const quantity =
    row[c.quantity] === null || row[c.quantity] === undefined ? 0 : keyOf(row, c.quantity, 'order_items');
  const price =
    row[c.price] === null || row[c.price] === undefined
      ? 0n
      : toScaled(row[c.price], scale, `order_items.${c.price}`);
  return {
    id: keyOf(row, c.id, 'order_items'),
    orderId: optionalKey(row, c.orderId, 'order_items'),
    productId: optionalKey(row, c.productId, 'order_items'),
    quantity,
    amount: BigInt(quantity) * price,
  };
}

/**
 * The calendar day of a captured timestamp: a `timestamp` arrives as microseconds since the
 * epoch (its wall-clock day), a `timestamptz` as ISO text in UTC, a `date` as days since the epoch.
 */
export function dayOf(value: unknown): string | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'string' && /^\d{4}-\d\d-\d\d/.test(value)) return value.slice(0, 10);
  // A timestamp after 2255 arrives as a bigint of microseconds (beyond 2^53): the day survives.
  const n = typeof value === 'string' || typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isFinite(n)) return null;
  // Days since the epoch are small; microseconds are not (a `date` column is < 3e6 in magnitude).
  const days = Math.abs(n) < 3_000_000 ? n : Math.floor(n / 86_400_000_000);
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** The tables (qualified) the services read, for `defaultTables` and routing by topic. */
export function commerceTables(o: { productsTable: string; ordersTable: string; itemsTable: string }) {
  return {
    products: qualifiedTable(o.productsTable),
    orders: qualifiedTable(o.ordersTable),
    items: qualifiedTable(o.itemsTable),
  };
}
