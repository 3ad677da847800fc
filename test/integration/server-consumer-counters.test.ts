import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Supervisor } from '../../src/consumers/supervisor.ts';
import { attachConsumers } from '../../src/server/control-plane.ts';
import { quietLogger, tempDirs, waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline } from './server-support.ts';

const VERSION = 18;

/** `name{labels} value` of one series of an exposition, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe("a consumer's own counters (ctx.metrics.increment)", () => {
  let p: Pipeline;
  let supervisor: Supervisor;
  const dirs = tempDirs('tributary-counters-');

  beforeAll(async () => {
    p = await startPipeline(VERSION);
    const dir = dirs.make();
    mkdirSync(join(dir, 'tally'), { recursive: true });
    writeFileSync(
      join(dir, 'tally', 'index.ts'),
      `import { defineConsumer } from ${JSON.stringify(resolve('src/consumers/define-consumer.ts'))};
export default defineConsumer({
  topics: [${JSON.stringify(`${p.config.topicPrefix}.public.items`)}],
  batch: { maxRecords: 7 },
  async handle(batch, ctx) {
    ctx.metrics.increment('items_seen', batch.length);
    ctx.metrics.increment('batches');
  },
});
`,
    );
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
  });
  afterAll(async () => {
    await supervisor?.stop();
    await p?.stop();
    dirs.removeAll();
  });

  it('reach /metrics and the API, summed over replicas and a rolling update, neither doubled nor dropped', async () => {
    const series = 'tributary_consumer_custom_total{consumer="tally",counter="items_seen"}';
    const seen = async () => value((await p.request('/metrics')).text, series);
    await waitFor(
      async () => (await p.request('/api/consumers/tally')).body?.replicas?.running === 1,
      'ready',
    );
    await p.db.query(`insert into items select g, 'n' || g from generate_series(1, 120) g`);
    await waitFor(async () => (await seen()) === 120, '120 on /metrics');
    expect((await p.request('/api/consumers/tally')).body.counters).toMatchObject({ items_seen: 120 });

    // Two replicas, then a rolling restart (new processes replace the old ones) under load.
    supervisor.api.scale('tally', 2);
    await waitFor(() => supervisor.api.status('tally')?.replicas.ready === 2, '2 replicas');
    await p.db.query(`insert into items select g, 'n' || g from generate_series(121, 300) g`);
    const generation = supervisor.api.status('tally')!.generation;
    supervisor.api.restart('tally');
    await p.db.query(`insert into items select g, 'n' || g from generate_series(301, 400) g`);
    await waitFor(() => {
      const s = supervisor.api.status('tally');
      return s && s.generation > generation && s.replicas.ready === 2 && s.lag.records === 0;
    }, 'rolled and caught up');
    // Every record counted once: the old replicas' last counts reach the supervisor before they exit.
    await waitFor(async () => (await seen()) === 400, '400 on /metrics', 10_000);
    const api = (await p.request('/api/consumers/tally')).body;
    expect(api.counters.items_seen).toBe(400);
    expect(api.processed).toBe(400);
    const text = (await p.request('/metrics')).text;
    expect(value(text, 'tributary_consumer_custom_total{consumer="tally",counter="batches"}')).toBe(
      api.counters.batches,
    );
    expect(text).toMatch(/^# TYPE tributary_consumer_custom_total counter$/m);
  });
});
