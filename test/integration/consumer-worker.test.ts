import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { ENTRY_URL, FakeParent, keyedRecords, launch, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('tributary-worker-');
afterAll(() => dirs.removeAll());

function committed(dataDir: string, group: string): Map<string, number> {
  const store = ConsumerStore.open({ dataDir });
  try {
    return new Map(store.committed(group).map((p) => [`${p.topic}/${p.partition}`, p.offset]));
  } finally {
    store.close();
  }
}

/** Lines `key|seq|partition|offset` written by the test consumers, in handling order. */
function handled(file: string): { key: string; seq: number; partition: number; offset: number }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [key, seq, partition, offset] = line.split('|');
      return { key: key!, seq: Number(seq), partition: Number(partition), offset: Number(offset) };
    });
}

const RECORDING_CONSUMER = (out: string, extra = '') => `
export default defineConsumer<{ id: number; seq: number }>({
  topics: ['t'],
  batch: { maxRecords: 16 },
  concurrency: 4,
  ${extra}
  async handle(batch, ctx) {
    // Different keys overlap in time; one key's batches never do.
    await new Promise((r) => setTimeout(r, Math.random() * 3));
    appendFileSync(${JSON.stringify(out)}, batch.map((r) => r.key + '|' + r.value!.seq + '|' + r.partition + '|' + r.offset + '\\n').join(''));
    ctx.metrics.increment('seen', batch.length);
  },
});`;

describe('consumer worker', () => {
  it('handles a workload in per-key order across key lanes and commits every offset', async () => {
    const dataDir = dirs.make();
    const out = join(dataDir, 'handled.txt');
    const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 2, durable: false });
    await log.append(keyedRecords('t', 1500, 40));
    const module = writeConsumer(dataDir, 'orders', RECORDING_CONSUMER(out));
    const parent = new FakeParent(launch('orders', module, dataDir));
    try {
      const ready = await parent.ready();
      expect(ready.description).toMatchObject({
        topics: ['t'],
        group: 'orders',
        replicas: { min: 1, max: 1 },
      });
      parent.assign([
        { topic: 't', partition: 0 },
        { topic: 't', partition: 1 },
      ]);
      // Records appended while the worker runs are picked up by polling.
      await waitFor(() => handled(out).length >= 1500, '1500 records handled');
      await log.append(keyedRecords('t', 500, 40, 1500));
      const ends = (await log.topics())[0]!.partitions.map((p) => p.endOffset);
      await waitFor(() => {
        const c = committed(dataDir, 'orders');
        return c.get('t/0') === ends[0] && c.get('t/1') === ends[1];
      }, 'offsets committed to the end');
      const rows = handled(out);
      expect(rows).toHaveLength(2000);
      expect(new Set(rows.map((r) => `${r.partition}/${r.offset}`)).size).toBe(2000);
      const lastSeq = new Map<string, number>();
      for (const r of rows) {
        expect(r.seq, `order of key ${r.key}`).toBe((lastSeq.get(r.key) ?? -1) + 1);
        lastSeq.set(r.key, r.seq);
      }
      await waitFor(() => parent.totals.processed === 2000, 'processed counted in heartbeats');
      expect(parent.totals.metrics['seen']).toBe(2000);
      expect(parent.totals.failed).toBe(0);
      const hb = parent.messages.filter((m) => m.type === 'heartbeat');
      expect(hb.length).toBeGreaterThan(1);

      // Revoke drains and answers; nothing more is handled for the revoked partition.
      await parent.revoke([{ topic: 't', partition: 0 }]);
      await log.append(keyedRecords('t', 200, 40, 2000));
      const ends2 = (await log.topics())[0]!.partitions.map((p) => p.endOffset);
      await waitFor(() => committed(dataDir, 'orders').get('t/1') === ends2[1], 'partition 1 continues');
      expect(committed(dataDir, 'orders').get('t/0')).toBe(ends[0]);
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
      await log.close();
    }
  });

  it('scaffolds a consumer with `consumers new` that the worker runs as is', async () => {
    const dataDir = dirs.make();
    const made = await cli(
      ['consumers', 'new', 'order-totals', '--consumers', join(dataDir, 'consumers'), '--topic', 't'],
      {
        cwd: dataDir,
      },
    );
    expect(made.code).toBe(0);
    const file = join(dataDir, 'consumers', 'order-totals', 'index.ts');
    const source = readFileSync(file, 'utf8');
    expect(source).toContain("import { defineConsumer, type Envelope } from 'tributary';");
    // Outside this repository 'tributary' is not installed: point the import at the entry file.
    writeFileSync(file, source.replace("from 'tributary'", `from ${JSON.stringify(ENTRY_URL)}`));
    const again = await cli(['consumers', 'new', 'order-totals', '--consumers', join(dataDir, 'consumers')], {
      cwd: dataDir,
    });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');

    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    await log.append(
      [1, 2, 3].map((id) => ({
        topic: 't',
        key: `{"id":${id}}`,
        value: JSON.stringify({ before: null, after: { id }, op: 'c' }),
        headers: {},
        timestamp: Date.now(),
      })),
    );
    const parent = new FakeParent(launch('order-totals', file, dataDir));
    try {
      expect((await parent.ready()).description.topics).toEqual(['t']);
      parent.assign([{ topic: 't', partition: 0 }]);
      await waitFor(() => parent.totals.metrics['changes'] === 3, 'the scaffolded handler counted 3 changes');
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
      await log.close();
    }
  });

  it('exits when its parent goes away, even while the module is still loading', async () => {
    const dataDir = dirs.make();
    const module = writeConsumer(dataDir, 'orphan', RECORDING_CONSUMER(join(dataDir, 'out.txt')));
    const early = new FakeParent(launch('orphan', module, dataDir));
    early.child.disconnect();
    expect((await early.exited).code).toBe(0);
    const assigned = new FakeParent(launch('orphan', module, dataDir));
    await assigned.ready();
    assigned.assign([{ topic: 't', partition: 0 }]);
    // No log yet (no capture): it still heartbeats and answers a revoke at once.
    await waitFor(() => assigned.messages.some((m) => m.type === 'heartbeat'), 'a heartbeat');
    await assigned.revoke([{ topic: 't', partition: 0 }]);
    assigned.child.disconnect();
    expect((await assigned.exited).code).toBe(0);
  });

  it('reports a bad definition as fatal, naming the folder and the field, and exits non-zero', async () => {
    const dataDir = dirs.make();
    const module = writeConsumer(
      dataDir,
      'broken',
      `export default defineConsumer({ topics: ['t'], batch: { maxRecords: 0 }, async handle() {} });`,
    );
    const parent = new FakeParent(launch('broken', module, dataDir));
    const { code } = await parent.exited;
    expect(code).not.toBe(0);
    const fatal = parent.messages.find((m) => m.type === 'fatal');
    expect(fatal?.type === 'fatal' && fatal.message).toMatch(
      /consumer "broken" \(.*broken\/index\.ts\): batch\.maxRecords must be/,
    );
  });
});
