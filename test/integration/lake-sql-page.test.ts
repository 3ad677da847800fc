import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { queryLake } from '../../src/sinks/lake/lake-query.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const TOKEN = 'lake-test-token-0123456789abcdef';
const dirs = tempDirs('lake-sql-page-');
let proc: CliProcess | undefined;
let db: TestDatabase | undefined;
let browser: Browser | undefined;

afterAll(async () => {
  await browser?.close();
  if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
  await proc?.exited;
  await db?.drop();
  dirs.removeAll();
});

describe.each(PG_VERSIONS.slice(-1))('lake SQL over HTTP and in the dashboard (PostgreSQL %i)', (version) => {
  it('POST /api/sql answers SELECTs with the token, refuses writes; the SQL page shows rows and errors in Chromium', async () => {
    db = await createDatabase(version, 'lakesql');
    await db.query('create table orders (id int primary key, total numeric(10,2), status text)');
    const dataDir = dirs.make();
    const configFile = join(dirs.make(), 'tributary.config.json');
    writeFileSync(
      configFile,
      JSON.stringify({ sinks: { lake: { kind: 'lake', tables: ['public.orders'] } } }),
    );
    const port = await freePort();
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
        'ls',
        '--consumers',
        dirs.make(),
      ],
      {
        env: {
          DATABASE_URL: '',
          TRIBUTARY_DATA_DIR: '',
          TRIBUTARY_SLOT: '',
          TRIBUTARY_HTTP_PORT: String(port),
          TRIBUTARY_TOKEN: TOKEN,
          TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
          TRIBUTARY_CONSUMERS_NICENESS: '0',
        },
      },
    );
    await waitFor(
      () => proc!.stderr.includes('"msg":"replication started"') || proc!.child.exitCode !== null,
      'replication',
      60_000,
    );
    expect(proc.child.exitCode, proc.stderr).toBeNull();
    await db.query(
      `insert into orders select g, g * 1.5, case when g % 3 = 0 then 'paid' else 'new' end from generate_series(1, 300) g`,
    );
    await db.query("update orders set status = 'void' where id <= 10");
    const root = join(dataDir, 'lake');
    const want = (
      await db.query('select status, count(*)::int as n from orders group by status order by status')
    ).rows;
    const QUERY = 'SELECT status, count(*)::INTEGER AS n FROM silver.orders GROUP BY status ORDER BY status';
    await waitFor(
      async () => {
        try {
          const r = await queryLake(root, QUERY);
          return JSON.stringify(r.rows) === JSON.stringify(want.map((w) => [w.status, w.n]));
        } catch {
          return false;
        }
      },
      'the lake to hold the orders',
      60_000,
    );

    const url = `http://127.0.0.1:${port}`;
    const post = (body: unknown, token?: string) =>
      fetch(`${url}/api/sql`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
    expect((await post({ query: QUERY })).status).toBe(401);
    const ok = await post({ query: QUERY }, TOKEN);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { rows: unknown[][] }).rows).toEqual(want.map((w) => [w.status, w.n]));
    const write = await post({ query: 'DELETE FROM silver.orders' }, TOKEN);
    expect(write.status).toBe(400);
    expect(await write.json()).toMatchObject({ error: 'LAKE_SQL_READ_ONLY' });
    const limited = await post({ query: 'SELECT * FROM silver.orders', maxRows: 5 }, TOKEN);
    expect(await limited.json()).toMatchObject({ truncated: true });
    const slow = await post(
      {
        query: 'SELECT count(*) FROM range(100000000) a, range(100000) b WHERE a.range + b.range = -1',
        timeoutMs: 300,
      },
      TOKEN,
    );
    expect(slow.status).toBe(400);
    expect(await slow.json()).toMatchObject({ error: 'LAKE_SQL_TIMEOUT' });

    const executablePath = execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], {
      encoding: 'utf8',
    }).trim();
    browser = await chromium.launch({ executablePath, headless: true, args: ['--no-sandbox'] });
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(`${url}/`);
    await page.fill('#token', TOKEN);
    await page.fill('#sql-query', QUERY);
    await page.click('#sql-run');
    await page.waitForFunction(() =>
      (document.querySelector('#sql-status')?.textContent ?? '').includes('rows'),
    );
    const cells = await page.$$eval('#sql-result tbody tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)),
    );
    expect(cells).toEqual(want.map((w) => [w.status, String(w.n)]));
    expect(await page.$$eval('#sql-result thead th', (ths) => ths.map((th) => th.textContent))).toEqual([
      'status',
      'n',
    ]);
    await page.fill('#sql-query', 'SELECT nope FROM silver.orders');
    await page.click('#sql-run');
    await page.waitForFunction(() =>
      (document.querySelector('#sql-status')?.textContent ?? '').startsWith('error'),
    );
    expect(await page.textContent('#sql-status')).toMatch(/nope/);
    expect(problems).toEqual([]);
  }, 100_000);
});
