import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { queryLake } from '../../src/sinks/lake/lake-query.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_HTTP_PORT: '0',
  TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
  TRIBUTARY_CONSUMERS_NICENESS: '0',
};
const MODELS = new URL('../../examples/ecommerce/lake-models', import.meta.url).pathname;
const dirs = tempDirs('lake-demo-gold-');
let proc: CliProcess | undefined;
let db: TestDatabase | undefined;

afterAll(async () => {
  if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
  await proc?.exited;
  await db?.drop();
  dirs.removeAll();
});

const norm = (rows: Record<string, unknown>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])));

// The demo's gold models, asked of the source in PostgreSQL's dialect.
const SOURCE: Record<string, string> = {
  user_analytics: `select c.id as customer_id, c.country, count(o.id) as orders,
      coalesce(sum(o.total_amount), 0)::numeric(18,2)::text as lifetime_value,
      case when coalesce(sum(o.total_amount), 0) >= 1000 then 'vip' when coalesce(sum(o.total_amount), 0) >= 200 then 'regular'
           when count(o.id) > 0 then 'occasional' else 'prospect' end as segment
    from customers c left join orders o on o.customer_id = c.id group by c.id, c.country order by customer_id`,
  product_analytics: `select p.id as product_id, p.name, coalesce(sum(i.quantity), 0) as units_sold,
      coalesce(sum(i.quantity * i.price), 0)::numeric(18,2)::text as revenue, count(distinct i.order_id) as orders,
      rank() over (order by coalesce(sum(i.quantity), 0) desc, p.id) as popularity_rank
    from products p left join order_items i on i.product_id = p.id group by p.id, p.name order by product_id`,
  sales_daily: `select to_char(date_trunc('day', created_at), 'YYYY-MM-DD') as day, count(*) as orders,
      sum(total_amount)::numeric(18,2)::text as revenue from orders group by 1 order by 1`,
  sales_weekly: `select to_char(date_trunc('week', created_at), 'YYYY-MM-DD') as week, count(*) as orders,
      sum(total_amount)::numeric(18,2)::text as revenue from orders group by 1 order by 1`,
};
const LAKE: Record<string, string> = {
  user_analytics:
    'select customer_id, country, orders, lifetime_value::VARCHAR as lifetime_value, segment from gold.user_analytics order by customer_id',
  product_analytics:
    'select product_id, name, units_sold, revenue::VARCHAR as revenue, orders, popularity_rank from gold.product_analytics order by product_id',
  sales_daily:
    "select strftime(day, '%Y-%m-%d') as day, orders, revenue::VARCHAR as revenue from gold.sales_daily order by 1",
  sales_weekly:
    "select strftime(week, '%Y-%m-%d') as week, orders, revenue::VARCHAR as revenue from gold.sales_weekly order by 1",
};

describe.each(PG_VERSIONS.slice(-1))('the demo gold models (PostgreSQL %i)', (version) => {
  it('user, product and sales analytics equal the same questions asked of the source', async () => {
    db = await createDatabase(version, 'lakegold');
    const schema = readFileSync(new URL('../../examples/ecommerce/schema.sql', import.meta.url), 'utf8');
    await db.query(schema);
    const dataDir = dirs.make();
    const configFile = join(dirs.make(), 'tributary.config.json');
    const tables = ['public.customers', 'public.products', 'public.orders', 'public.order_items'];
    writeFileSync(
      configFile,
      JSON.stringify({ sinks: { lake: { kind: 'lake', tables, seedModels: MODELS, batchSize: 5000 } } }),
    );
    proc = startCli(
      [
        'run',
        '--config',
        configFile,
        '--source',
        db.url,
        '--data-dir',
        dataDir,
        '--slot',
        db.name,
        '--publication',
        db.name,
        '--topic-prefix',
        'dg',
        '--consumers',
        dirs.make(),
      ],
      { env: ENV },
    );
    await waitFor(
      () => proc!.stderr.includes('"msg":"replication started"') || proc!.child.exitCode !== null,
      'replication',
      60_000,
    );
    expect(proc.child.exitCode, proc.stderr).toBeNull();
    // Orders over several weeks, items, a cancelled order deleted, a price change.
    await db.query(`insert into orders (customer_id, total_amount, status, created_at)
      select 1 + (g * 7) % 200, ((g * 37) % 900 + 0.99)::numeric(10,2), 'paid', timestamp '2026-01-05 10:00' + (g * interval '7 hours')
      from generate_series(1, 400) g`);
    await db.query(`insert into order_items (order_id, product_id, quantity, price)
      select o.id, 1 + (o.id * 13) % 100, 1 + o.id % 4, p.price from orders o join products p on p.id = 1 + (o.id * 13) % 100`);
    await db.query('delete from orders where id % 25 = 0');
    await db.query(
      "update orders set total_amount = total_amount + 100, status = 'upgraded' where id % 10 = 3",
    );
    const root = join(dataDir, 'lake');
    const want = Number((await db.query('select count(*) as n from order_items')).rows[0]!.n);
    await waitFor(
      async () => {
        try {
          const o = await queryLake(
            root,
            'select count(*)::INTEGER, sum(total_amount::DECIMAL(18,2))::VARCHAR from silver.orders',
          );
          const s = (await db!.query('select count(*)::int as n, sum(total_amount)::text as t from orders'))
            .rows[0];
          const i = await queryLake(root, 'select count(*)::INTEGER from silver.order_items');
          return o.rows[0]?.[0] === s?.n && o.rows[0]?.[1] === s?.t && i.rows[0]?.[0] === want;
        } catch {
          return false;
        }
      },
      'silver to hold the workload',
      60_000,
    );
    const refresh = await cli(['lake', 'models', 'refresh', '--lake', root], { env: ENV });
    expect(refresh.code, refresh.stdout + refresh.stderr).toBe(0);
    for (const model of Object.keys(SOURCE)) {
      const r = await queryLake(root, LAKE[model]!);
      const lake = r.rows.map((row) => Object.fromEntries(r.columns.map((c, i) => [c, row[i] ?? null])));
      expect(norm(lake), model).toEqual(norm((await db.query(SOURCE[model]!)).rows));
    }
  }, 100_000);
});
