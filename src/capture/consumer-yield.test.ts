import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsumerYield, type CpuTimes, readCpuTimes, type YieldMode } from './consumer-yield.ts';
import { readYieldLease, YIELD_LEASE_MS } from './yield-lease.ts';

const MiB = 1024 * 1024;
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A capture as the policy sees it: a clock, a message count, a backlog, the machine's CPU. */
function harness(mode: YieldMode, startBacklog?: number) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-yield-'));
  dirs.push(dataDir);
  const state = {
    now: 1_000_000,
    received: 0,
    backlog: (10 * MiB) as number | null | Error | Promise<number>,
    /** Spare cores the machine had over each 100 ms (of 2). */
    spare: 0.2,
    cpu: { cores: 2, busy: 0, spare: 0 } as CpuTimes | null,
  };
  const policy = new ConsumerYield({
    dataDir,
    mode,
    logger: pino({ level: 'silent' }),
    clock: () => state.now,
    received: () => state.received,
    backlog: async () => {
      if (state.backlog instanceof Error) throw state.backlog;
      return state.backlog;
    },
    cpu: () => state.cpu,
    ...(startBacklog === undefined ? {} : { startBacklog: async () => startBacklog }),
  });
  /** 100 ms pass with messages received (unless `idle`), then the policy decides. */
  const tick = async (options: { idle?: boolean } = {}) => {
    state.now += 100;
    if (!options.idle) state.received += 50;
    if (state.cpu) {
      // 100 ms of 2 cores at 100 ticks/s = 20 ticks.
      state.cpu = {
        cores: 2,
        busy: state.cpu.busy + 20 - state.spare * 10,
        spare: state.cpu.spare + state.spare * 10,
      };
    }
    await policy.tick();
  };
  const lease = () => readYieldLease(dataDir);
  return { dataDir, state, policy, tick, lease };
}

describe('ConsumerYield', () => {
  it('holds while the capture receives and the backlog is 1 MiB or more, renews the lease, lets go below 256 KiB', async () => {
    const h = harness('always');
    await h.tick();
    expect(h.policy.stats.holding).toBe(true);
    expect(h.lease()).toBe(h.state.now + YIELD_LEASE_MS);
    await h.tick();
    expect(h.lease()).toBe(h.state.now + YIELD_LEASE_MS);
    h.state.backlog = 512 * 1024; // between the two thresholds: the hold goes on
    await h.tick();
    expect(h.policy.stats.holding).toBe(true);
    h.state.backlog = 100 * 1024;
    await h.tick();
    expect(h.policy.stats).toEqual({ holding: false, holds: 1, heldMs: 300 });
    expect(h.lease()).toBe(0);
    h.state.backlog = 512 * 1024; // does not start a hold
    await h.tick();
    expect(h.policy.stats.holding).toBe(false);
  });

  it('a capture that starts behind holds from the start, before any message, for a second at least', async () => {
    const h = harness('auto', 50 * MiB);
    h.state.spare = 1.8; // the catch-up has not used the CPU yet
    h.policy.start();
    await new Promise((r) => setImmediate(r));
    expect(h.policy.stats.holding).toBe(true);
    expect(h.lease()).toBe(h.state.now + YIELD_LEASE_MS);
    for (let i = 0; i < 9; i++) {
      await h.tick({ idle: true });
      expect(h.lease()).toBe(h.state.now + YIELD_LEASE_MS);
    }
    await h.tick({ idle: true }); // then the policy decides: spare cores, nothing received
    expect(h.policy.stats).toMatchObject({ holding: false, holds: 1 });
    h.policy.stop();

    const small = harness('always', 100 * 1024);
    small.policy.start();
    await new Promise((r) => setImmediate(r));
    expect(small.policy.stats.holding).toBe(false);
    small.policy.stop();
  });

  it('does not hold a capture that receives nothing, whatever the server WAL (another database writing)', async () => {
    const h = harness('always');
    await h.tick({ idle: true });
    expect(h.policy.stats.holding).toBe(false);
    await h.tick();
    expect(h.policy.stats.holding).toBe(true);
    // An append that blocks for a tick does not end it; half a second without a message does.
    for (let i = 0; i < 4; i++) await h.tick({ idle: true });
    expect(h.policy.stats.holding).toBe(true);
    await h.tick({ idle: true });
    expect(h.policy.stats.holding).toBe(false);
    expect(h.lease()).toBe(0);
  });

  it('auto: holds only without a spare core, and lets go from 1.5 spare cores', async () => {
    const h = harness('auto');
    h.state.spare = 1.2;
    for (let i = 0; i < 3; i++) await h.tick();
    expect(h.policy.stats.holding).toBe(false);
    h.state.spare = 0.3;
    for (let i = 0; i < 6; i++) await h.tick(); // the 500 ms window forgets the spare spell
    expect(h.policy.stats.holding).toBe(true);
    h.state.spare = 1.2; // between the thresholds: the hold goes on
    for (let i = 0; i < 6; i++) await h.tick();
    expect(h.policy.stats.holding).toBe(true);
    h.state.spare = 1.8;
    for (let i = 0; i < 6; i++) await h.tick();
    expect(h.policy.stats.holding).toBe(false);
  });

  it('auto never holds where the CPU cannot be read', async () => {
    const h = harness('auto');
    h.state.cpu = null;
    for (let i = 0; i < 3; i++) await h.tick();
    expect(h.policy.stats.holds).toBe(0);
    expect(h.lease()).toBe(0);
  });

  it('renews the lease while a decision waits for the backlog, for at most one lease', async () => {
    const h = harness('always');
    await h.tick();
    let answer!: (bytes: number) => void;
    h.state.backlog = new Promise<number>((resolve) => {
      answer = resolve;
    });
    const pending = h.tick(); // waits for the backlog
    for (let i = 0; i < 5; i++) {
      await h.tick();
      expect(h.lease()).toBe(h.state.now + YIELD_LEASE_MS);
    }
    // Renewed for one lease after the decision started, then left to lapse.
    for (let i = 0; i < 40; i++) await h.tick();
    expect(h.lease()).toBeLessThan(h.state.now);
    answer(100);
    await pending;
    expect(h.policy.stats.holding).toBe(false);
    expect(h.lease()).toBe(0);
  });

  it('lets go when the backlog is unknown or cannot be read', async () => {
    const h = harness('always');
    await h.tick();
    h.state.backlog = new Error('connection lost');
    await h.tick();
    expect(h.policy.stats.holding).toBe(false);
    await h.tick();
    expect(h.policy.stats.holding).toBe(false);
    h.state.backlog = 5 * MiB;
    await h.tick();
    h.state.backlog = null;
    await h.tick();
    expect(h.policy.stats).toMatchObject({ holding: false, holds: 2 });
  });

  it('never: writes nothing; stop lets go of a hold', async () => {
    const never = harness('never');
    never.policy.start();
    never.policy.stop();
    expect(never.lease()).toBe(0);

    const h = harness('always');
    await h.tick();
    expect(h.lease()).toBeGreaterThan(h.state.now);
    h.policy.stop();
    h.policy.stop();
    expect(h.lease()).toBe(0);
    await h.tick(); // a tick after stop does nothing
    expect(h.lease()).toBe(0);
  });

  it('keeps deciding when the lease cannot be written', async () => {
    const h = harness('always');
    rmSync(h.dataDir, { recursive: true });
    writeFileSync(h.dataDir, 'a file where the directory was');
    await h.tick();
    expect(h.policy.stats.holding).toBe(true);
    h.state.backlog = 0;
    await h.tick();
    expect(h.policy.stats.holding).toBe(false);
  });
});

describe.runIf(process.platform === 'linux')('readCpuTimes', () => {
  it('reads the cores and the CPU time of the machine', () => {
    const cpu = readCpuTimes();
    expect(cpu).not.toBeNull();
    expect(cpu!.cores).toBeGreaterThanOrEqual(1);
    expect(cpu!.busy + cpu!.spare).toBeGreaterThan(0);
  });
});
