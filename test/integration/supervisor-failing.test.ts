import { describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { evaluateRules } from '../../src/server/alert-rules.ts';
import { supervisorControl } from '../../src/server/supervisor-control.ts';
import { handled, supervisorBed, writeConsumer } from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';

const TOPIC = 'test.public.orders';
const ENV: NodeJS.ProcessEnv = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
const bed = supervisorBed('supervisor-failing-');
const THROW = "throw new Error('downstream unavailable: connection refused');";
const ALERTS_OFF = { slotLagBytes: 0, consumerLagSeconds: 0, crashLoop: false, disconnectedSeconds: 0 };

function deadLetters(dataDir: string, consumer: string) {
  const store = ConsumerStore.open({ dataDir });
  try {
    return store.deadLetters(consumer, {});
  } finally {
    store.close();
  }
}

describe('a consumer whose handler fails every record', () => {
  it('pauses at the dead-letter threshold (default 10), shows failing with the error and an alert, and resume after the fix handles the rest', async () => {
    const { dataDir, consumersDir, supervisor } = await bed.run(
      {
        broken: {
          topics: [TOPIC],
          options: 'retry: { attempts: 1, initialDelayMs: 1 }, batch: { maxRecords: 5 }',
          before: THROW,
        },
      },
      { preload: { topic: TOPIC, count: 240 } },
    );
    await waitFor(() => {
      const s = supervisor.api.status('broken');
      return s?.state === 'failing' && s.replicas.live === 0;
    }, 'failing, paused, no replica left');
    const status = supervisor.api.status('broken')!;
    expect(status.failure).toMatchObject({ reason: 'dead_letters', paused: true });
    expect(status.failure!.message).toMatch(
      /10 records dead-lettered in a row .*last error: downstream unavailable: connection refused.*tributary consumers resume broken/,
    );
    // Bounded: the threshold, not the 240 records of the topic.
    expect(deadLetters(dataDir, 'broken')).toHaveLength(10);
    expect(status.deadLettered).toBe(10);
    expect(handled(dataDir)).toHaveLength(0);
    // The rest waits: at most the dead-lettered records are committed (lanes finish out of order).
    const lag = supervisor.api.status('broken')!.lag.records;
    expect(lag).toBeGreaterThanOrEqual(230);
    expect(lag).toBeLessThanOrEqual(240);

    // An alert: in the consumers' alert log and from the alert rules the server evaluates.
    expect(supervisor.api.alerts().map((a) => a.kind)).toContain('failing');
    const summaries = await supervisorControl(supervisor).list();
    expect(summaries[0]).toMatchObject({
      state: 'failing',
      failure: { reason: 'dead_letters', paused: true },
    });
    expect(
      evaluateRules(
        { disconnectedForMs: null, slotLagBytes: null, slot: 's', consumers: summaries },
        ALERTS_OFF,
      ),
    ).toMatchObject([{ id: 'consumer_failing:broken', severity: 'critical' }]);

    // What `tributary consumers` shows from another process.
    const table = await cli(['consumers', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/broken\s+failing \(paused\)\s+0\/0 .*downstream unavailable/);

    // Fix the handler, then resume from the CLI: the records not dead-lettered are handled.
    writeConsumer(consumersDir, 'broken', {
      topics: [TOPIC],
      version: 2,
      options: 'retry: { attempts: 1, initialDelayMs: 1 }, batch: { maxRecords: 5 }',
    });
    const resume = await cli(['consumers', 'resume', 'broken', '--data-dir', dataDir], { env: ENV });
    expect(resume.code).toBe(0);
    await waitFor(() => supervisor.api.status('broken')?.lag.records === 0, 'caught up after resume');
    const dead = new Set(deadLetters(dataDir, 'broken').map((d) => `${d.partition}/${d.offset}`));
    const done = handled(dataDir).map((r) => `${r.partition}/${r.offset}`);
    expect(new Set(done).size).toBe(230);
    expect(done.filter((o) => dead.has(o))).toEqual([]);
    const after = supervisor.api.status('broken')!;
    expect(after.state).toBe('running');
    expect(after.failure).toBeNull();
  });

  it('with failure.action continue, keeps dead-lettering but shows failing and alerts', async () => {
    const { dataDir, supervisor } = await bed.run(
      {
        stubborn: {
          topics: [TOPIC],
          options:
            "retry: { attempts: 1, initialDelayMs: 1 }, failure: { maxConsecutiveDeadLetters: 3, action: 'continue' }",
          before: THROW,
        },
      },
      { preload: { topic: TOPIC, count: 40 } },
    );
    await waitFor(() => deadLetters(dataDir, 'stubborn').length === 40, 'all 40 dead-lettered');
    await waitFor(() => supervisor.api.status('stubborn')?.state === 'failing', 'failing');
    const status = supervisor.api.status('stubborn')!;
    expect(status.failure).toMatchObject({ reason: 'dead_letters', paused: false });
    expect(status.replicas.live).toBe(1);
    expect(supervisor.api.alerts().map((a) => a.kind)).toContain('failing');
  });
});
