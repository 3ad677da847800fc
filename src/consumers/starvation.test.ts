import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { StarvationProbe } from './starvation.ts';

describe('StarvationProbe', () => {
  it('measures the share of an interval spent waiting for a CPU', () => {
    let text = '5000000 1000000 10\n';
    const probe = new StarvationProbe(42, () => text);
    expect(probe.waitShare(1000)).toBeUndefined();
    text = '5000000 801000000 12\n'; // 800 ms of waiting in 1 s
    expect(probe.waitShare(2000)).toBeCloseTo(0.8);
    text = '900000000 851000000 99\n'; // 50 ms of waiting in 1 s: running or sleeping
    expect(probe.sample(3000)).toBe(false);
    text = '900000000 1451000000 99\n';
    expect(probe.sample(4000)).toBe(true);
    expect(probe.starved).toBe(true);
  });

  it('says nothing without the kernel figures', () => {
    const probe = new StarvationProbe(42, () => {
      throw new Error('ENOENT');
    });
    expect(probe.waitShare(1)).toBeUndefined();
    expect(probe.sample(2)).toBe(false);
    expect(new StarvationProbe(undefined).sample(1)).toBe(false);
  });

  it.runIf(process.platform === 'linux')('sees a sleeping process as not starved', async () => {
    const child = spawn('sleep', ['5']);
    try {
      const probe = new StarvationProbe(child.pid);
      expect(probe.waitShare(Date.now())).toBeUndefined();
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(probe.waitShare(Date.now())).toBeLessThan(0.5);
    } finally {
      child.kill();
    }
  });
});
