/**
 * Transactional targets: the consumer's writes (through `ctx.tx`) and the partition offsets go
 * into the same database in one transaction, so after any crash the target holds each record's
 * effect exactly once. Offsets live in `tributary_consumer_offsets(group_name, topic, partition,
 * next_offset, updated_at)` in the target; on (re)assignment the worker starts from there.
 *
 * A session is used by one replica. `transaction` calls may overlap (one per lane): PostgreSQL
 * runs them on separate pooled connections; SQLite has one connection and runs them one at a time.
 *
 * Fencing: each transaction first locks the offset rows of its partitions and reads them, so a
 * previous owner of a partition whose transaction is still open (a killed replica whose COMMIT is
 * in flight, a hung replica being replaced, a backend that has not yet noticed its client died)
 * is waited for, and the records it committed meanwhile are skipped instead of applied twice.
 */
import Database from 'better-sqlite3';
import pg from 'pg';
import { TributaryError } from '../core/errors.ts';
import type { PartitionOffset, TopicPartition } from '../core/record.ts';

export const OFFSETS_TABLE = 'tributary_consumer_offsets';

export interface TargetSession<Tx> {
  /** Next offsets stored for the group's partitions (absent when never committed). */
  offsets(group: string, partitions: readonly TopicPartition[]): Promise<Map<string, number>>;
  /**
   * Begins, locks and reads the stored offsets of the partitions in `offsets` (waiting for any
   * other open transaction on them), runs `work` with them (`partitionKey` -> next offset, absent
   * when never committed), writes the offsets (never below the stored ones), commits; rolls back
   * when anything throws.
   */
  transaction(
    group: string,
    offsets: readonly PartitionOffset[],
    work: (tx: Tx, stored: ReadonlyMap<string, number>) => Promise<void>,
  ): Promise<void>;
  /**
   * Sets the stored offsets to these, lower or higher (the `offsetReset` policy for offsets beyond
   * the log); called before any transaction of these partitions runs in this session.
   */
  reset?(group: string, offsets: readonly PartitionOffset[]): Promise<void>;
  close(): Promise<void>;
}

export interface TransactionalTarget<Tx> {
  readonly kind: 'postgres' | 'sqlite' | (string & {});
  /** Where it writes, without credentials (for logs). */
  readonly description: string;
  open(options: { connections: number }): Promise<TargetSession<Tx>>;
}

/** The transactional target failed (connection, constraint, serialization...). */
export class TargetError extends TributaryError {}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}\0${partition}`;
}

/** A PostgreSQL target: `ctx.tx` is a `pg` client inside `BEGIN … COMMIT`. */
export function postgresTarget(url: string): TransactionalTarget<pg.PoolClient> {
  let description = 'postgresql';
  try {
    const u = new URL(url);
    description = `postgresql://${u.host}${u.pathname}`;
  } catch {}
  return {
    kind: 'postgres',
    description,
    async open({ connections }) {
      const pool = new pg.Pool({ connectionString: url, max: Math.max(1, connections) });
      pool.on('error', () => {});
      try {
        await pool.query(
          `create table if not exists ${OFFSETS_TABLE} (
             group_name text not null, topic text not null, partition integer not null,
             next_offset bigint not null, updated_at timestamptz not null default now(),
             primary key (group_name, topic, partition))`,
        );
      } catch (error) {
        // Two replicas creating the table at once: one of them gets a unique violation.
        if ((error as { code?: string }).code !== '23505') {
          await pool.end();
          throw new TargetError('TARGET_OPEN', `Cannot prepare ${OFFSETS_TABLE} in ${description}`, {
            cause: error,
            retryable: true,
          });
        }
      }
      return {
        async offsets(group, partitions) {
          const result = await pool.query<{ topic: string; partition: number; next_offset: string }>(
            `select topic, partition, next_offset from ${OFFSETS_TABLE} where group_name = $1`,
            [group],
          );
          return toOffsetMap(
            partitions,
            result.rows
              .map((r) => ({ topic: r.topic, partition: r.partition, offset: Number(r.next_offset) }))
              .filter((r) => r.offset >= 0),
          );
        },
        async reset(group, offsets) {
          for (const o of offsets) {
            await pool.query(
              `insert into ${OFFSETS_TABLE} (group_name, topic, partition, next_offset) values ($1, $2, $3, $4)
               on conflict (group_name, topic, partition) do update set next_offset = excluded.next_offset, updated_at = now()`,
              [group, o.topic, o.partition, o.offset],
            );
          }
        },
        async transaction(group, offsets, work) {
          const client = await pool.connect();
          let broken = false;
          try {
            // Two round trips of overhead per batch, not one per statement: the fence goes with
            // BEGIN and the offsets with COMMIT, as simple-protocol statements with their values
            // written as escaped literals (a round trip costs more than the statements on a busy
            // machine; see bench/README.md, "Sinks benchmark").
            const sorted = sortOffsets(offsets);
            const stored = new Map<string, number>();
            if (sorted.length === 0) await client.query('begin');
            else {
              // The fence: a row inserted or locked by another open transaction makes these wait
              // for its outcome (in partition order, so two fencing transactions cannot deadlock).
              const g = client.escapeLiteral(group);
              const pairs = sorted.map((o) => `(${client.escapeLiteral(o.topic)}, ${o.partition | 0})`);
              const results = (await client.query(
                `begin;
                 insert into ${OFFSETS_TABLE} (group_name, topic, partition, next_offset)
                 select ${g}, t, p, -1 from (values ${pairs.join(', ')}) u(t, p) on conflict do nothing;
                 select topic, partition, next_offset from ${OFFSETS_TABLE}
                 where group_name = ${g} and (topic, partition) in (values ${pairs.join(', ')})
                 order by topic, partition for update`,
              )) as unknown as pg.QueryResult<{ topic: string; partition: number; next_offset: string }>[];
              for (const r of results[2]!.rows) {
                const offset = Number(r.next_offset);
                if (offset >= 0) stored.set(partitionKey(r.topic, r.partition), offset);
              }
            }
            await work(client, stored);
            const updates = sorted.map((o) => {
              const next = Math.max(o.offset, stored.get(partitionKey(o.topic, o.partition)) ?? 0);
              return `update ${OFFSETS_TABLE} set next_offset = ${Math.trunc(next)}, updated_at = now()
                 where group_name = ${client.escapeLiteral(group)} and topic = ${client.escapeLiteral(o.topic)}
                   and partition = ${o.partition | 0};`;
            });
            await client.query(`${updates.join('\n')} commit`);
          } catch (error) {
            try {
              await client.query('rollback');
            } catch {
              broken = true;
            }
            throw error;
          } finally {
            client.release(broken);
          }
        },
        async close() {
          await pool.end();
        },
      };
    },
  };
}

/** A SQLite target (better-sqlite3): `ctx.tx` is the database inside `BEGIN IMMEDIATE … COMMIT`. */
export function sqliteTarget(file: string): TransactionalTarget<Database.Database> {
  return {
    kind: 'sqlite',
    description: `sqlite:${file}`,
    async open() {
      const db = new Database(file, { timeout: 10_000 });
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 10000');
      db.exec(
        `create table if not exists ${OFFSETS_TABLE} (
           group_name text not null, topic text not null, partition integer not null,
           next_offset integer not null, updated_at integer not null,
           primary key (group_name, topic, partition))`,
      );
      const upsert = db.prepare(
        `insert into ${OFFSETS_TABLE} values (?, ?, ?, ?, ?) on conflict do update set
           next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
      );
      const current = db.prepare(
        `select next_offset as offset from ${OFFSETS_TABLE} where group_name = ? and topic = ? and partition = ?`,
      );
      // One connection: transactions must not interleave, so they queue.
      let queue: Promise<unknown> = Promise.resolve();
      return {
        async offsets(group, partitions) {
          const rows = db
            .prepare(
              `select topic, partition, next_offset as offset from ${OFFSETS_TABLE} where group_name = ?`,
            )
            .all(group) as PartitionOffset[];
          return toOffsetMap(partitions, rows);
        },
        async reset(group, offsets) {
          await queue;
          const now = Date.now();
          db.transaction(() => {
            for (const o of offsets) upsert.run(group, o.topic, o.partition, o.offset, now);
          })();
        },
        transaction(group, offsets, work) {
          const run = async () => {
            // BEGIN IMMEDIATE takes the write lock: another writer's transaction has ended, so the
            // offsets read below are final until this one commits.
            db.exec('begin immediate');
            try {
              const stored = new Map<string, number>();
              for (const o of offsets) {
                const row = current.get(group, o.topic, o.partition) as { offset: number } | undefined;
                if (row !== undefined) stored.set(partitionKey(o.topic, o.partition), row.offset);
              }
              await work(db, stored);
              const now = Date.now();
              for (const o of offsets) {
                const offset = Math.max(o.offset, stored.get(partitionKey(o.topic, o.partition)) ?? 0);
                upsert.run(group, o.topic, o.partition, offset, now);
              }
              db.exec('commit');
            } catch (error) {
              if (db.inTransaction) db.exec('rollback');
              throw error;
            }
          };
          const result = queue.then(run, run);
          queue = result.catch(() => {});
          return result;
        },
        async close() {
          await queue;
          db.close();
        },
      };
    },
  };
}

/** One entry per partition (the highest offset), in (topic, partition) order: the lock order. */
function sortOffsets(offsets: readonly PartitionOffset[]): PartitionOffset[] {
  const byKey = new Map<string, PartitionOffset>();
  for (const o of offsets) {
    const key = partitionKey(o.topic, o.partition);
    const seen = byKey.get(key);
    if (seen === undefined || seen.offset < o.offset) byKey.set(key, o);
  }
  return [...byKey.values()].sort((a, b) =>
    a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1,
  );
}

function toOffsetMap(
  partitions: readonly TopicPartition[],
  rows: readonly PartitionOffset[],
): Map<string, number> {
  const wanted = new Set(partitions.map((p) => partitionKey(p.topic, p.partition)));
  const map = new Map<string, number>();
  for (const r of rows) {
    const key = partitionKey(r.topic, r.partition);
    if (wanted.has(key)) map.set(key, r.offset);
  }
  return map;
}
