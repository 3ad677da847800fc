/**
 * The oracles of the services' tests: each view asked of the source database with SQL, in the
 * documented order (docs/services.md), in the same shape as the services' readers answer.
 */
import type { TestDatabase } from '../support/databases.ts';

export const SALES = ['paid', 'shipped', 'delivered'];
export const TAKING = ['pending', 'paid', 'shipped', 'delivered'];

export async function salesOracle(db: TestDatabase) {
  const daily = await db.query(
    `select created_at::date::text as day, count(*)::int as orders, sum(total_amount)::text as revenue
     from orders where status = any($1) and created_at is not null group by 1 order by 1`,
    [SALES],
  );
  const products = await db.query(
    `select i.product_id as "productId", count(*)::int as items, sum(i.quantity)::int as units,
            sum(i.quantity * i.price)::text as revenue
     from order_items i join orders o on o.id = i.order_id
     where o.status = any($1) and i.product_id is not null
     group by i.product_id order by sum(i.quantity * i.price) desc, i.product_id limit 100`,
    [SALES],
  );
  const customers = await db.query(
    `select customer_id as "customerId", count(*)::int as orders, sum(total_amount)::text as spend
     from orders where status = any($1) group by customer_id order by sum(total_amount) desc, customer_id limit 100`,
    [SALES],
  );
  const statuses = await db.query(
    'select status, count(*)::int as orders from orders group by status order by status',
  );
  return { daily: daily.rows, products: products.rows, customers: customers.rows, statuses: statuses.rows };
}

export async function inventoryOracle(db: TestDatabase, threshold: number) {
  const rows = await db.query<{ productId: number; name: string; stock: number; taken: number }>(
    `select p.id as "productId", p.name, p.stock_quantity as stock,
            coalesce(sum(i.quantity) filter (where o.status = any($1)), 0)::int as taken
     from products p left join order_items i on i.product_id = p.id left join orders o on o.id = i.order_id
     group by p.id order by p.id`,
    [TAKING],
  );
  return rows.rows.map((r) => ({
    ...r,
    available: r.stock - r.taken,
    low: r.stock - r.taken < threshold,
  }));
}

/** Keys of the products whose name or description holds `word` (a vocabulary word: no substring clash). */
export async function searchOracle(
  db: TestDatabase,
  word: string,
  range: { min?: number; max?: number } = {},
): Promise<string[]> {
  const rows = await db.query<{ id: number }>(
    `select id from products where (name ilike $1 or description ilike $1)
       and price >= coalesce($2, price) and price <= coalesce($3, price) order by id`,
    [`%${word}%`, range.min ?? null, range.max ?? null],
  );
  return rows.rows.map((r) => String(r.id));
}
