/**
 * A transactional target on Redis: a transaction collects the batch's commands (`RedisTx`) and
 * commits them with the partition offsets in one Lua script, which Redis runs atomically. The
 * offsets live in one hash per group (`offsetsKey`, field `<topic>/<partition>`).
 *
 * Fencing: the script first compares the stored offsets with those the transaction read before
 * its work. When another owner of a partition committed meanwhile (a replaced replica whose last
 * script still ran), nothing is written and the transaction fails as retryable; its retry reads
 * the new offsets and skips the records already applied.
 *
 * Truncates across partitions: a truncate's record is in one partition, the table's rows in all
 * of them, read by independent replicas; so the script keeps, per table, the LSN of the change
 * that wrote each key and the LSN of the last truncate (a fence), and orders them by LSN (see
 * SCRIPT): as the table sink's `_tributary_lsn` column does.
 *
 * Nothing half-applied: the script checks the type of every key it will write before the first
 * write (a key of another type is the record's fault: `SinkRecordError`), since a Redis script
 * that fails midway keeps the writes before the failure. Keys are not declared to the script:
 * single Redis servers only (not Redis Cluster).
 */
import { Redis } from 'ioredis';
import { partitionKey, TargetError, type TransactionalTarget } from '../../consumers/transactional.ts';
import { TributaryError } from '../../core/errors.ts';
import { SinkRecordError } from '../sink.ts';

/** A change's LSN as the script compares it: 20 decimal digits (text order = LSN order), or ''. */
export function lsnText(lsn: number | null): string {
  return lsn === null ? '' : String(lsn).padStart(20, '0');
}

/**
 * The batch's writes, applied at commit. `table` names the source table's truncate fence (the
 * fixed start of its keys); `lsn` is the change's position (`lsnText`).
 */
export class RedisTx {
  readonly commands: string[] = [];
  #count = 0;

  /** Replaces the hash at `key` with `fields` (a field per non-null column). */
  hash(key: string, fields: readonly [string, string][], table: string, lsn: string): void {
    this.commands.push('hash', key, table, lsn, String(fields.length));
    for (const [f, v] of fields) this.commands.push(f, v);
    this.#count++;
  }

  /** Sets the string at `key`. */
  string(key: string, value: string, table: string, lsn: string): void {
    this.commands.push('string', key, table, lsn, '1', '', value);
    this.#count++;
  }

  delete(key: string, table: string): void {
    this.commands.push('delete', key, table, '', '0');
    this.#count++;
  }

  /**
   * A truncate at `lsn`: deletes the keys matching the glob `pattern` that were written by changes
   * before it (scanning the key space), and raises the table's fence to it.
   */
  truncate(pattern: string, table: string, lsn: string): void {
    this.commands.push('match', pattern, table, lsn, '0');
    this.#count++;
  }

  get count(): number {
    return this.#count;
  }
}

/**
 * KEYS[1] is the offsets hash; beside it `<offsets>:truncates` (table → LSN of its last truncate)
 * and `<offsets>:lsn:<table>` (key → LSN of the change that wrote it). A change at or below its
 * table's fence was made before a truncate already applied (it came through another partition):
 * skipped. A truncate deletes only the keys written below its LSN (or with none recorded).
 */
const SCRIPT = `
local n = tonumber(ARGV[1])
local i = 2
for p = 1, n do
  local stored = redis.call('HGET', KEYS[1], ARGV[i])
  if stored == false then stored = '' end
  if stored ~= ARGV[i + 1] then return redis.error_reply('FENCED ' .. ARGV[i]) end
  i = i + 3
end
local fences = KEYS[1] .. ':truncates'
local m = tonumber(ARGV[i])
local first = i + 1
local j = first
for c = 1, m do
  local op, key, nf = ARGV[j], ARGV[j + 1], tonumber(ARGV[j + 4])
  if op == 'hash' or op == 'string' then
    local t = redis.call('TYPE', key)['ok']
    local want = (op == 'hash') and 'hash' or 'string'
    if t ~= 'none' and t ~= want then return redis.error_reply('KEYTYPE ' .. key .. ' is a ' .. t) end
  end
  j = j + 5 + nf * 2
end
j = first
for c = 1, m do
  local op, key, tbl, lsn, nf = ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3], tonumber(ARGV[j + 4])
  local lsns = KEYS[1] .. ':lsn:' .. tbl
  if op == 'hash' or op == 'string' then
    local fence = redis.call('HGET', fences, tbl)
    if lsn == '' or fence == false or lsn > fence then
      if op == 'hash' then
        redis.call('DEL', key)
        if nf > 0 then redis.call('HSET', key, unpack(ARGV, j + 5, j + 4 + nf * 2)) end
      else
        redis.call('SET', key, ARGV[j + 6])
      end
      if lsn ~= '' then redis.call('HSET', lsns, key, lsn) else redis.call('HDEL', lsns, key) end
    end
  elseif op == 'delete' then
    redis.call('DEL', key)
    redis.call('HDEL', lsns, key)
  elseif op == 'match' then
    local cursor = '0'
    repeat
      local r = redis.call('SCAN', cursor, 'MATCH', key, 'COUNT', 1000)
      cursor = r[1]
      for _, k in ipairs(r[2]) do
        if string.sub(k, 1, #KEYS[1]) ~= KEYS[1] then
          local written = redis.call('HGET', lsns, k)
          if lsn == '' or written == false or written < lsn then
            redis.call('DEL', k)
            redis.call('HDEL', lsns, k)
          end
        end
      end
    until cursor == '0'
    if lsn ~= '' then
      local fence = redis.call('HGET', fences, tbl)
      if fence == false or fence < lsn then redis.call('HSET', fences, tbl, lsn) end
    end
  end
  j = j + 5 + nf * 2
end
i = 2
for p = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
  i = i + 3
end
return m
`;

type ScriptedRedis = Redis & {
  tributaryCommit(key: string, ...args: string[]): Promise<number>;
};

export function redisTarget(url: string, offsetsKey: string): TransactionalTarget<RedisTx> {
  let description = 'redis';
  try {
    const u = new URL(url);
    description = `redis://${u.host}${u.pathname}`;
  } catch {}
  return {
    kind: 'redis',
    description,
    async open() {
      const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2 }) as ScriptedRedis;
      redis.on('error', () => {});
      redis.defineCommand('tributaryCommit', { numberOfKeys: 1, lua: SCRIPT });
      try {
        await redis.connect();
      } catch (error) {
        redis.disconnect();
        throw new TargetError('TARGET_OPEN', `Cannot connect to ${description}`, {
          cause: error,
          retryable: true,
        });
      }
      const field = (topic: string, partition: number) => `${topic}/${partition}`;
      const stored = async (fields: string[]) =>
        fields.length === 0 ? [] : await redis.hmget(offsetsKey, ...fields);
      return {
        async offsets(_group, partitions) {
          const values = await stored(partitions.map((p) => field(p.topic, p.partition)));
          const map = new Map<string, number>();
          partitions.forEach((p, i) => {
            const v = values[i];
            if (v !== null && v !== undefined) map.set(partitionKey(p.topic, p.partition), Number(v));
          });
          return map;
        },
        async transaction(_group, offsets, work) {
          const fields = offsets.map((o) => field(o.topic, o.partition));
          const values = await stored(fields);
          const read = new Map<string, number>();
          offsets.forEach((o, i) => {
            const v = values[i];
            if (v !== null && v !== undefined) read.set(partitionKey(o.topic, o.partition), Number(v));
          });
          const tx = new RedisTx();
          await work(tx, read);
          const args: string[] = [String(offsets.length)];
          offsets.forEach((o, i) => {
            const before = read.get(partitionKey(o.topic, o.partition));
            args.push(fields[i]!, values[i] ?? '', String(Math.max(o.offset, before ?? 0)));
          });
          args.push(String(tx.count), ...tx.commands);
          try {
            await redis.tributaryCommit(offsetsKey, ...args);
          } catch (error) {
            const message = (error as Error).message ?? '';
            if (message.includes('KEYTYPE')) {
              throw new SinkRecordError(`redis key of another type: ${message.replace(/^.*KEYTYPE /, '')}`, {
                cause: error,
                hint: 'the key pattern must not collide with keys of other uses',
              });
            }
            if (message.includes('FENCED')) {
              throw new TargetError(
                'TARGET_FENCED',
                'another replica committed this partition meanwhile; retrying',
                {
                  cause: error,
                  retryable: true,
                },
              );
            }
            throw error instanceof TributaryError
              ? error
              : new TargetError('TARGET_WRITE', `Redis write failed on ${description}`, {
                  cause: error,
                  retryable: true,
                });
          }
        },
        async close() {
          await redis.quit().catch(() => redis.disconnect());
        },
      };
    },
  };
}
