import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Pipeline, startPipeline, startPoisonConsumer, TOKEN } from './server-support.ts';

const VERSION = 18;

/** Debian's chromium (installed by .ci/run). */
function chromiumPath(): string {
  return execFileSync('sh', ['-c', 'command -v chromium || command -v chromium-browser'], {
    encoding: 'utf8',
  }).trim();
}

/** A small steady workload: one insert and one update per transaction, until stopped. */
function startWorkload(p: Pipeline): { stop(): Promise<void> } {
  let stopped = false;
  const loop = (async () => {
    for (let id = 1; !stopped; id++) {
      await p.db.query(`insert into items values ($1::int, 'item ' || $1::text)`, [id]);
      await p.db.query(`update items set name = 'updated' where id = $1`, [id]);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  // Surfaces in stop(), never as an unhandled rejection.
  loop.catch(() => undefined);
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

const number = async (page: Page, selector: string) =>
  Number((await page.textContent(selector))?.replace(/,/g, '') ?? Number.NaN);

describe('dashboard in a real browser', () => {
  let p: Pipeline;
  let browser: Browser;
  let workload: { stop(): Promise<void> } | undefined;
  let consumer: Awaited<ReturnType<typeof startPoisonConsumer>>;

  beforeAll(async () => {
    p = await startPipeline(VERSION);
    consumer = await startPoisonConsumer(p);
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: ['--no-sandbox'],
    });
  });
  afterAll(async () => {
    await workload?.stop();
    await browser?.close();
    await consumer?.stop();
    await p?.stop();
  });

  it('shows the pipeline live, browses messages and saves a screenshot', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (m) => {
      // The browser logs every failed request; the one refused replay below (401) is on purpose.
      if (m.type() === 'error' && !m.text().includes('status of 401')) problems.push(m.text());
    });
    // Offline: the page must not need anything but this server.
    const origin = new URL(p.server.url).origin;
    await page.route('**/*', (route) =>
      route.request().url().startsWith(origin) ? route.continue() : route.abort('internetdisconnected'),
    );
    await page.goto(p.server.url);
    await page.waitForFunction(() => document.querySelector('#overall')?.textContent === 'healthy');
    expect(await page.textContent('#source .name')).toContain(p.db.name);

    workload = startWorkload(p);
    // Numbers move while the workload runs, without reloading the page.
    await page.waitForFunction(() => Number(document.querySelector('#capture-records')?.textContent) > 0);
    const first = await number(page, '#capture-records');
    await page.waitForFunction(
      (n) => Number(document.querySelector('#capture-records')?.textContent?.replace(/,/g, '')) > n + 20,
      first,
      { timeout: 60_000 },
    );
    await page.waitForFunction(
      () => Number(document.querySelector('#capture-rate')?.textContent?.replace(/,/g, '')) > 0,
    );
    const topic = `${p.config.topicPrefix}.public.items`;
    await page.waitForSelector(`#topics [data-topic="${topic}"]`);
    // The throughput chart has drawn a line (some non-background pixels in its plot area).
    const drawn = await page.evaluate(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('#chart-throughput')!;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let colored = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 2]! > 150 && data[i]! < 100) colored++;
      return colored;
    });
    expect(drawn).toBeGreaterThan(20);

    // Message browser: pick the topic, see records, open one envelope pretty-printed.
    await page.selectOption('#browser-topic', topic);
    await page.waitForSelector('#records tbody tr[data-offset]');
    await page.click('#browser-first');
    await page.waitForSelector('#records tbody tr[data-offset="0"]');
    await page.click('#records tbody tr[data-offset="0"]');
    const envelope = await page.textContent('#envelope');
    expect(envelope).toContain('"op": "c"');
    expect(envelope).toContain('"table": "items"');
    expect(JSON.parse(envelope!)).toMatchObject({ offset: 0, key: { id: 1 }, value: { after: { id: 1 } } });
    await page.click('#browser-next');
    await page.waitForSelector('#records tbody tr[data-offset="25"]');
    // Search by key: the insert and the update of id 3.
    await page.fill('#browser-key', '3');
    await page.click('#browser-search');
    await page.waitForFunction(
      () => document.querySelectorAll('#records tbody tr[data-offset]').length === 2,
    );
    expect(await page.textContent('#message')).toContain('2 record(s) with key 3');

    // The consumer, and the dead letter of item 7 (its handler fails while the flag exists).
    await page.waitForSelector('#consumers tr[data-consumer="poison"]');
    expect(await page.textContent('#consumer-nodes .node .name')).toBe('poison');
    // The workload inserts then updates item 7: two dead letters; the first is replayed here.
    await page.waitForSelector('#dead-letters tr[data-dead-letter]', { timeout: 60_000 });
    const id = await page.getAttribute('#dead-letters tr[data-dead-letter]', 'data-dead-letter');
    const row = `#dead-letters tr[data-dead-letter="${id}"]`;
    expect(await page.textContent(`${row} td.error`)).toBe('item 7 is poison');
    expect(await page.textContent(`${row} td:nth-child(3)`)).toContain(topic);
    await page.click(`${row} td:first-child a`);
    await page.waitForFunction(() =>
      document.querySelector('#dead-letter')?.textContent?.includes('"after"'),
    );
    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: 'test-output/dashboard-dead-letter.png', fullPage: true });

    // Replay by clicking: refused without the token (said on the page), done with it.
    await page.click(`${row} button.replay`);
    await page.waitForFunction(() =>
      document.querySelector('#message')?.textContent?.includes('enter the token'),
    );
    rmSync(consumer.flag);
    await page.fill('#token', TOKEN);
    await page.press('#token', 'Enter');
    await page.click(`${row} button.replay`);
    await page.waitForFunction(() => document.querySelector('#message')?.textContent?.includes('replayed'));
    await page.waitForSelector(row, { state: 'detached' });
    expect((await p.request(`/api/dead-letters/${id}`)).status).toBe(404);

    // A backfill started through the API shows as a progress bar that fills.
    const backfill = await p.request('/api/snapshots', {
      method: 'POST',
      token: true,
      body: { tables: ['public.items'] },
    });
    expect(backfill.status).toBe(202);
    await page.waitForSelector('.snapshot[data-table="public.items"] .bar[data-percent="100"]', {
      timeout: 60_000,
    });
    expect(await page.textContent('.snapshot[data-table="public.items"]')).toContain('done');

    await page.screenshot({ path: 'test-output/dashboard.png', fullPage: true });
    expect(problems).toEqual([]);
    await workload.stop();
    workload = undefined;
  });
});
