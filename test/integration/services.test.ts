/**
 * The e-commerce services and the search sink against their oracles: a real `tributary run` on a
 * throwaway database with the demo schema, a random workload (one truncate) while the sinks'
 * replicas are killed with kill -9 at random; then every view equals the source asked with SQL.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCHEMA_SQL } from '../../examples/ecommerce/workload.ts';
import { freePort } from '../../src/cli/free-port.ts';
import { InventoryReader } from '../../src/sinks/inventory/inventory-queries.ts';
import { AnalyticsReader } from '../../src/sinks/sales-analytics/analytics-queries.ts';
import { SearchReader } from '../../src/sinks/search/search-reader.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { inventoryOracle, salesOracle, searchOracle } from './services-oracle.ts';
import { ShopTraffic, VOCABULARY } from './services-workload.ts';

const THRESHOLD = 10;
const SEED = Number(process.env.SERVICES_SEED ?? Date.now() % 100_000);
const dirs = tempDirs('services-');
let db: TestDatabase;
let proc: CliProcess;
let dataDir: string;
let kills = 0;
const env: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_HTTP_PORT: '0',
  TRIBUTARY_CONSUMERS_CRASH_LOOP_RESTARTS: '1000',
  TRIBUTARY_CONSUMERS_BACKOFF_MAX_MS: '1000',
  // On a machine shared by many test runs (load far above the cores), idle-class replicas may not
  // get the CPU to start within the supervisor's ready timeout: here they compete as the capture.
  TRIBUTARY_CONSUMERS_NICENESS: '0',
};

/** The replicas of the run: its child processes (the supervisor forks one per replica). */
function sinkPids(parent: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(parent)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}

const webhookBodies: string[] = [];
let webhook: Server | undefined;
let api = '';

beforeAll(async () => {
  // The alert webhook: low-stock alerts reach it through the control plane's alert engine.
  webhook = createServer((request, response) => {
    let body = '';
    request.on('data', (d) => {
      body += d;
    });
    request.on('end', () => {
      webhookBodies.push(body);
      response.end('ok');
    });
  });
  const hookPort = await freePort();
  await new Promise<void>((resolve) => webhook?.listen(hookPort, '127.0.0.1', resolve));
  const httpPort = await freePort();
  api = `http://127.0.0.1:${httpPort}`;
  Object.assign(env, {
    TRIBUTARY_HTTP_PORT: String(httpPort),
    TRIBUTARY_ALERTS_WEBHOOK_URL: `http://127.0.0.1:${hookPort}/hook`,
    TRIBUTARY_ALERTS_INTERVAL_MS: '500',
    // Replicas are killed on purpose: their lag and restarts are not what this test watches.
    TRIBUTARY_ALERTS_CRASH_LOOP: 'false',
    TRIBUTARY_ALERTS_CONSUMER_LAG_SECONDS: '0',
  });
  console.log(`services test seed ${SEED} (SERVICES_SEED=${SEED} replays it)`);
  const version = PG_VERSIONS.at(-1) as number;
  db = await createDatabase(version, 'svc');
  await db.query(SCHEMA_SQL);
  dataDir = dirs.make();
  const config = join(dataDir, 'tributary.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      sinks: {
        'product-search': { kind: 'search' },
        stock: { kind: 'inventory', threshold: THRESHOLD, subtractOrdered: true, batchSize: 50 },
        sales: { kind: 'sales-analytics', batchSize: 50 },
      },
    }),
  );
  proc = startCli(
    [
      'run',
      '--config',
      config,
      '--source',
      db.url,
      '--data-dir',
      dataDir,
      '--slot',
      db.name,
      '--publication',
      db.name,
      '--topic-prefix',
      'shop',
      '--partitions',
      '2',
    ],
    { env },
  );
  await waitFor(
    () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
    'replication to start',
    60_000,
  );
  expect(proc.child.exitCode, proc.stderr).toBeNull();
  expect(proc.stderr).toContain('sinks: product-search, stock, sales');
  const started = Date.now();

  const traffic = new ShopTraffic(SEED);
  const clients = await Promise.all(
    [0, 1].map(async () => {
      const c = new pg.Client(db.url);
      await c.connect();
      return c;
    }),
  );
  let steps = 0;
  const truncate = async (c: pg.Client): Promise<void> => {
    for (;;) {
      try {
        await c.query('truncate orders, order_items');
        return;
      } catch (error) {
        if ((error as { code?: string }).code !== '40P01') throw error; // a deadlock: again
      }
    }
  };
  const TOTAL = 300;
  const run = async (c: pg.Client) => {
    while (steps < TOTAL) {
      steps++;
      if (steps === TOTAL / 2) await truncate(c);
      // Two clients: a deadlock or a lost race rolls one transaction back; the traffic goes on.
      await traffic.step(c).catch((e: { code?: string }) => {
        if (!['40P01', '23503', '40001'].includes(e.code ?? '')) throw e;
      });
    }
  };
  const killer = (async () => {
    // Kills go on while the replicas catch up after the traffic, until at least 6 (a fast machine
    // finishes the traffic in fewer kill intervals), within a bound.
    const until = Date.now() + 60_000;
    while (steps < TOTAL || (kills < 6 && Date.now() < until)) {
      // A kill at a random moment of a batch: the replicas restart and resume from their offsets.
      await new Promise((r) => setTimeout(r, 200 + traffic.int(800)));
      const pids = sinkPids(proc.child.pid as number);
      const pid = pids[traffic.int(Math.max(1, pids.length))];
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
          kills++;
        } catch {}
      }
    }
  })();
  await Promise.all(clients.map(run));
  await killer;
  await Promise.all(clients.map((c) => c.end()));
  console.log(`${kills} replicas killed during ${steps} transactions in ${Date.now() - started} ms`);
  expect(kills).toBeGreaterThan(5);
}, 120_000);

afterAll(async () => {
  if (proc && proc.child.exitCode === null) {
    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit.code, exit.stderr.slice(-2000)).toBe(0);
  }
  webhook?.close();
  await db?.drop();
  // Kept with the database for inspection when asked (KEEP_TEST_DATABASES).
  if (!process.env.KEEP_TEST_DATABASES) dirs.removeAll();
  else console.log(`data directory kept: ${dataDir}`);
});

/** Waits until `view` equals `oracle` (the sink catching up), then asserts it once more. */
async function converges<T>(what: string, view: () => T, oracle: () => Promise<T>): Promise<void> {
  let last: { view: T; oracle: T } | undefined;
  let failure: unknown;
  await waitFor(
    async () => {
      try {
        last = { view: view(), oracle: await oracle() };
      } catch (error) {
        failure = error;
        return false; // the service's file may not exist yet
      }
      return JSON.stringify(last.view) === JSON.stringify(last.oracle);
    },
    `${what} to equal the source`,
    45_000,
  ).catch(() => undefined);
  expect(last, `${what} never read: ${String(failure)}`).toBeDefined();
  if (JSON.stringify(last?.view) !== JSON.stringify(last?.oracle)) {
    // What the sinks were doing: a lagging or failed replica explains a mismatch differently.
    const list = await cli(['consumers', '--json', '--data-dir', dataDir], { env });
    console.log(`consumers when ${what} did not converge:\n${list.stdout}${list.stderr}`, failure);
    console.log(readdirSync(dataDir, { recursive: true }), proc.stderr.slice(-3000));
  }
  expect(last?.view).toEqual(last?.oracle);
}

describe('e-commerce services after a random workload with kill -9', () => {
  it('sales analytics: daily, top 100 products and customers, statuses equal the SQL', async () => {
    const file = join(dataDir, 'services', 'sales.db');
    await converges(
      'the sales figures',
      () => {
        const r = new AnalyticsReader(file, 2);
        try {
          return {
            daily: r.daily(),
            products: r.topProducts(),
            customers: r.topCustomers(),
            statuses: r.statuses(),
          };
        } finally {
          r.close();
        }
      },
      () => salesOracle(db),
    );
  });

  it('inventory: stock, units taken, available and low flags equal the SQL; alerts alternate', async () => {
    const file = join(dataDir, 'services', 'stock.db');
    await converges(
      'the inventory',
      () => {
        const r = new InventoryReader(file, { subtractOrdered: true });
        try {
          return r.list();
        } finally {
          r.close();
        }
      },
      () => inventoryOracle(db, THRESHOLD),
    );
    const r = new InventoryReader(file, { subtractOrdered: true });
    const events = r.events({ limit: 1_000_000 }).reverse();
    const low = new Set(r.list({ lowOnly: true }).map((p) => p.productId));
    r.close();
    expect(events.length).toBeGreaterThan(0);
    const lastKind = new Map<number, string>();
    for (const e of events) {
      // Raised once per crossing: a product's events alternate, starting with `raised`.
      expect(e.kind).toBe(lastKind.get(e.productId) === 'raised' ? 'resolved' : 'raised');
      lastKind.set(e.productId, e.kind);
    }
    for (const [id, kind] of lastKind) expect(kind === 'raised').toBe(low.has(id));
  });

  it('search: exact words, prefixes and price ranges return what LIKE finds in the source', async () => {
    const file = join(dataDir, 'search', 'product-search.db');
    const queries = [
      ...VOCABULARY.map((w) => ({ q: w, word: w, range: {} })),
      ...VOCABULARY.slice(0, 5).map((w) => ({ q: `${w.slice(0, 3)}*`, word: w.slice(0, 3), range: {} })),
      ...VOCABULARY.slice(5, 10).map((w) => ({ q: w, word: w, range: { min: 50, max: 150.5 } })),
    ];
    const filter = (r: { min?: number; max?: number }) =>
      r.min === undefined ? [] : [`price:${r.min}..${r.max}`];
    await converges(
      'the search index',
      () => {
        const reader = new SearchReader(file);
        try {
          return queries.map((x) =>
            reader
              .search({ q: x.q, filters: filter(x.range), limit: 100_000 })
              .hits.map((h) => h.key)
              .sort((a, b) => Number(a) - Number(b)),
          );
        } finally {
          reader.close();
        }
      },
      async () => {
        // One after the other: the queries share one connection.
        const answers = [];
        for (const x of queries) answers.push(await searchOracle(db, x.word, x.range));
        return answers;
      },
    );
  });

  it('the CLI and the API answer as the readers do; low-stock alerts reach the dashboard and the webhook', async () => {
    const flags = ['--data-dir', dataDir, '--config', join(dataDir, 'tributary.config.json'), '--json'];
    // The figures equal the source already (the tests above waited): ask the same of each door.
    const top = await cli(['analytics', 'top-products', ...flags], { env });
    expect(top.code, top.stderr).toBe(0);
    expect(JSON.parse(top.stdout)).toEqual((await salesOracle(db)).products);
    const fromApi = (await (await fetch(`${api}/api/analytics/sales/top-customers`)).json()) as unknown;
    expect(fromApi).toEqual((await salesOracle(db)).customers);

    const word = VOCABULARY[0] as string;
    const search = await cli(['search', 'product-search', word, '--limit', '100000', ...flags], { env });
    expect(search.code, search.stderr).toBe(0);
    const keys = (r: { hits: { key: string }[] }) =>
      r.hits.map((h) => h.key).sort((a, b) => Number(a) - Number(b));
    expect(keys(JSON.parse(search.stdout))).toEqual(await searchOracle(db, word));
    const response = await fetch(`${api}/api/search/product-search?q=${word}&filter=price:..100&limit=1000`);
    expect(response.status).toBe(200);
    expect(keys((await response.json()) as { hits: { key: string }[] })).toEqual(
      await searchOracle(db, word, { max: 100 }),
    );
    const bad = await fetch(`${api}/api/search/product-search?q=x&filter=weight:1..2`);
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('weight is not a numeric column');
    expect((await fetch(`${api}/api/search/nope?q=x`)).status).toBe(404);
    const unknown = await cli(['search', 'nope', 'x', ...flags], { env });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no search sink named "nope"');

    const low = (await inventoryOracle(db, THRESHOLD)).filter((p) => p.low);
    const lowCli = await cli(['inventory', '--low', ...flags], { env });
    expect(lowCli.code, lowCli.stderr).toBe(0);
    expect(JSON.parse(lowCli.stdout)).toEqual(low);
    // Each low product is an active alert of the control plane, told to the webhook.
    const alerts = await waitFor(async () => {
      const body = (await (await fetch(`${api}/api/alerts`)).json()) as { active: { id: string }[] };
      const ids = body.active.filter((a) => a.id.startsWith('low_stock:stock:')).map((a) => a.id);
      return ids.length === low.length && ids;
    }, 'the low-stock alerts to be active');
    expect(alerts.sort()).toEqual(low.map((p) => `low_stock:stock:${p.productId}`).sort());
    if (low.length > 0) {
      await waitFor(
        () => webhookBodies.some((b) => b.includes('is low on stock')),
        'a low-stock webhook call',
      );
    }
  });

  it('the dashboard shows the services in Chromium: search box, low stock, sales chart', async () => {
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox'],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 2400 } });
      const problems: string[] = [];
      page.on('pageerror', (error) => problems.push(error.message));
      await page.goto(`${api}/`);
      const word = VOCABULARY[1] as string;
      await page.fill('#services input[data-index="product-search"]', word);
      await page.click('#services form button[type="submit"]');
      const expected = (await searchOracle(db, word)).length;
      await page.waitForFunction(
        (n) => document.querySelector('#services .search-results p')?.textContent === `${n} hits`,
        expected,
      );
      const low = (await inventoryOracle(db, THRESHOLD)).filter((p) => p.low).length;
      await page.waitForFunction(
        (n) => document.querySelector('#inventory-stock p')?.textContent === `${n} product(s) low on stock`,
        low,
      );
      // uPlot drew the daily revenue, and the top product is the oracle's first.
      await page.waitForSelector('#sales-sales .sales-chart canvas');
      const top = (await salesOracle(db)).products[0] as { productId: number } | undefined;
      const firstCell = await page.textContent('#sales-sales table:nth-of-type(2) tbody tr td');
      expect(firstCell).toBe(String(top?.productId));
      await page.screenshot({ path: join(dataDir, 'services.png'), fullPage: true });
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
