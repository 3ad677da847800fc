/**
 * The random shop traffic of the services' oracle tests: inserts, updates of price, stock, name,
 * status and quantity, deletes of items, orders and products, and one truncate of the orders
 * (with their items), each in its own transaction, from a seeded random source.
 */
import type pg from 'pg';

/** Words of product names and descriptions: none is a substring of another or of the seed text. */
export const VOCABULARY = [
  'amber',
  'birch',
  'cobalt',
  'dune',
  'ember',
  'fjord',
  'garnet',
  'harbor',
  'indigo',
  'jasper',
  'kelp',
  'lumen',
  'maple',
  'nectar',
  'onyx',
  'pewter',
  'quartz',
  'russet',
  'sable',
  'topaz',
];
export const STATUSES = ['pending', 'paid', 'shipped', 'delivered', 'cancelled'];

/** A small seeded generator (mulberry32): a failing run can be replayed with its seed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class ShopTraffic {
  readonly #random: () => number;
  constructor(seed: number) {
    this.#random = seeded(seed);
  }

  int(n: number): number {
    return Math.floor(this.#random() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  words(n: number): string {
    return Array.from({ length: n }, () => this.pick(VOCABULARY)).join(' ');
  }
  price(): string {
    return `${1 + this.int(300)}.${String(this.int(100)).padStart(2, '0')}`;
  }

  /** One transaction of random traffic. */
  async step(client: pg.Client): Promise<void> {
    const roll = this.#random();
    await client.query('begin');
    try {
      if (roll < 0.12) {
        await client.query(
          'insert into products (name, description, price, stock_quantity) values ($1, $2, $3, $4)',
          [`${this.words(2)} Product`, this.words(4), this.price(), this.int(40)],
        );
      } else if (roll < 0.22) {
        const field = this.pick(['price', 'stock_quantity', 'name', 'description']);
        const value =
          field === 'price' ? this.price() : field === 'stock_quantity' ? this.int(40) : this.words(3);
        await client.query(
          `update products set ${field} = $1 where id = (select id from products order by random() limit 1)`,
          [value],
        );
      } else if (roll < 0.25) {
        await client.query(
          `delete from products where id = (select id from products p where not exists
             (select 1 from order_items i where i.product_id = p.id) order by random() limit 1)`,
        );
      } else if (roll < 0.55) {
        const order = await client.query<{ id: number }>(
          `insert into orders (customer_id, total_amount, status, created_at)
           values ($1, 0, $2, now() - make_interval(days => $3)) returning id`,
          [1 + this.int(200), this.pick(STATUSES), this.int(8)],
        );
        const id = order.rows[0]?.id;
        for (let i = 0, n = 1 + this.int(4); i < n; i++) {
          await client.query(
            `insert into order_items (order_id, product_id, quantity, price)
             select $1, id, $2, price from products order by random() limit 1`,
            [id, 1 + this.int(5)],
          );
        }
        await this.retotal(client, 'o.id = $1', [id]);
      } else if (roll < 0.7) {
        await client.query(
          `update orders set status = $1 where id = (select id from orders order by random() limit 1)`,
          [this.pick(STATUSES)],
        );
      } else if (roll < 0.8) {
        const item = await client.query<{ order_id: number }>(
          `update order_items set quantity = $1 where id = (select id from order_items order by random() limit 1)
           returning order_id`,
          [1 + this.int(6)],
        );
        if (item.rows[0]) await this.retotal(client, 'o.id = $1', [item.rows[0].order_id]);
      } else if (roll < 0.87) {
        const item = await client.query<{ order_id: number }>(
          'delete from order_items where id = (select id from order_items order by random() limit 1) returning order_id',
        );
        if (item.rows[0]) await this.retotal(client, 'o.id = $1', [item.rows[0].order_id]);
      } else if (roll < 0.93) {
        await client.query('delete from orders where id = (select id from orders order by random() limit 1)');
      } else {
        await client.query(
          `update orders set created_at = created_at - interval '1 day', customer_id = $1
           where id = (select id from orders order by random() limit 1)`,
          [1 + this.int(200)],
        );
      }
      await client.query('commit');
    } catch (error) {
      await client.query('rollback');
      throw error;
    }
  }

  async retotal(client: pg.Client, where: string, params: unknown[]): Promise<void> {
    await client.query(
      `update orders o set total_amount = (select coalesce(sum(quantity * price), 0) from order_items i
         where i.order_id = o.id) where ${where}`,
      params,
    );
  }
}
