import { readFileSync } from 'node:fs';
import pg from 'pg';

export const SCHEMA_SQL = readFileSync(new URL('./schema.sql', import.meta.url), 'utf8');

export async function createSchema(url: string): Promise<void> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    await client.query(SCHEMA_SQL);
  } finally {
    await client.end();
  }
}

export interface WorkloadOptions {
  readonly url: string;
  /** Transactions per second across all clients; 0 = as fast as possible. */
  readonly rate: number;
  readonly clients?: number;
  /** Stop after this many transactions (default: until stopped). */
  readonly maxTransactions?: number;
  /** Deterministic choices for tests. */
  readonly random?: () => number;
}

export interface WorkloadStats {
  committed: number;
  failed: number;
}

/**
 * The shop's traffic: new orders with their items and stock updates, status changes, and the
 * occasional cancelled (deleted) order, each in its own transaction, from several clients.
 */
export class Workload {
  readonly stats: WorkloadStats = { committed: 0, failed: 0 };
  private stopping = false;
  private running: Promise<void> | undefined;
  private readonly random: () => number;

  constructor(private readonly options: WorkloadOptions) {
    this.random = options.random ?? Math.random;
  }

  start(): void {
    const clients = this.options.clients ?? 2;
    this.running = Promise.all(Array.from({ length: clients }, (_, i) => this.client(i, clients))).then(
      () => undefined,
    );
  }

  /** Resolves when every client has finished its current transaction. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  /** Resolves when `maxTransactions` are done (or after stop). */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  private async client(index: number, clients: number): Promise<void> {
    const client = new pg.Client(this.options.url);
    await client.connect();
    const interval = this.options.rate > 0 ? (1000 * clients) / this.options.rate : 0;
    let next = Date.now() + (interval * index) / clients;
    try {
      while (!this.stopping) {
        if (
          this.options.maxTransactions !== undefined &&
          this.stats.committed + this.stats.failed >= this.options.maxTransactions
        )
          break;
        if (interval > 0) {
          const wait = next - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          next = Math.max(next + interval, Date.now() - 1000);
        }
        try {
          await this.transaction(client);
          this.stats.committed++;
        } catch (error) {
          await client.query('rollback').catch(() => undefined);
          this.stats.failed++;
          if (this.stopping) break;
          if ((error as { code?: string }).code === undefined) throw error;
        }
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private pick(n: number): number {
    return 1 + Math.floor(this.random() * n);
  }

  private async transaction(client: pg.Client): Promise<void> {
    const roll = this.random();
    await client.query('begin');
    if (roll < 0.6) {
      const items = this.pick(4);
      const order = await client.query<{ id: number }>(
        `insert into orders (customer_id, total_amount, status) values ($1, 0, 'pending') returning id`,
        [this.pick(200)],
      );
      const orderId = order.rows[0]!.id;
      for (let i = 0; i < items; i++) {
        const product = this.pick(100);
        const quantity = this.pick(3);
        await client.query(
          `insert into order_items (order_id, product_id, quantity, price) select $1, id, $2, price from products where id = $3`,
          [orderId, quantity, product],
        );
        await client.query(
          `update products set stock_quantity = stock_quantity - $1, updated_at = now() where id = $2`,
          [quantity, product],
        );
      }
      await client.query(
        `update orders set total_amount = (select coalesce(sum(quantity * price), 0) from order_items where order_id = $1) where id = $1`,
        [orderId],
      );
    } else if (roll < 0.9) {
      await client.query(
        `update orders set status = (array['paid','shipped','delivered'])[1 + floor(random() * 3)::int], updated_at = now()
         where id = (select id from orders order by id desc offset floor(random() * 20)::int limit 1)`,
      );
    } else if (roll < 0.97) {
      await client.query(
        `update products set stock_quantity = stock_quantity + 50, updated_at = now() where id = $1`,
        [this.pick(100)],
      );
    } else {
      await client.query(
        `delete from orders where id = (select id from orders where status = 'pending' order by id limit 1)`,
      );
    }
    await client.query('commit');
  }
}
