import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { afterAll } from 'vitest';
import { redisSinkKind } from '../../src/sinks/redis/redis-sink.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { sinkConformance } from './sink-conformance.ts';

const redis = new Redis('redis://127.0.0.1:6379/0');
const prefixes: string[] = [];
afterAll(async () => {
  for (const p of prefixes) {
    const keys = await redis.keys(`${p}*`);
    if (keys.length > 0) await redis.del(...keys);
  }
  redis.disconnect();
});

sinkConformance('redis', async () => {
  const prefix = `conformance-${randomBytes(4).toString('hex')}:`;
  prefixes.push(prefix);
  const env = { name: 'items-cache', dataDir: tmpdir(), topicPrefix: 'shop', format: 'debezium' as const };
  const sink = (await redisSinkKind.create(
    { key: `${prefix}items:{id}`, offsetsKey: `${prefix}offsets` },
    env,
  )) as Sink<unknown>;
  return {
    sink,
    async rows() {
      const keys = (await redis.keys(`${prefix}items:*`)).sort();
      const rows = new Map();
      for (const key of keys) {
        const h = await redis.hgetall(key);
        rows.set(key.slice(`${prefix}items:`.length), {
          name: h.name ?? null,
          qty: h.qty ?? null,
          big: h.big ?? null,
          price: h.price ?? null,
        });
      }
      return rows;
    },
    close: async () => {},
  };
});
