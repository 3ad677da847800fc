/**
 * The sales figures of the analytics service, kept incrementally in its SQLite database from the
 * ledger's moves (see `order-ledger.ts`): every figure is a sum of contributions, an update moves
 * the old contribution out and the new one in, so the figures equal a fresh computation at every
 * commit. Money is an INTEGER count of the smallest unit at the service's scale (BigInt in JS).
 *
 * - daily: per day of `created_at`, the orders in a sales status and the sum of their totals.
 * - customers: per customer, those orders and the sum of their totals (spend).
 * - products: per product, the items of those orders, their units and Σ quantity × unit price.
 * - statuses: per status, the orders in it (every status, not only sales).
 * A row whose count falls to zero is removed.
 */
import type Database from 'better-sqlite3';
import type { LedgerHooks } from '../commerce/order-ledger.ts';

export const ANALYTICS_DDL = `
  create table if not exists sa_daily (day text primary key, orders integer not null, revenue integer not null);
  create table if not exists sa_customers (customer_id integer primary key, orders integer not null, spend integer not null);
  create table if not exists sa_products (product_id integer primary key, items integer not null, units integer not null, revenue integer not null);
  create table if not exists sa_statuses (status text primary key, orders integer not null);
  create index if not exists sa_products_rank on sa_products (revenue desc, product_id);
  create index if not exists sa_customers_rank on sa_customers (spend desc, customer_id);`;

export function analyticsHooks(db: Database.Database, counts: (status: string) => boolean): LedgerHooks {
  db.exec(ANALYTICS_DDL);
  const s = {
    daily: db.prepare(
      `insert into sa_daily values (?, ?, ?) on conflict (day) do update set
         orders = orders + excluded.orders, revenue = revenue + excluded.revenue`,
    ),
    dailyGone: db.prepare('delete from sa_daily where day = ? and orders = 0'),
    customer: db.prepare(
      `insert into sa_customers values (?, ?, ?) on conflict (customer_id) do update set
         orders = orders + excluded.orders, spend = spend + excluded.spend`,
    ),
    customerGone: db.prepare('delete from sa_customers where customer_id = ? and orders = 0'),
    product: db.prepare(
      `insert into sa_products values (?, ?, ?, ?) on conflict (product_id) do update set
         items = items + excluded.items, units = units + excluded.units, revenue = revenue + excluded.revenue`,
    ),
    productGone: db.prepare('delete from sa_products where product_id = ? and items = 0'),
    status: db.prepare(
      `insert into sa_statuses values (?, ?) on conflict (status) do update set orders = orders + excluded.orders`,
    ),
    statusGone: db.prepare('delete from sa_statuses where status = ? and orders = 0'),
  };
  return {
    order(order, sign) {
      s.status.run(order.status, sign);
      s.statusGone.run(order.status);
      if (!counts(order.status)) return;
      const amount = order.total * BigInt(sign);
      if (order.day !== null) {
        s.daily.run(order.day, sign, amount);
        s.dailyGone.run(order.day);
      }
      if (order.customerId !== null) {
        s.customer.run(order.customerId, sign, amount);
        s.customerGone.run(order.customerId);
      }
    },
    countedItem(item, sign) {
      if (item.productId === null) return;
      s.product.run(item.productId, sign, item.quantity * sign, item.amount * BigInt(sign));
      s.productGone.run(item.productId);
    },
    reset() {
      db.exec(
        'delete from sa_daily; delete from sa_customers; delete from sa_products; delete from sa_statuses;',
      );
    },
  };
}
