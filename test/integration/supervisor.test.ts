import { describe, expect, it } from 'vitest';
import type { Supervisor } from '../../src/consumers/supervisor.ts';
import {
  distinctOffsets,
  handled,
  keyOrderProblems,
  overlaps,
  supervisorBed,
} from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';

const TOPIC = 'test.public.orders';
const bed = supervisorBed('supervisor-');

function liveReplicas(s: Supervisor, name: string) {
  const st = s.api.status(name);
  return st ? st.replicas : undefined;
}

describe('supervisor', () => {
  it('runs a consumer discovered from a folder and it processes the workload', async () => {
    const { dataDir, supervisor } = await bed.run(
      { 'order-totals': { topics: [TOPIC], before: "ctx.metrics.increment('seen', batch.length);" } },
      { preload: { topic: TOPIC, count: 300 } },
    );
    expect(supervisor.names).toEqual(['order-totals']);
    await waitFor(() => distinctOffsets(handled(dataDir)) === 300, '300 records handled');
    const rows = handled(dataDir);
    expect(rows).toHaveLength(300);
    expect(keyOrderProblems(rows)).toEqual([]);
    await waitFor(() => supervisor.api.status('order-totals')?.lag.records === 0, 'lag 0');
    await waitFor(
      () => supervisor.api.status('order-totals')?.counters.seen === 300,
      "the handler's counter",
    );
    const status = supervisor.api.status('order-totals')!;
    expect(status).toMatchObject({ state: 'running', group: 'order-totals', topics: [TOPIC], restarts: 0 });
    expect(status.replicas).toEqual({ desired: 1, live: 1, ready: 1 });
    const metrics = await supervisor.metrics.text();
    expect(metrics).toMatch(/tributary_consumer_records_processed_total\{consumer="order-totals"\} 300/);
    expect(metrics).toMatch(/tributary_consumer_replicas\{consumer="order-totals"\} 1/);
  });

  it('scales 1 -> 3 -> 1 under load: per-key order kept, nothing lost, no partition handled by two replicas at once', async () => {
    const { dataDir, producer, supervisor } = await bed.run(
      {
        scaler: {
          topics: [TOPIC],
          options: 'batch: { maxRecords: 10 }',
          before: 'await new Promise((r) => setTimeout(r, 5));',
        },
      },
      { preload: { topic: TOPIC, count: 40 } },
    );
    // Appends until the scale-down is done: both changes happen under load.
    producer.start(TOPIC, 1_000_000, 10, 20);
    await waitFor(() => handled(dataDir).length > 100, 'some records handled');
    supervisor.api.scale('scaler', 3);
    await waitFor(() => liveReplicas(supervisor, 'scaler')?.ready === 3, '3 ready replicas');
    await waitFor(() => new Set(handled(dataDir).map((r) => r.pid)).size >= 3, 'three replicas handling');
    supervisor.api.scale('scaler', 1);
    await waitFor(() => liveReplicas(supervisor, 'scaler')?.live === 1, 'back to 1 replica');
    await producer.stop();
    const total = producer.produced;
    await waitFor(() => handled(dataDir).length >= total, `${total} records handled`);
    const rows = handled(dataDir);
    expect(distinctOffsets(rows)).toBe(total);
    expect(rows).toHaveLength(total);
    expect(keyOrderProblems(rows)).toEqual([]);
    expect(overlaps(rows)).toEqual([]);
    expect(new Set(rows.map((r) => r.pid)).size).toBeGreaterThanOrEqual(3);
    expect(supervisor.api.status('scaler')!.restarts).toBe(0);
  });

  it('autoscales a replicas range on time lag: up while behind, back down once caught up', async () => {
    const { dataDir, supervisor } = await bed.run(
      {
        elastic: {
          topics: [TOPIC],
          options: 'replicas: { min: 1, max: 3 }, concurrency: 1, batch: { maxRecords: 5 }',
          before: 'await new Promise((r) => setTimeout(r, 10));',
        },
      },
      {
        preload: { topic: TOPIC, count: 1500 },
        settings: { autoscale: { upLagSeconds: 1, downLagSeconds: 0.5, cooldownMs: 1000 } },
      },
    );
    await waitFor(() => supervisor.api.status('elastic')?.replicas.ready === 3, 'scaled up to 3');
    expect(supervisor.api.status('elastic')!.autoscale).toEqual({ min: 1, max: 3 });
    await waitFor(() => handled(dataDir).length >= 1500, 'all handled', 90_000);
    await waitFor(
      () => supervisor.api.status('elastic')?.replicas.live === 1,
      'scaled back down to 1',
      60_000,
    );
    const rows = handled(dataDir);
    expect(rows).toHaveLength(1500);
    expect(keyOrderProblems(rows)).toEqual([]);
    expect(overlaps(rows)).toEqual([]);
  });

  it('pauses and resumes a consumer', async () => {
    const { dataDir, producer, supervisor } = await bed.run(
      { pausable: { topics: [TOPIC] } },
      { preload: { topic: TOPIC, count: 50 } },
    );
    await waitFor(() => handled(dataDir).length === 50, '50 handled');
    supervisor.api.pause('pausable');
    await waitFor(() => {
      const s = supervisor.api.status('pausable');
      return s?.state === 'paused' && s.replicas.live === 0;
    }, 'paused with no replica');
    await producer.append(TOPIC, 70);
    await waitFor(() => supervisor.api.status('pausable')?.lag.records === 70, 'lag of 70 while paused');
    expect(handled(dataDir)).toHaveLength(50);
    supervisor.api.resume('pausable');
    await waitFor(() => handled(dataDir).length === 120, 'all handled after resume');
    expect(keyOrderProblems(handled(dataDir))).toEqual([]);
    expect(supervisor.api.status('pausable')!.state).toBe('running');
  });
});
