import { describe, expect, it } from 'vitest';
import { supervisorControl } from '../../src/server/supervisor-control.ts';
import {
  distinctOffsets,
  firstSeenOrderProblems,
  type HandledRow,
  handled,
  keyOrderProblems,
  supervisorBed,
  writeConsumer,
} from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';

const TOPIC = 'test.public.orders';
const bed = supervisorBed('supervisor-faults-');

describe('supervisor faults', () => {
  it('restarts replicas killed with SIGKILL at random moments under load, and nothing is lost', async () => {
    const { dataDir, producer, supervisor } = await bed.run(
      {
        victim: {
          topics: [TOPIC],
          options: 'replicas: 2, batch: { maxRecords: 10 }',
          before: 'await new Promise((r) => setTimeout(r, 3));',
        },
      },
      { settings: { crashLoopRestarts: 100, backoffInitialMs: 50, backoffMaxMs: 200 } },
    );
    // Appends until the last kill: every kill happens under load.
    producer.start(TOPIC, 1_000_000, 20, 10);
    let kills = 0;
    while (kills < 5) {
      await waitFor(() => (supervisor.api.status('victim')?.replicas.ready ?? 0) >= 1, 'a ready replica');
      const before = handled(dataDir).length;
      await waitFor(
        () => handled(dataDir).length > before + 20 + Math.floor(Math.random() * 100),
        'progress',
      );
      const { pids, restarts } = supervisor.api.status('victim')!;
      const pid = pids[Math.floor(Math.random() * pids.length)]!;
      process.kill(pid, 'SIGKILL');
      kills++;
      // The next kill only once this one is seen, so that no kill lands on a process already dead.
      await waitFor(
        () => supervisor.api.status('victim')!.restarts > restarts,
        `restart after kill ${kills}`,
      );
    }
    await producer.stop();
    const total = producer.produced;
    await waitFor(
      () => distinctOffsets(handled(dataDir)) >= total,
      `${total} distinct records handled`,
      90_000,
    );
    const rows = handled(dataDir);
    expect(distinctOffsets(rows)).toBe(total);
    expect(firstSeenOrderProblems(rows)).toEqual([]);
    await waitFor(() => supervisor.api.status('victim')?.state === 'running', 'running again');
    expect(supervisor.api.status('victim')!.restarts).toBeGreaterThanOrEqual(kills);
    await waitFor(() => supervisor.api.status('victim')?.lag.records === 0, 'lag 0');
    expect(await supervisor.metrics.text()).toMatch(
      /tributary_consumer_restarts_total\{consumer="victim"\} [5-9]/,
    );
  });

  it('rolls onto new code mid-stream when index.ts is rewritten: nothing lost or skipped, the new code handles the rest', async () => {
    const spec = {
      topics: [TOPIC],
      options: 'replicas: 2, batch: { maxRecords: 10 }',
      before: 'await new Promise((r) => setTimeout(r, 3));',
    };
    const { dataDir, consumersDir, producer, supervisor } = await bed.run({
      rolling: { ...spec, version: 1 },
    });
    // Appends until the update is complete: it happens mid-stream.
    producer.start(TOPIC, 1_000_000, 10, 10);
    await waitFor(() => supervisor.api.status('rolling')?.replicas.ready === 2, '2 replicas');
    await waitFor(() => handled(dataDir).length > 200, 'version 1 handling');
    const v1 = supervisor.api.status('rolling')!.pids;
    writeConsumer(consumersDir, 'rolling', { ...spec, version: 2 });
    await waitFor(() => {
      const s = supervisor.api.status('rolling')!;
      return s.replicas.ready === 2 && s.replicas.live === 2 && s.pids.every((p) => !v1.includes(p));
    }, 'both replicas replaced');
    await producer.stop();
    // After the update, only the new code handles records.
    await producer.append(TOPIC, 200);
    const total = producer.produced;
    await waitFor(() => handled(dataDir).length >= total, `${total} handled`, 90_000);
    const rows = handled(dataDir);
    const seen = new Map<string, HandledRow>();
    const twice = rows.flatMap((r) => {
      const id = `${r.partition}:${r.offset}`;
      const first = seen.get(id);
      seen.set(id, r);
      return first ? [{ first, again: r }] : [];
    });
    expect(twice, JSON.stringify(twice, null, 1)).toEqual([]);
    expect(rows).toHaveLength(total);
    expect(distinctOffsets(rows)).toBe(total);
    expect(keyOrderProblems(rows)).toEqual([]);
    // Once a partition is handled by version 2, version 1 never handles it again.
    const firstV2 = new Map<number, number>();
    rows.forEach((r, i) => {
      if (r.version === 2 && !firstV2.has(r.partition)) firstV2.set(r.partition, i);
    });
    rows.forEach((r, i) => {
      if (r.version === 1) expect(i).toBeLessThan(firstV2.get(r.partition) ?? Number.POSITIVE_INFINITY);
    });
    expect(rows.slice(-200).every((r) => r.version === 2)).toBe(true);
    const status = supervisor.api.status('rolling')!;
    expect(status.generation).toBe(1);
    expect(status.restarts).toBe(0);
  });

  it('kills and restarts a hung handler', async () => {
    const { dataDir, supervisor } = await bed.run(
      {
        // Hangs once (a marker file remembers it), on the first batch holding seq 5 of a key.
        hangs: {
          topics: [TOPIC],
          prelude: "import { existsSync, writeFileSync } from 'node:fs';",
          before: `if (batch.some((r) => r.value?.seq === 5) && !existsSync(launch.dataDir + '/hung-once')) {
        writeFileSync(launch.dataDir + '/hung-once', String(process.pid));
        await new Promise(() => {});
      }`,
        },
      },
      { preload: { topic: TOPIC, count: 200 }, settings: { hangTimeoutMs: 1500 } },
    );
    await waitFor(() => distinctOffsets(handled(dataDir)) === 200, 'all handled after the restart', 60_000);
    const status = supervisor.api.status('hangs')!;
    expect(status.restarts).toBe(1);
    expect(status.lastError?.message).toMatch(/hung/);
    expect(supervisor.api.alerts().map((a) => [a.consumer, a.kind])).toContainEqual(['hangs', 'hung']);
  });

  it('restarts a replica that breaches its memory limit', async () => {
    const { dataDir, supervisor } = await bed.run(
      {
        hog: {
          topics: [TOPIC],
          options: 'memoryMb: 96',
          prelude: "import { existsSync, writeFileSync } from 'node:fs';",
          before: `if (!existsSync(launch.dataDir + '/hogged-once')) {
        writeFileSync(launch.dataDir + '/hogged-once', '');
        const hoard = [];
        for (;;) hoard.push(new Array(100_000).fill(Math.random()));
      }`,
        },
      },
      { preload: { topic: TOPIC, count: 100 } },
    );
    await waitFor(() => distinctOffsets(handled(dataDir)) === 100, 'all handled after the restart', 90_000);
    const status = supervisor.api.status('hog')!;
    expect(status.restarts).toBe(1);
    expect(status.lastError?.message).toMatch(/memory limit of 96 MB exceeded/);
    expect(supervisor.api.alerts().map((a) => [a.consumer, a.kind])).toContainEqual(['hog', 'memory']);
  });

  it('marks a crash-looping consumer crash-loop (one word in the status, the API and `consumers`), with an alert, while another consumer keeps going', async () => {
    const { dataDir, consumersDir, producer, supervisor } = await bed.run(
      {
        crasher: { topics: [TOPIC], prelude: "throw new Error('boom at start');" },
        steady: { topics: [TOPIC] },
      },
      { settings: { crashLoopRestarts: 3, crashLoopWindowMs: 60_000, backoffInitialMs: 50 } },
    );
    producer.start(TOPIC, 1000, 20, 10);
    await waitFor(() => supervisor.api.status('crasher')?.state === 'crash-loop', 'crasher crash-looping');
    const crasher = supervisor.api.status('crasher')!;
    expect(crasher.restarts).toBe(3);
    expect(crasher.replicas.live).toBe(0);
    expect(crasher.lastError?.message).toMatch(/boom at start/);
    const alerts = supervisor.api.alerts();
    expect(alerts.filter((a) => a.kind === 'crash_loop').map((a) => a.consumer)).toEqual(['crasher']);
    await producer.finished();
    await waitFor(() => handled(dataDir, 'steady').length === 1000, 'steady handled everything');
    expect(supervisor.api.status('steady')!).toMatchObject({ state: 'running', restarts: 0 });
    // Not spinning: still failed with the same restart count a few reconciles later.
    const seen = supervisor.api.status('crasher')!.updatedAt;
    await waitFor(() => supervisor.api.status('crasher')!.updatedAt > seen + 500, 'later status');
    expect(supervisor.api.status('crasher')!).toMatchObject({ state: 'crash-loop', restarts: 3 });
    // The same word for the same state: the API, `tributary consumers` and its --json.
    const api = (await supervisorControl(supervisor).list()).find((c) => c.name === 'crasher');
    expect(api).toMatchObject({ state: 'crash-loop', crashLooping: true });
    const env = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
    const table = await cli(['consumers', '--data-dir', dataDir], { env, cwd: consumersDir });
    expect(table.stdout).toMatch(/^crasher\s+crash-loop\s/m);
    expect(table.stdout).not.toMatch(/^crasher\s+failed/m);
    const json = await cli(['consumers', '--json', '--data-dir', dataDir], { env, cwd: consumersDir });
    expect(JSON.parse(json.stdout)).toContainEqual(
      expect.objectContaining({ name: 'crasher', state: 'crash-loop' }),
    );
    // Fixing the code gives it a new chance.
    writeConsumer(consumersDir, 'crasher', { topics: [TOPIC] });
    await waitFor(() => handled(dataDir, 'crasher').length === 1000, 'fixed crasher handled everything');
    expect(supervisor.api.status('crasher')!.state).toBe('running');
  });
});
