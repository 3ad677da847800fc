/**
 * The `redis` sink: one Redis hash (or JSON string) per source row, under a key built from a
 * pattern (`shop:orders:{id}`), removed when the row is deleted.
 *
 * Guarantees:
 * - Exactly-once effect: the batch's writes and the partition offsets commit in one Lua script
 *   (see `redis-target.ts`), which also fences a stale replica. After kill -9 at any instant the
 *   keys hold each change once; a retried batch writes the same values.
 * - A key holds the row after the last change of its source key: the hash is replaced whole (a
 *   column that became NULL loses its field); a delete removes the key; a truncate removes every
 *   key of the table's pattern written by a change before it (a SCAN of the key space inside the
 *   script: rare and slow on a big database), and changes made before it that arrive later
 *   through another partition are skipped (LSN order, kept beside the offsets: redis-target.ts).
 *   Changes are coalesced by key within a batch.
 * - Values are text, exactly as in the record (docs/types.md): numbers with all their digits
 *   (int8 beyond 2^53 too), numeric as its decimal text, timestamps as epoch microseconds,
 *   booleans `true`/`false`, JSON as its text. `format: json` stores the row as one JSON object
 *   (big integers as JSON numbers with all their digits).
 * - A key of another type in the way is a dead letter naming the key; nothing of the batch is written.
 */
import { Redis } from 'ioredis';
import { z } from 'zod';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { ConfigError } from '../../core/errors.ts';
import { type Sink, type SinkKind, SinkRecordError } from '../sink.ts';
import { exactJson, type Row, rowChange, UNAVAILABLE } from '../sink-records.ts';
import { lsnText, type RedisTx, redisTarget } from './redis-target.ts';

const REDIS_OPTIONS = z
  .object({
    url: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// URL')
      .optional()
      .describe('Redis server and database, e.g. `redis://127.0.0.1:6379/0` (the default).'),
    key: z
      .string()
      .regex(/\{[^}]+\}/, 'must name at least one key column, e.g. shop:orders:{id}')
      .optional()
      .describe(
        "Key pattern: `{column}` is a key column's value, `{schema}` and `{table}` the source table. Default `{table}:{id}`-like: `<sink name>:{table}:` then the key columns joined by `:`.",
      ),
    keys: z
      .record(z.string(), z.string().regex(/\{[^}]+\}/))
      .optional()
      .describe('Key pattern per source table (`schema.table` → pattern), overriding `key`.'),
    format: z
      .enum(['hash', 'json'])
      .optional()
      .describe('`hash` (default): one field per non-null column; `json`: the row as one JSON string.'),
    columns: z
      .record(z.string(), z.array(z.string().min(1)).min(1))
      .optional()
      .describe('Columns to keep per source table (`schema.table` → list; default all).'),
    offsetsKey: z
      .string()
      .min(1)
      .optional()
      .describe('Hash holding the partition offsets (default `tributary:offsets:<sink name>`).'),
  })
  .strict();

type RedisOptions = z.infer<typeof REDIS_OPTIONS>;

export const redisSinkKind: SinkKind<RedisOptions> = {
  kind: 'redis',
  description: 'one Redis hash or JSON string per row under a key pattern, exactly once',
  options: REDIS_OPTIONS,
  async check(options, env) {
    const url = options.url ?? 'redis://127.0.0.1:6379/0';
    const redis = new Redis(url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      connectTimeout: 3000,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      await redis.ping();
    } catch (error) {
      throw new ConfigError(
        `sinks.${env.name}.url: cannot connect to Redis at ${redisTarget(url, '').description}: ${(error as Error).message}`,
        {
          hint: 'check that Redis runs and the URL (redis://host:port/db)',
          cause: error,
        },
      );
    } finally {
      redis.disconnect();
    }
  },
  create(options, env) {
    const url = options.url ?? 'redis://127.0.0.1:6379/0';
    const target = redisTarget(url, options.offsetsKey ?? `tributary:offsets:${env.name}`);
    const sink: Sink<RedisTx> = {
      target,
      async write(batch, tx) {
        plan(batch, options, env.name, tx);
      },
    };
    return sink as Sink<unknown>;
  },
};

/** Coalesces the batch per key (a truncate drops the earlier changes of its table) into `tx`. */
function plan(
  batch: readonly ConsumerRecord<unknown>[],
  options: RedisOptions,
  sink: string,
  tx: RedisTx,
): void {
  const truncates = new Map<string, { prefix: string; lsn: string }>();
  /** Key → the row after the batch (null: deleted), its table's prefix and the change's LSN. */
  const last = new Map<string, { row: Row | null; prefix: string; lsn: string }>();
  for (const record of batch) {
    const change = rowChange(record);
    if (!change) continue;
    const pattern = options.keys?.[change.table] ?? options.key ?? `${sink}:{table}:{*}`;
    const [schema, table] = splitTable(change.table);
    const prefix = patternPrefix(pattern, schema, table);
    const lsn = lsnText(change.lsn);
    if (change.op === 'truncate') {
      const glob = `${prefix.replace(/[*?[\]\\]/g, (c) => `\\${c}`)}*`;
      for (const key of [...last.keys()]) if (key.startsWith(prefix)) last.delete(key);
      truncates.set(glob, { prefix, lsn });
      continue;
    }
    const key = fill(pattern, schema, table, change.key, change.table);
    if (change.op === 'delete') {
      last.set(key, { row: null, prefix, lsn });
      continue;
    }
    const keep = options.columns?.[change.table];
    const row: Row = {};
    for (const [c, v] of Object.entries(change.row)) {
      if (keep && !keep.includes(c) && !(c in change.key)) continue;
      row[c] = v === UNAVAILABLE ? (last.get(key)?.row?.[c] ?? v) : v;
    }
    last.set(key, { row, prefix, lsn });
  }
  for (const [glob, t] of truncates) tx.truncate(glob, t.prefix, t.lsn);
  for (const [key, { row, prefix, lsn }] of last) {
    if (row === null) tx.delete(key, prefix);
    else if (options.format === 'json') tx.string(key, exactJson(row), prefix, lsn);
    else {
      const fields: [string, string][] = [];
      for (const [c, v] of Object.entries(row)) if (v !== null && v !== undefined) fields.push([c, text(v)]);
      tx.hash(key, fields, prefix, lsn);
    }
  }
}

function splitTable(table: string): [string, string] {
  const dot = table.indexOf('.');
  return [table.slice(0, dot), table.slice(dot + 1)];
}

/** The fixed start of the table's keys: the pattern up to its first key column. */
function patternPrefix(pattern: string, schema: string, table: string): string {
  const first = /\{(?!schema\}|table\})[^}]+\}/.exec(pattern);
  return fill(first ? pattern.slice(0, first.index) : pattern, schema, table, {}, '');
}

/**
 * The pattern with its placeholders filled. `{*}` is every key column joined by `:`; with more
 * than one (a composite key), `\` and `:` inside a value are escaped (`\\`, `\:`), so two keys
 * never give the same Redis key. A pattern naming key columns must name all of them (rows that
 * differ only in a left-out column would share one Redis key) and only them.
 */
function fill(pattern: string, schema: string, table: string, key: Row, source: string): string {
  const named = new Set<string>();
  const filled = pattern.replace(/\{([^}]+)\}/g, (_m, name: string) => {
    if (name === 'schema') return schema;
    if (name === 'table') return table;
    const values = Object.values(key);
    if (name === '*') {
      for (const c of Object.keys(key)) named.add(c);
      return values.length > 1
        ? values.map((v) => text(v).replace(/[\\:]/g, (c) => `\\${c}`)).join(':')
        : values.map(text).join(':');
    }
    if (!(name in key)) {
      throw new SinkRecordError(
        `${source}: the key pattern ${pattern} names {${name}}, not a key column (the key: ${Object.keys(key).join(', ') || 'none'})`,
        { hint: "name the table's primary key columns in the pattern, or use {*} for all of them" },
      );
    }
    named.add(name);
    return text(key[name]);
  });
  const left = Object.keys(key).filter((c) => !named.has(c));
  if (source !== '' && left.length > 0) {
    throw new SinkRecordError(
      `${source}: the key pattern ${pattern} leaves out the key column ${left.join(', ')}: rows would share a Redis key`,
      { hint: `add {${left[0]}} to the pattern, or use {*} for every key column` },
    );
  }
  return filled;
}

function text(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null) return exactJson(value);
  return String(value);
}
