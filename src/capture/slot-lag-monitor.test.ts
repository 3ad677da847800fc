import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { SlotState } from '../source/postgres/source-catalog.ts';
import { SlotLagMonitor } from './slot-lag-monitor.ts';

function recorder() {
  const lines: { level: number; msg: string; lagBytes?: number }[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { lines, logger };
}

const state = (lagBytes: number): SlotState => ({
  serverLsn: 0n,
  confirmedFlushLsn: 0n,
  lagBytes,
  retainedBytes: lagBytes + 10,
  walStatus: 'reserved',
  active: true,
});

describe('SlotLagMonitor', () => {
  it('warns once when the lag crosses the threshold and informs once when it is back under', () => {
    const { lines, logger } = recorder();
    const monitor = new SlotLagMonitor('s', 1000, logger);
    for (const lag of [10, 1001, 5000, 2000, 1000, 0, 20, 3000]) monitor.observe(state(lag));
    expect(lines.map((l) => [l.level, l.lagBytes])).toEqual([
      [40, 1001],
      [30, 1000],
      [40, 3000],
    ]);
    expect(lines[0]!.msg).toContain('slot s lags by');
    expect(monitor.isLagging).toBe(true);
  });

  it('stays quiet when disabled or when the slot state is unknown', () => {
    const { lines, logger } = recorder();
    new SlotLagMonitor('s', 0, logger).observe(state(1e12));
    new SlotLagMonitor('s', 1, logger).observe(null);
    expect(lines).toEqual([]);
  });
});
