import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { consumerLogFile } from '../../src/consumers/consumer-logs.ts';
import type { Supervisor } from '../../src/consumers/supervisor.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { startSupervisor } from '../fixtures/consumers/supervisor-fixtures.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';

const CONSUMERS = fileURLToPath(new URL('../../consumers', import.meta.url));
const dirs = tempDirs('supervisor-example-');
let supervisor: Supervisor | undefined;
afterEach(async () => {
  await supervisor?.stop(10_000);
  supervisor = undefined;
  dirs.removeAll();
});

function change(op: 'c' | 'u', id: number, status: string, total: string) {
  const row = { id, customer_id: 1, total_amount: total, status };
  return {
    topic: 'tributary.public.orders',
    key: JSON.stringify({ id }),
    value: JSON.stringify({ before: null, after: row, source: {}, op, ts_ms: 0, transaction: null }),
    headers: {},
    timestamp: Date.now(),
  };
}

describe('the example consumer (consumers/order-totals, run by `tributary up`)', () => {
  it('is discovered from the repository and totals the demo orders per status', async () => {
    const dataDir = dirs.make();
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    // 150 orders created pending at 10.00, then 50 of them paid at 20.00: 200 changes.
    await log.append([
      ...Array.from({ length: 150 }, (_, i) => change('c', i + 1, 'pending', '10.00')),
      ...Array.from({ length: 50 }, (_, i) => change('u', i + 1, 'paid', '20.00')),
    ]);
    await log.close();
    supervisor = await startSupervisor({ dataDir, consumersDir: CONSUMERS, watch: false });
    expect(supervisor.names).toContain('order-totals');
    const file = consumerLogFile(dataDir, 'order-totals');
    const summary = await waitFor(() => {
      try {
        return readFileSync(file, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { msg: string; totals?: unknown })
          .find((e) => e.msg === 'order totals');
      } catch {
        return undefined;
      }
    }, 'the summary line');
    expect(summary.totals).toEqual({
      pending: { orders: 100, revenue: '1000.00' },
      paid: { orders: 50, revenue: '1000.00' },
    });
    await waitFor(() => supervisor!.api.status('order-totals')?.lag.records === 0, 'caught up');
  });
});
