import { describe, expect, it } from 'vitest';
import { snapshotLine, snapshotProgressText, snapshotReport } from './snapshot-command.ts';

const running = {
  table: 'public.orders',
  kind: 'initial' as const,
  condition: null,
  state: 'running' as const,
  rows: 12_000,
  totalRows: 50_000,
  rowsPerSecond: 8000,
  etaSeconds: 75,
};

describe('snapshot progress text', () => {
  it('shows rows of the total, rate and ETA of running jobs only', () => {
    expect(snapshotLine(running)).toBe(
      'public.orders initial running · 12,000/50,000 rows (24%) · 8,000 rows/s · ETA 1m15s',
    );
    expect(snapshotProgressText([running, { ...running, table: 'public.x', state: 'done' }])).toBe(
      `snapshot ${snapshotLine(running)}`,
    );
    expect(snapshotProgressText([{ ...running, state: 'done' }])).toBeNull();
  });

  it('reports what a stopped capture still owes from the stored position', () => {
    const report = snapshotReport(
      [{ ...running, state: 'running' }],
      [
        {
          id: 'j',
          schema: 'public',
          table: 'orders',
          kind: 'initial',
          condition: null,
          cursor: { after: ['12000'] },
          rows: 12_000,
        },
      ],
      false,
    );
    expect(report).toEqual([
      expect.objectContaining({ table: 'public.orders', state: 'queued', rows: 12_000 }),
    ]);
  });
});
