/**
 * Reading the inventory (API, CLI, dashboard, the alert engine): the service's database opened
 * read-only while its sink writes (WAL).
 */
import Database from 'better-sqlite3';

export interface ProductStock {
  readonly productId: number;
  readonly name: string | null;
  readonly stock: number;
  /** Units of the product in order items of counted orders. */
  readonly taken: number;
  readonly available: number;
  readonly low: boolean;
}

export interface StockAlertEvent {
  readonly seq: number;
  readonly productId: number;
  readonly kind: 'raised' | 'resolved';
  readonly available: number | null;
  readonly threshold: number;
  readonly at: string;
}

export class InventoryReader {
  readonly #db: Database.Database;
  readonly #subtract: boolean;

  constructor(file: string, options: { subtractOrdered: boolean }) {
    this.#db = new Database(file, { readonly: true, fileMustExist: true, timeout: 5_000 });
    this.#subtract = options.subtractOrdered;
  }

  #select(where: string, tail: string, ...params: unknown[]): ProductStock[] {
    const rows = this.#db
      .prepare(
        `select p.product_id, p.name, p.stock, coalesce(t.units, 0) as taken, l.product_id is not null as low
         from inv_products p left join inv_taken t using (product_id) left join inv_low l using (product_id)
         ${where} order by p.product_id ${tail}`,
      )
      .all(...params) as {
      product_id: number;
      name: string | null;
      stock: number;
      taken: number;
      low: number;
    }[];
    return rows.map((r) => ({
      productId: r.product_id,
      name: r.name,
      stock: r.stock,
      taken: r.taken,
      available: r.stock - (this.#subtract ? r.taken : 0),
      low: r.low === 1,
    }));
  }

  /** Products in id order; `lowOnly`: those with an active alert. */
  list(options: { limit?: number; offset?: number; lowOnly?: boolean } = {}): ProductStock[] {
    return this.#select(
      options.lowOnly ? 'where l.product_id is not null' : '',
      'limit ? offset ?',
      options.limit ?? -1,
      options.offset ?? 0,
    );
  }

  product(id: number): ProductStock | undefined {
    return this.#select('where p.product_id = ?', '', id)[0];
  }

  /** Alert events, newest first (`after`: only those with a larger seq). */
  events(options: { after?: number; limit?: number } = {}): StockAlertEvent[] {
    const rows = this.#db
      .prepare('select * from inv_alert_events where seq > ? order by seq desc limit ?')
      .all(options.after ?? 0, options.limit ?? 100) as {
      seq: number;
      product_id: number;
      kind: 'raised' | 'resolved';
      available: number | null;
      threshold: number;
      at: number;
    }[];
    return rows.map((r) => ({
      seq: r.seq,
      productId: r.product_id,
      kind: r.kind,
      available: r.available,
      threshold: r.threshold,
      at: new Date(r.at).toISOString(),
    }));
  }

  close(): void {
    this.#db.close();
  }
}
