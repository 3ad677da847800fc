import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredRecord } from '../core/record.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { consumerLag } from './consumer-lag.ts';
import { ConsumerStore } from './consumer-store.ts';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function open(now = () => 1_000) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-store-'));
  const store = ConsumerStore.open({ dataDir, clock: now });
  cleanups.push(
    () => rmSync(dataDir, { recursive: true, force: true }),
    () => store.close(),
  );
  return { dataDir, store };
}

const record: StoredRecord = {
  topic: 't',
  partition: 1,
  offset: 7,
  key: '{"id":1}',
  value: '{"x":1}',
  headers: { h: 'v' },
  timestamp: 5,
};

describe('ConsumerStore', () => {
  it('moves offsets forward only, unless forced', () => {
    const { store } = open();
    store.commit('g', [{ topic: 't', partition: 0, offset: 10 }]);
    store.commit('g', [{ topic: 't', partition: 0, offset: 4 }]);
    expect(store.committed('g')).toEqual([{ topic: 't', partition: 0, offset: 10 }]);
    store.commit('g', [{ topic: 't', partition: 0, offset: 4 }], { force: true });
    expect(store.committed('g')).toEqual([{ topic: 't', partition: 0, offset: 4 }]);
    expect(store.committed('other')).toEqual([]);
    expect(store.groups()).toEqual(['g']);
  });

  it('keeps one pending dead letter per origin, resolves it once, records who and when', () => {
    let now = 1_000;
    const { store } = open(() => now);
    const letter = {
      consumer: 'c',
      group: 'g',
      record,
      error: 'boom',
      stack: 'Error: boom',
      attempts: 3,
      firstFailedAt: 900,
      failedAt: 950,
    };
    const id = store.addDeadLetter(letter)!;
    expect(store.addDeadLetter(letter)).toBeUndefined();
    expect(store.countPending('c')).toBe(1);
    expect(store.deadLetter('c', id)).toMatchObject({
      topic: 't',
      partition: 1,
      offset: 7,
      headers: { h: 'v' },
      status: 'pending',
      attempts: 3,
    });
    store.recordFailure(id, 'again', undefined);
    expect(store.deadLetter('c', id)).toMatchObject({ error: 'again', attempts: 4, stack: null });
    now = 2_000;
    expect(store.resolve(id, 'discarded', 'alice', 'not needed')).toBe(true);
    expect(store.resolve(id, 'replayed', 'bob')).toBe(false);
    expect(store.deadLetter('c', id)).toMatchObject({
      status: 'discarded',
      resolvedBy: 'alice',
      resolvedAt: 2_000,
      note: 'not needed',
    });
    // Resolved: the same origin may fail again later (a new dead letter).
    const second = store.addDeadLetter(letter)!;
    expect(second).toBeGreaterThan(id);
    expect(store.deadLetters('c', { status: 'pending' }).map((l) => l.id)).toEqual([second]);
  });

  it('computes lag in records and seconds from the committed offsets', async () => {
    const { dataDir, store } = open();
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    cleanups.push(() => log.close());
    await log.append(
      [10_000, 20_000, 30_000].map((timestamp) => ({
        topic: 't',
        key: null,
        value: '{}',
        headers: {},
        timestamp,
      })),
    );
    expect(await consumerLag(log, store, 'g', ['t'], 50_000)).toEqual([
      { topic: 't', partition: 0, committed: 0, endOffset: 3, records: 3, seconds: 40 },
    ]);
    store.commit('g', [{ topic: 't', partition: 0, offset: 2 }]);
    expect((await consumerLag(log, store, 'g', ['t'], 50_000))[0]).toMatchObject({ records: 1, seconds: 20 });
    store.commit('g', [{ topic: 't', partition: 0, offset: 3 }]);
    expect((await consumerLag(log, store, 'g', ['t', 'none'], 50_000))[0]).toMatchObject({
      records: 0,
      seconds: 0,
    });
  });
});
