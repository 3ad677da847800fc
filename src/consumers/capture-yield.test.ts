import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readYieldLease, writeYieldLease, YIELD_FILE, YieldGate } from './capture-yield.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dataDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'tributary-gate-'));
  dirs.push(d);
  return d;
}

describe('YieldGate', () => {
  it('holds until the lease runs out, and no longer once it is let go', () => {
    const dir = dataDir();
    let now = 5_000;
    const gate = new YieldGate(dir, { clock: () => now, recheckMs: 20 });
    expect(gate.holding()).toBe(false); // no file: read as usual
    writeYieldLease(dir, now + 500);
    now += 20;
    expect(gate.holding()).toBe(true);
    now += 479;
    expect(gate.holding()).toBe(true);
    // A capture that died without letting go: the lease lapses by itself.
    now += 1;
    expect(gate.holding()).toBe(false);
    writeYieldLease(dir, now + 500);
    now += 20;
    expect(gate.holding()).toBe(true);
    writeYieldLease(dir, 0);
    now += 20;
    expect(gate.holding()).toBe(false);
  });

  it('reads the file at most once per recheck interval', () => {
    const dir = dataDir();
    let now = 5_000;
    const gate = new YieldGate(dir, { clock: () => now, recheckMs: 20 });
    expect(gate.holding()).toBe(false);
    writeYieldLease(dir, now + 500);
    now += 19;
    expect(gate.holding()).toBe(false); // the previous answer, 19 ms old
    now += 1;
    expect(gate.holding()).toBe(true);
  });

  it('takes an empty or garbled file for no lease', () => {
    const dir = dataDir();
    writeFileSync(join(dir, YIELD_FILE), '');
    expect(readYieldLease(dir)).toBe(0);
    writeFileSync(join(dir, YIELD_FILE), 'soon');
    expect(readYieldLease(dir)).toBe(0);
    expect(new YieldGate(dir).holding()).toBe(false);
  });
});
