import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { supervisorBed } from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';

const TOPIC = 'test.public.orders';
const bed = supervisorBed('consumer-containment-');

const SECRETS: Record<string, string> = {
  DATABASE_URL: 'postgres://capture:db-password-123@db/shop',
  TRIBUTARY_TOKEN: 'token-0123456789abcdef',
  TRIBUTARY_MASK_SALT: 'salt-0123456789',
  TRIBUTARY_ALERTS_WEBHOOK_URL: 'https://hooks.example.com/T000/secret',
  PGPASSWORD: 'pg-password-456',
  UNRELATED_SECRET: 'not-declared-789',
};

describe('runaway consumer code is contained', () => {
  afterEach(() => {
    for (const name of [...Object.keys(SECRETS), 'SHOP_API_KEY']) delete process.env[name];
  });

  it('gives a consumer process only the runtime environment and what it declares (issue 14 item 3)', async () => {
    Object.assign(process.env, SECRETS, { SHOP_API_KEY: 'shop-key-1' });
    const { dataDir, supervisor } = await bed.run(
      {
        reporter: {
          topics: [TOPIC],
          options: "env: ['SHOP_API_KEY']",
          prelude: "import { readFileSync, writeFileSync } from 'node:fs';",
          before: `writeFileSync(launch.dataDir + '/env.json', JSON.stringify({ env: process.env, environ: readFileSync('/proc/self/environ', 'utf8') }));`,
        },
      },
      { preload: { topic: TOPIC, count: 5 } },
    );
    const file = join(dataDir, 'env.json');
    // Written by another process: read once it is whole.
    const { env, environ } = await waitFor(() => {
      try {
        return existsSync(file)
          ? (JSON.parse(readFileSync(file, 'utf8')) as { env: Record<string, string>; environ: string })
          : undefined;
      } catch {
        return undefined;
      }
    }, 'the consumer to report its environment');
    expect(env.SHOP_API_KEY).toBe('shop-key-1');
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.TRIBUTARY_WORKER).toBeDefined();
    for (const [name, value] of Object.entries(SECRETS)) {
      expect(env[name], name).toBeUndefined();
      expect(environ, name).not.toContain(value);
    }
    expect(supervisor.api.status('reporter')?.state).toBe('running');
  });

  it('a handler spinning in while(true) ends crash-loop after hangs in a row, with an alert (issue 14 item 6)', async () => {
    const { supervisor } = await bed.run(
      { spinner: { topics: [TOPIC], before: 'for (;;) {}' } },
      {
        preload: { topic: TOPIC, count: 10 },
        // Each hang takes longer to detect than the whole crash-loop window: only counting hangs
        // in a row can find this loop.
        settings: {
          heartbeatTimeoutMs: 800,
          hangTimeoutMs: 800,
          crashLoopRestarts: 3,
          crashLoopWindowMs: 500,
          backoffInitialMs: 50,
          backoffMaxMs: 2_000,
        },
      },
    );
    await waitFor(
      () => supervisor.api.status('spinner')?.state === 'crash-loop',
      'spinner crash-looping',
      60_000,
    );
    const status = supervisor.api.status('spinner')!;
    expect(status.restarts).toBe(3);
    expect(status.replicas.live).toBe(0);
    expect(status.lastError?.message).toMatch(/heartbeat|hung/);
    const alert = supervisor.api.alerts().find((a) => a.consumer === 'spinner' && a.kind === 'crash_loop');
    expect(alert?.message).toMatch(/3 hang restarts in a row/);
    // Not restarted again.
    const seen = status.updatedAt;
    await waitFor(() => supervisor.api.status('spinner')!.updatedAt > seen + 1500, 'a later status');
    expect(supervisor.api.status('spinner')).toMatchObject({ state: 'crash-loop', restarts: 3 });
  });

  it('kills a replica whose Buffers grow beyond memoryMb, counts it, and ends crash-loop (issue 14 item 5)', async () => {
    const { dataDir, supervisor } = await bed.run(
      {
        hoarder: {
          topics: [TOPIC],
          options: 'memoryMb: 64',
          prelude: "import { writeFileSync } from 'node:fs';",
          // Off the V8 heap: Buffers, filled so that they are resident. Records the peak RSS.
          before: `const hoard = [];
        for (;;) {
          hoard.push(Buffer.alloc(16 * 1024 * 1024, 1));
          writeFileSync(launch.dataDir + '/peak-' + process.pid, String(process.memoryUsage().rss));
          await new Promise((r) => setTimeout(r, 5));
        }`,
        },
      },
      {
        preload: { topic: TOPIC, count: 10 },
        // Only the memory watch may kill it (a loaded machine must not turn it into a silence kill).
        settings: {
          crashLoopRestarts: 2,
          crashLoopWindowMs: 120_000,
          backoffInitialMs: 50,
          heartbeatTimeoutMs: 60_000,
          hangTimeoutMs: 60_000,
        },
      },
    );
    await waitFor(
      () => supervisor.api.status('hoarder')?.state === 'crash-loop',
      'hoarder crash-looping',
      90_000,
    );
    const status = supervisor.api.status('hoarder')!;
    expect(status.restarts).toBe(2);
    expect(status.replicas.live).toBe(0);
    expect(status.lastError?.message).toMatch(/memory limit of 64 MB exceeded/);
    const alerts = supervisor.api.alerts().filter((a) => a.consumer === 'hoarder');
    expect(alerts.filter((a) => a.kind === 'memory').length).toBeGreaterThanOrEqual(1);
    expect(alerts.some((a) => a.kind === 'crash_loop')).toBe(true);
    // No process grew far beyond the limit (64 + 128 MB, plus what one check interval allows).
    const peaks = readdirSync(dataDir)
      .filter((f) => f.startsWith('peak-'))
      .map((f) => Number(readFileSync(join(dataDir, f), 'utf8')) / 1024 / 1024);
    expect(peaks.length).toBe(2);
    expect(Math.max(...peaks)).toBeLessThan(600);
  });
});
