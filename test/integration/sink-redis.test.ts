import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import { daysToDate, microsToTimestamp } from '../../src/sinks/table/table-values.ts';
import { type CanonicalRow, dirs, isoToMicros, sinkOracle } from './sink-oracle-support.ts';

const redis = new Redis('redis://127.0.0.1:6379/0');
const prefix = `sink-oracle-${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  const keys = await redis.keys(`${prefix}:*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
  dirs.removeAll();
});

describe('redis sink oracle (tributary run, random workload, kill -9 of replicas)', () => {
  it('keeps one hash per source row, equal to the source row for row', async () => {
    await sinkOracle({
      name: 'items-redis',
      seed: 56,
      sink: () => ({
        kind: 'redis',
        tables: ['public.items'],
        key: `${prefix}:items:{id}`,
        offsetsKey: `${prefix}:offsets`,
      }),
      offset: async () => {
        const values = await redis.hvals(`${prefix}:offsets`);
        return Math.max(0, ...values.map(Number));
      },
      read: async () => {
        const keys = await redis.keys(`${prefix}:items:*`);
        const rows: CanonicalRow[] = [];
        for (const key of keys) {
          const h = await redis.hgetall(key);
          const v = (c: string) => h[c] ?? null;
          rows.push({
            id: v('id'),
            name: v('name'),
            qty: v('qty'),
            big: v('big'),
            price: v('price'),
            created: h.created === undefined ? null : microsToTimestamp(BigInt(h.created), 'created'),
            updated: h.updated === undefined ? null : isoToMicros(h.updated),
            doc: v('doc'),
            flag: v('flag'),
            day: h.day === undefined ? null : daysToDate(BigInt(h.day), 'day'),
            note: v('note'),
          });
        }
        return rows.sort((a, b) => Number(a.id) - Number(b.id));
      },
    });
  });
});
