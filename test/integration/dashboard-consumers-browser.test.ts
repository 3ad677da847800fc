import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/consumers/supervisor.ts';
import { attachConsumers } from '../../src/server/control-plane.ts';
import { quietLogger, tempDirs, waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline } from './server-support.ts';

const VERSION = 18;
const DEFINE = JSON.stringify(resolve('src/consumers/define-consumer.ts'));

function consumer(dir: string, name: string, body: string): void {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(
    join(dir, name, 'index.ts'),
    `import { defineConsumer } from ${DEFINE};\nexport default defineConsumer({ ${body} });\n`,
  );
}

describe('dashboard: consumer states, counters, the two lag charts and dead-letter pages in Chromium', () => {
  let p: Pipeline;
  let supervisor: Supervisor;
  let browser: Browser;
  const dirs = tempDirs('tributary-dash-consumers-');

  beforeAll(async () => {
    p = await startPipeline(VERSION, { server: { historyIntervalMs: 200 } });
    const dir = dirs.make();
    const topic = JSON.stringify(`${p.config.topicPrefix}.public.items`);
    consumer(
      dir,
      'broken',
      `topics: [${topic}], retry: { attempts: 1, initialDelayMs: 1 }, failure: { maxConsecutiveDeadLetters: 30 },
       handle() { throw new Error('warehouse API down'); }`,
    );
    consumer(
      dir,
      'tally',
      `topics: [${topic}], handle(batch, ctx) { ctx.metrics.increment('items_seen', batch.length); }`,
    );
    consumer(dir, 'typo', `topics: ['${p.config.topicPrefix}.public.item'], handle() {}`);
    supervisor = new Supervisor({
      dataDir: p.config.dataDir,
      consumersDir: dir,
      logger: quietLogger,
      reconcileMs: 100,
      refreshMs: 200,
      watch: false,
      settings: { heartbeatMs: 200 },
    });
    await supervisor.start();
    attachConsumers(p.server, supervisor, { ...p.config, consumers: { ...p.config.consumers, dir } });
    browser = await chromium.launch({
      executablePath: execFileSync('sh', ['-c', 'command -v chromium'], { encoding: 'utf8' }).trim(),
      headless: true,
      args: ['--no-sandbox'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await supervisor?.stop();
    await p?.stop();
    dirs.removeAll();
  });

  it('shows failing (paused) with the error and resume, counters, a missing topic, bytes and records apart, pages', async () => {
    await p.db.query(`insert into items select g, 'n' || g from generate_series(1, 60) g`);
    await waitFor(() => supervisor.api.status('broken')?.state === 'failing', 'broken failing');
    await waitFor(() => supervisor.api.status('tally')?.counters.items_seen === 60, 'tally counted');

    const page = await browser.newPage({ viewport: { width: 1400, height: 1800 } });
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    await page.goto(p.server.url);
    const broken = '#consumers tr[data-consumer="broken"]';
    await page.waitForSelector(broken);
    await page.waitForFunction(
      (row) => document.querySelector(`${row} td.state`)?.textContent === 'failing (paused)',
      broken,
    );
    expect(await page.getAttribute(`${broken} td.state`, 'class')).toBe('state bad');
    expect(await page.textContent(`${broken} td.error`)).toMatch(
      /30 records dead-lettered in a row .*warehouse API down.*tributary consumers resume broken/,
    );
    expect(await page.textContent(`${broken} button[data-action="resume"]`)).toBe('resume');
    expect(await page.textContent('#consumer-nodes')).toContain('failing (paused)');
    await page.waitForFunction(() =>
      document
        .querySelector('#consumers tr[data-consumer="tally"] td.counters')
        ?.textContent?.includes('items_seen 60'),
    );
    expect(await page.textContent('#consumers tr[data-consumer="typo"] td.warning')).toMatch(
      /topic .*\.public\.item does not exist.*closest first: .*\.public\.items/,
    );

    // Lag: bytes on one chart, records on the other, each labelled with its unit.
    await page.waitForFunction(
      () => document.querySelectorAll('#consumer-lag-legend [data-series]').length === 3,
    );
    expect(await page.getAttribute('#lag-legend', 'data-unit')).toBe('bytes');
    expect(
      await page.$$eval('#lag-legend [data-series]', (s) => s.map((x) => x.getAttribute('data-series'))),
    ).toEqual(['slot lag']);
    expect(await page.getAttribute('#consumer-lag-legend', 'data-unit')).toBe('records');
    expect(
      await page.$$eval('#consumer-lag-legend [data-series]', (s) =>
        s.map((x) => x.getAttribute('data-series')),
      ),
    ).toEqual(['broken', 'tally', 'typo']);
    // The line appears once the history holds two samples: wait for it, then it must be there.
    await page.waitForFunction(() => {
      const canvas = document.querySelector<HTMLCanvasElement>('#chart-consumer-lag')!;
      const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let colored = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i + 2]! > 150 && data[i]! < 100) colored++;
      return colored > 20;
    });

    // Dead letters, 25 a page: 30 in all.
    await page.waitForFunction(() =>
      document.querySelector('#dead-letters-note')?.textContent?.includes('of 30'),
    );
    expect(await page.textContent('#dead-letters-note')).toBe('1–25 of 30 dead letter(s), newest first');
    expect(await page.$$('#dead-letters tr[data-dead-letter]')).toHaveLength(25);
    expect(await page.isDisabled('#dead-letters-prev')).toBe(true);
    await page.click('#dead-letters-next');
    await page.waitForFunction(() =>
      document.querySelector('#dead-letters-note')?.textContent?.startsWith('26–30'),
    );
    expect(await page.$$('#dead-letters tr[data-dead-letter]')).toHaveLength(5);
    expect(await page.isDisabled('#dead-letters-next')).toBe(true);
    mkdirSync('test-output', { recursive: true });
    await page.screenshot({ path: 'test-output/dashboard-consumers.png', fullPage: true });
    expect(problems).toEqual([]);
  });
});
