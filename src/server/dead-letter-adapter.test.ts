import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsumerStore } from '../consumers/consumer-store.ts';
import { deadLetterControl, storeLetters } from './dead-letter-adapter.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'dead-letter-adapter-'));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

/** 3,000 pending dead letters over two consumers (interleaved), 300 of them resolved. */
function fill(store: ConsumerStore): void {
  for (let offset = 0; offset < 3000; offset++) {
    const consumer = offset % 3 === 0 ? 'audit' : 'orders';
    const id = store.addDeadLetter({
      consumer,
      group: consumer,
      record: { topic: 't', partition: 0, offset, key: `k${offset}`, value: '{}', headers: {}, timestamp: 0 },
      error: `bad ${offset}`,
      stack: undefined,
      attempts: 1,
      firstFailedAt: offset,
      failedAt: offset,
    });
    if (offset % 10 === 0) store.resolve(id!, 'discarded', 'test');
  }
}

describe('the dead letters of the API', () => {
  const store = ConsumerStore.open({ dataDir });
  fill(store);
  // Watches how many dead letters each store call hands back: a page must not load them all.
  let largest = 0;
  const watched = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        const rows = Array.isArray(result) ? result : (result as { items?: unknown[] } | undefined)?.items;
        if (Array.isArray(rows)) largest = Math.max(largest, rows.length);
        return result;
      };
    },
  });
  const control = deadLetterControl({
    letters: storeLetters(watched),
    consumers: () => ['orders', 'audit'],
    dataDir,
    consumersDir: dataDir,
  });
  const oracle = new Database(join(dataDir, 'consumers.db'), { readonly: true });
  const expected = (consumers: string[], limit: number, offset: number) => ({
    total: (
      oracle
        .prepare(
          `select count(*) as n from dead_letters where status = 'pending' and consumer in (${consumers.map(() => '?').join(',')})`,
        )
        .get(...consumers) as { n: number }
    ).n,
    ids: (
      oracle
        .prepare(
          `select id from dead_letters where status = 'pending' and consumer in (${consumers.map(() => '?').join(',')}) order by id desc limit ? offset ?`,
        )
        .all(...consumers, limit, offset) as { id: number }[]
    ).map((r) => String(r.id)),
  });
  afterAll(() => {
    oracle.close();
    store.close();
  });

  it('pages newest first from storage, over every consumer or one, reading only the page', async () => {
    for (const [consumer, limit, offset] of [
      [undefined, 50, 0],
      [undefined, 50, 2650],
      [undefined, 100, 2690],
      ['orders', 25, 1000],
      ['audit', 50, 880],
      ['nope', 50, 0],
    ] as const) {
      largest = 0;
      const page = await control.list({ ...(consumer ? { consumer } : {}), limit, offset });
      const want = expected(consumer ? [consumer] : ['orders', 'audit'], limit, offset);
      expect(page.total).toBe(want.total);
      expect(page.items.map((d) => d.id)).toEqual(want.ids);
      expect(largest).toBeLessThanOrEqual(limit);
    }
    expect(expected(['orders', 'audit'], 1, 0).total).toBe(2700);
    expect((await control.list({ limit: 100, offset: 2690 })).items).toHaveLength(10);
  });
});
