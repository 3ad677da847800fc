/**
 * The orders and order items a service has seen, kept in its own SQLite database, and which
 * items count: an item counts while its order exists and the order's status is one of the
 * service's statuses. Every change reports, through `LedgerHooks`, exactly what it moved: the
 * order row that left and the one that arrived, and each item whose contribution entered or left
 * the counted set. A service keeps its figures as sums of those moves, so an update or a delete
 * moves them by the old value out and the new value in, whatever order the two tables' changes
 * arrive in (items may arrive before their order: they count from the moment it does).
 *
 * Runs inside the sink's transaction (`db` in `BEGIN IMMEDIATE`): all or nothing with the offsets.
 */
import type Database from 'better-sqlite3';
import type { LedgerItem, LedgerOrder } from './commerce-shape.ts';

export interface LedgerHooks {
  /** An order row left (`sign` -1) or arrived (+1), whatever its status. */
  order(order: LedgerOrder, sign: 1 | -1): void;
  /** An item's contribution entered (+1) or left (-1) the counted set. */
  countedItem(item: LedgerItem, sign: 1 | -1): void;
  /** Everything is recomputed from the ledger (after a truncate): forget every figure. */
  reset(): void;
}

export const LEDGER_DDL = `
  create table if not exists ledger_orders (
    id integer primary key, customer_id integer, status text not null, total integer not null, day text,
    lsn integer);
  create table if not exists ledger_items (
    id integer primary key, order_id integer, product_id integer, quantity integer not null,
    amount integer not null, lsn integer);
  create index if not exists ledger_items_order on ledger_items (order_id);`;

type OrderRow = { id: bigint; customer_id: bigint | null; status: string; total: bigint; day: string | null };
type ItemRow = {
  id: bigint;
  order_id: bigint | null;
  product_id: bigint | null;
  quantity: bigint;
  amount: bigint;
};

const num = (v: bigint | null): number | null => (v === null ? null : Number(v));
const toOrder = (r: OrderRow): LedgerOrder => ({
  id: Number(r.id),
  customerId: num(r.customer_id),
  status: r.status,
  total: r.total,
  day: r.day,
});
const toItem = (r: ItemRow): LedgerItem => ({
  id: Number(r.id),
  orderId: num(r.order_id),
  productId: num(r.product_id),
  quantity: Number(r.quantity),
  amount: r.amount,
});

export class OrderLedger {
  readonly #counted: ReadonlySet<string>;
  readonly #hooks: LedgerHooks;
  readonly #s;

  constructor(db: Database.Database, statuses: readonly string[], hooks: LedgerHooks) {
    db.exec(LEDGER_DDL);
    this.#counted = new Set(statuses);
    this.#hooks = hooks;
    const prep = (sql: string) => db.prepare(sql).safeIntegers(true);
    this.#s = {
      order: prep('select * from ledger_orders where id = ?'),
      putOrder: db.prepare(
        'insert or replace into ledger_orders (id, customer_id, status, total, day, lsn) values (?, ?, ?, ?, ?, ?)',
      ),
      delOrder: db.prepare('delete from ledger_orders where id = ?'),
      item: prep('select * from ledger_items where id = ?'),
      itemsOf: prep('select * from ledger_items where order_id = ?'),
      putItem: db.prepare(
        'insert or replace into ledger_items (id, order_id, product_id, quantity, amount, lsn) values (?, ?, ?, ?, ?, ?)',
      ),
      delItem: db.prepare('delete from ledger_items where id = ?'),
      allOrders: prep('select * from ledger_orders'),
      countedItems: prep(
        'select i.*, o.status from ledger_items i join ledger_orders o on o.id = i.order_id',
      ),
      clearOrders: db.prepare('delete from ledger_orders where lsn is null or lsn < ?'),
      clearItems: db.prepare('delete from ledger_items where lsn is null or lsn < ?'),
    };
  }

  counts(status: string): boolean {
    return this.#counted.has(status);
  }

  /** The order `id` as it is now (`undefined` when absent). */
  order(id: number): LedgerOrder | undefined {
    const r = this.#s.order.get(id) as OrderRow | undefined;
    return r && toOrder(r);
  }

  /** An order row arrived (`next`) or was deleted (`next` undefined) under key `id`. */
  applyOrder(id: number, next: LedgerOrder | undefined, lsn: number | null): void {
    const previous = this.order(id);
    if (next) this.#s.putOrder.run(next.id, next.customerId, next.status, next.total, next.day, lsn);
    else this.#s.delOrder.run(id);
    if (previous) this.#hooks.order(previous, -1);
    if (next) this.#hooks.order(next, 1);
    const before = previous !== undefined && this.counts(previous.status);
    const after = next !== undefined && this.counts(next.status);
    if (before === after) return;
    for (const r of this.#s.itemsOf.all(id) as ItemRow[]) this.#hooks.countedItem(toItem(r), after ? 1 : -1);
  }

  applyItem(id: number, next: LedgerItem | undefined, lsn: number | null): void {
    const r = this.#s.item.get(id) as ItemRow | undefined;
    if (next) this.#s.putItem.run(next.id, next.orderId, next.productId, next.quantity, next.amount, lsn);
    else this.#s.delItem.run(id);
    if (r) {
      const previous = toItem(r);
      if (this.#itemCounts(previous)) this.#hooks.countedItem(previous, -1);
    }
    if (next && this.#itemCounts(next)) this.#hooks.countedItem(next, 1);
  }

  /**
   * The table was truncated at `cut` (an LSN): its rows changed before go (rows changed after it
   * already arrived from other partitions stay), and every figure is recomputed from what is left.
   */
  truncate(which: 'orders' | 'items', cut: number): void {
    (which === 'orders' ? this.#s.clearOrders : this.#s.clearItems).run(cut);
    this.#hooks.reset();
    // `all`, not `iterate`: the hooks write while the rows are read.
    for (const r of this.#s.allOrders.all() as OrderRow[]) this.#hooks.order(toOrder(r), 1);
    for (const r of this.#s.countedItems.all() as (ItemRow & { status: string })[]) {
      if (this.counts(r.status)) this.#hooks.countedItem(toItem(r), 1);
    }
  }

  #itemCounts(item: LedgerItem): boolean {
    if (item.orderId === null) return false;
    const order = this.order(item.orderId);
    return order !== undefined && this.counts(order.status);
  }
}
