import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const VERSION = 18;

function chromiumPath(): string {
  return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], {
    encoding: 'utf8',
  }).trim();
}

/**
 * Issue 11 item 5: under a plain `up` (no token configured), the printed dashboard URL carries a
 * token made for the run; the page keeps it, and its buttons (API mutations) work.
 */
describe('up: a token per run in the printed dashboard URL', () => {
  const dirs = tempDirs('tributary-up-token-');
  let db: TestDatabase;
  let up: CliProcess | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    db = await createDatabase(VERSION, 'uptok');
    await db.query('create table items (id int primary key, name text)');
    const root = dirs.make();
    const consumers = join(root, 'consumers');
    mkdirSync(join(consumers, 'quiet'), { recursive: true });
    writeFileSync(
      join(consumers, 'quiet', 'index.ts'),
      `import { defineConsumer } from ${JSON.stringify(resolve('src/consumers/define-consumer.ts'))};
export default defineConsumer({ topics: ['tributary.public.items'], async handle() {} });
`,
    );
    const port = await freePort();
    up = startCli(
      [
        'up',
        '--source',
        db.url,
        '--data-dir',
        join(root, 'data'),
        '--slot',
        `s_${db.name}`,
        '--publication',
        `p_${db.name}`,
        '--snapshot-mode',
        'never',
        '--no-workload',
        '--http-port',
        String(port),
        '--consumers',
        consumers,
      ],
      { env: { TRIBUTARY_TOKEN: '', DATABASE_URL: '' } },
    );
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: ['--no-sandbox'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    if (up && up.child.exitCode === null) {
      up.child.kill('SIGINT');
      await up.exited;
    }
    await db?.drop();
    dirs.removeAll();
  });

  it('prints the URL with a fresh token; the page keeps it and its buttons work', async () => {
    const line = await waitFor(
      () => /^dashboard: (http:\/\/127\.0\.0\.1:\d+\/)#token=([\w-]{32})$/m.exec(up!.stderr) ?? undefined,
      `the dashboard line in:\n${up!.stderr}`,
    );
    const [, base, token] = line as unknown as [string, string, string];
    // The consumer runs (the page's buttons need a row).
    await waitFor(async () => {
      const r = await fetch(new URL('/api/consumers', base));
      const list = r.ok ? ((await r.json()) as { name: string; replicas: { running: number } }[]) : [];
      return list.some((c) => c.name === 'quiet' && c.replicas.running > 0);
    }, 'the consumer to run');

    // A browser without the token: the page loads, a button is refused (401).
    const stranger = await browser!.newPage();
    await stranger.goto(base);
    await stranger.waitForSelector('#consumers tr[data-consumer="quiet"] [data-action="pause"]');
    await stranger.click('#consumers tr[data-consumer="quiet"] [data-action="pause"]');
    await stranger.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('token'));
    await stranger.close();

    // The printed URL: the token is kept and taken out of the address bar; pause works.
    const page = await browser!.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (m) => problems.push(m.text()));
    await page.goto(`${base}#token=${token}`);
    await page.waitForSelector('#consumers tr[data-consumer="quiet"] [data-action="pause"]');
    expect(await page.evaluate(() => location.hash)).toBe('');
    expect(await page.inputValue('#token')).toBe(token);
    await page.click('#consumers tr[data-consumer="quiet"] [data-action="pause"]');
    await waitFor(async () => {
      const list = (await (await fetch(new URL('/api/consumers', base))).json()) as {
        name: string;
        state: string;
      }[];
      return list.find((c) => c.name === 'quiet')?.state === 'paused';
    }, 'the consumer to be paused by the page');
    // After a reload (no fragment), the stored token still drives the buttons.
    await page.reload();
    await page.waitForSelector('#consumers tr[data-consumer="quiet"] [data-action="resume"]');
    expect(problems.filter((m) => !m.includes('Password field'))).toEqual([]);
    await page.click('#consumers tr[data-consumer="quiet"] [data-action="resume"]');
    await waitFor(async () => {
      const list = (await (await fetch(new URL('/api/consumers', base))).json()) as {
        name: string;
        state: string;
      }[];
      return list.find((c) => c.name === 'quiet')?.state !== 'paused';
    }, 'the consumer to be resumed by the page');
    // The token works for the API too, and no other does.
    const wrong = await fetch(new URL('/api/consumers/quiet/restart', base), {
      method: 'POST',
      headers: { authorization: 'Bearer not-the-token-of-this-run' },
    });
    expect(wrong.status).toBe(401);
  });
});
