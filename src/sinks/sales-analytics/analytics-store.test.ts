import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { LedgerItem, LedgerOrder } from '../commerce/commerce-shape.ts';
import { OrderLedger } from '../commerce/order-ledger.ts';
import { analyticsHooks } from './analytics-store.ts';

const order = (id: number, status: string, total: bigint, customerId = 7): LedgerOrder => ({
  id,
  customerId,
  status,
  total,
  day: '2026-12-01',
});
const item = (
  id: number,
  orderId: number,
  productId: number,
  quantity: number,
  price: bigint,
): LedgerItem => ({
  id,
  orderId,
  productId,
  quantity,
  amount: BigInt(quantity) * price,
});

describe('sales figures from the ledger', () => {
  it('moves exactly on updates and deletes, whatever order the tables arrive in, and after a truncate', () => {
    const db = new Database(':memory:');
    const sales = ['paid', 'shipped'];
    const ledger = new OrderLedger(
      db,
      sales,
      analyticsHooks(db, (s) => sales.includes(s)),
    );
    const products = () =>
      db.prepare('select product_id, items, units, revenue from sa_products order by 1').all();
    const customers = () => db.prepare('select * from sa_customers').all();
    // The item arrives before its order: it counts once the order (in a sales status) does.
    ledger.applyItem(1, item(1, 10, 100, 2, 1999n), 5);
    expect(products()).toEqual([]);
    ledger.applyOrder(10, order(10, 'pending', 3998n), 6);
    expect(products()).toEqual([]);
    ledger.applyOrder(10, order(10, 'paid', 3998n), 7);
    expect(products()).toEqual([{ product_id: 100, items: 1, units: 2, revenue: 3998 }]);
    expect(customers()).toEqual([{ customer_id: 7, orders: 1, spend: 3998 }]);
    // A quantity change moves the old contribution out and the new one in.
    ledger.applyItem(1, item(1, 10, 100, 5, 1999n), 8);
    ledger.applyOrder(10, order(10, 'paid', 9995n, 8), 9);
    expect(products()).toEqual([{ product_id: 100, items: 1, units: 5, revenue: 9995 }]);
    expect(customers()).toEqual([{ customer_id: 8, orders: 1, spend: 9995 }]);
    ledger.applyItem(2, item(2, 10, 200, 1, 500n), 10);
    ledger.applyOrder(10, order(10, 'cancelled', 10495n, 8), 11);
    expect(products()).toEqual([]);
    expect(db.prepare('select * from sa_statuses').all()).toEqual([{ status: 'cancelled', orders: 1 }]);
    ledger.applyOrder(10, order(10, 'shipped', 10495n, 8), 12);
    ledger.applyItem(1, undefined, 13);
    expect(products()).toEqual([{ product_id: 200, items: 1, units: 1, revenue: 500 }]);
    // A truncate at LSN 12 keeps the item changed at 13 (deleted) and anything later; order 10 (12) goes.
    ledger.applyOrder(11, order(11, 'paid', 100n), 20);
    ledger.truncate('orders', 15);
    expect(db.prepare('select id from ledger_orders').pluck().all()).toEqual([11]);
    expect(customers()).toEqual([{ customer_id: 7, orders: 1, spend: 100 }]);
    expect(products()).toEqual([]);
  });
});
