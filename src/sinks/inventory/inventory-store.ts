/**
 * The inventory service's state in its SQLite database: the products' stock (from `products`),
 * the units their counted order items take (from the ledger's moves), and the low-stock alerts.
 *
 * available = stock − (subtractOrdered ? units taken : 0). A product is low while it exists and
 * available < threshold. The transitions are kept exactly, inside the sink's transaction: when a
 * product becomes low a `raised` event is appended and the product enters `inv_low`; when it
 * stops being low (it recovered, or it was deleted) a `resolved` event is appended and it leaves.
 * Checked once per batch on the products the batch touched, so a product that dips and recovers
 * within one batch raises nothing (the alert is about committed states).
 */
import type Database from 'better-sqlite3';
import type { LedgerHooks } from '../commerce/order-ledger.ts';

export const INVENTORY_DDL = `
  create table if not exists inv_products (product_id integer primary key, name text, stock integer not null, lsn integer);
  create table if not exists inv_taken (product_id integer primary key, items integer not null, units integer not null);
  create table if not exists inv_low (product_id integer primary key, available integer not null, since integer not null);
  create table if not exists inv_alert_events (
    seq integer primary key autoincrement, product_id integer not null, kind text not null,
    available integer, threshold integer not null, at integer not null);`;

export interface InventoryPolicy {
  readonly threshold: number;
  readonly subtractOrdered: boolean;
  readonly clock?: () => number;
}

export interface InventoryStore {
  readonly hooks: LedgerHooks;
  putProduct(id: number, name: string | null, stock: number, lsn: number | null): void;
  deleteProduct(id: number): void;
  /** Products changed below `cut` (an LSN) go. */
  truncateProducts(cut: number): void;
  /** Raises and resolves the alerts of the products touched since the last call. */
  settle(): void;
}

export function inventoryStore(db: Database.Database, policy: InventoryPolicy): InventoryStore {
  db.exec(INVENTORY_DDL);
  const clock = policy.clock ?? Date.now;
  const touched = new Set<number>();
  let everything = false;
  const s = {
    put: db.prepare('insert or replace into inv_products values (?, ?, ?, ?)'),
    cut: db.prepare('delete from inv_products where lsn is null or lsn < ?'),
    del: db.prepare('delete from inv_products where product_id = ?'),
    taken: db.prepare(
      `insert into inv_taken values (?, ?, ?) on conflict (product_id) do update set
         items = items + excluded.items, units = units + excluded.units`,
    ),
    takenGone: db.prepare('delete from inv_taken where product_id = ? and items = 0'),
    state: db.prepare(
      `select p.stock, coalesce(t.units, 0) as units, l.product_id is not null as low
       from (select ? as id) k left join inv_products p on p.product_id = k.id
       left join inv_taken t on t.product_id = k.id left join inv_low l on l.product_id = k.id`,
    ),
    raise: db.prepare('insert into inv_low values (?, ?, ?)'),
    lowNow: db.prepare('update inv_low set available = ? where product_id = ?'),
    resolve: db.prepare('delete from inv_low where product_id = ?'),
    event: db.prepare(
      'insert into inv_alert_events (product_id, kind, available, threshold, at) values (?, ?, ?, ?, ?)',
    ),
    ids: db.prepare(
      'select product_id from inv_products union select product_id from inv_low union select product_id from inv_taken',
    ),
  };
  const check = (id: number, now: number) => {
    const r = s.state.get(id) as { stock: number | null; units: number; low: number };
    const available = r.stock === null ? null : r.stock - (policy.subtractOrdered ? r.units : 0);
    const low = available !== null && available < policy.threshold;
    if (low && !r.low) {
      s.raise.run(id, available, now);
      s.event.run(id, 'raised', available, policy.threshold, now);
    } else if (low) s.lowNow.run(available, id);
    else if (!low && r.low) {
      s.resolve.run(id);
      s.event.run(id, 'resolved', available, policy.threshold, now);
    }
  };
  return {
    hooks: {
      order() {},
      countedItem(item, sign) {
        if (item.productId === null) return;
        s.taken.run(item.productId, sign, item.quantity * sign);
        s.takenGone.run(item.productId);
        touched.add(item.productId);
      },
      reset() {
        db.exec('delete from inv_taken');
        everything = true;
      },
    },
    putProduct(id, name, stock, lsn) {
      s.put.run(id, name, stock, lsn);
      touched.add(id);
    },
    deleteProduct(id) {
      s.del.run(id);
      touched.add(id);
    },
    truncateProducts(cut) {
      s.cut.run(cut);
      everything = true;
    },
    settle() {
      const now = clock();
      const ids = everything ? (s.ids.pluck().all() as number[]) : [...touched];
      for (const id of ids.sort((a, b) => a - b)) check(id, now);
      touched.clear();
      everything = false;
    },
  };
}
