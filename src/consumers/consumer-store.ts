/**
 * Consumer state beside the event log: committed offsets per group and the dead letters, in
 * `<dataDir>/consumers.db` (SQLite, WAL). The log has one writer (the capture); this database has
 * many (every replica, the CLI), so each write is one short transaction and every connection
 * waits on a lock (`busy_timeout`) instead of failing.
 *
 * Offsets are "next offset to read" per (group, topic, partition); `commit` only moves a position
 * forward unless `force` is given (a stale replica never rewinds the group).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { TributaryError } from '../core/errors.ts';
import type { PartitionOffset, StoredRecord } from '../core/record.ts';

/** Attempts to open the store while other processes create it (SQLITE_BUSY), 20 ms more apart each time. */
const OPEN_ATTEMPTS = 10;

export type DeadLetterStatus = 'pending' | 'replayed' | 'discarded';

export interface DeadLetter {
  readonly id: number;
  readonly consumer: string;
  readonly group: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly value: string | null;
  readonly headers: Readonly<{ [name: string]: string }>;
  readonly timestamp: number;
  readonly error: string;
  readonly stack: string | null;
  readonly attempts: number;
  readonly firstFailedAt: number;
  readonly failedAt: number;
  readonly status: DeadLetterStatus;
  readonly resolvedBy: string | null;
  readonly resolvedAt: number | null;
  readonly note: string | null;
}

export interface NewDeadLetter {
  readonly consumer: string;
  readonly group: string;
  readonly record: StoredRecord;
  readonly error: string;
  readonly stack: string | undefined;
  readonly attempts: number;
  readonly firstFailedAt: number;
  readonly failedAt: number;
}

/** The consumer store could not be opened or written. */
export class ConsumerStoreError extends TributaryError {}

const SCHEMA = `
create table if not exists offsets (
  group_name text not null, topic text not null, partition integer not null,
  next_offset integer not null, updated_at integer not null,
  primary key (group_name, topic, partition)
) without rowid;
create table if not exists dead_letters (
  id integer primary key autoincrement,
  consumer text not null, group_name text not null, topic text not null, partition integer not null,
  "offset" integer not null, key text, value text, headers text, timestamp integer not null,
  error text not null, stack text, attempts integer not null,
  first_failed_at integer not null, failed_at integer not null,
  status text not null default 'pending' check (status in ('pending', 'replayed', 'discarded')),
  resolved_by text, resolved_at integer, note text
);
create unique index if not exists dead_letters_pending_origin
  on dead_letters (group_name, topic, partition, "offset") where status = 'pending';
create index if not exists dead_letters_consumer on dead_letters (consumer, status, id);
`;

/** The store's file in the data directory. */
export const CONSUMER_STORE_FILE = 'consumers.db';

export class ConsumerStore {
  readonly file: string;
  readonly #db: Database.Database;
  readonly #clock: () => number;
  readonly #commit: Database.Statement;
  readonly #forceCommit: Database.Statement;
  readonly #committed: Database.Statement;
  #closed = false;

  private constructor(db: Database.Database, file: string, clock: () => number) {
    this.#db = db;
    this.file = file;
    this.#clock = clock;
    this.#commit = db.prepare(
      `insert into offsets values (?, ?, ?, ?, ?) on conflict do update set
         next_offset = max(next_offset, excluded.next_offset), updated_at = excluded.updated_at`,
    );
    this.#forceCommit = db.prepare(
      `insert into offsets values (?, ?, ?, ?, ?) on conflict do update set
         next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
    );
    this.#committed = db.prepare(
      'select topic, partition, next_offset as offset from offsets where group_name = ? order by topic, partition',
    );
  }

  /** Opens (creating if needed) `consumers.db` in the data directory. */
  static open(options: { dataDir: string; clock?: () => number }): ConsumerStore {
    const file = join(options.dataDir, CONSUMER_STORE_FILE);
    for (let attempt = 1; ; attempt++) {
      let db: Database.Database | undefined;
      try {
        mkdirSync(options.dataDir, { recursive: true });
        db = new Database(file, { timeout: 10_000 });
        db.pragma('journal_mode = WAL');
        db.pragma('synchronous = NORMAL');
        db.pragma('busy_timeout = 10000');
        db.exec(SCHEMA);
        return new ConsumerStore(db, file, options.clock ?? Date.now);
      } catch (error) {
        db?.close();
        // Replicas that start together may all create the store at once; SQLite answers some of
        // them busy without waiting (switching to WAL, a schema read turned into a write).
        const code = String((error as { code?: unknown }).code ?? '');
        if (attempt < OPEN_ATTEMPTS && /^SQLITE_(BUSY|LOCKED)/.test(code)) {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20 * attempt);
          continue;
        }
        throw new ConsumerStoreError(
          'CONSUMER_STORE_OPEN',
          `Cannot open the consumer store ${file}: ${error instanceof Error ? error.message : String(error)}`,
          {
            cause: error,
            retryable: true,
            hint: 'check that the data directory is writable and on a local disk',
          },
        );
      }
    }
  }

  /** Stores next offsets; a position never moves back unless `force` (e.g. a reset by the user). */
  commit(group: string, positions: readonly PartitionOffset[], options: { force?: boolean } = {}): void {
    if (positions.length === 0) return;
    const statement = options.force ? this.#forceCommit : this.#commit;
    const now = this.#clock();
    this.#run('commit offsets', () =>
      this.#db.transaction(() => {
        for (const p of positions) statement.run(group, p.topic, p.partition, p.offset, now);
      })(),
    );
  }

  committed(group: string): readonly PartitionOffset[] {
    return this.#run('read offsets', () => this.#committed.all(group) as PartitionOffset[]);
  }

  /** Groups with committed offsets. */
  groups(): readonly string[] {
    return this.#run('list groups', () =>
      (
        this.#db.prepare('select distinct group_name as g from offsets order by 1').all() as { g: string }[]
      ).map((r) => r.g),
    );
  }

  /** Adds a pending dead letter; a second one for the same origin while one is pending is ignored. */
  addDeadLetter(letter: NewDeadLetter): number | undefined {
    const r = letter.record;
    return this.#run('add a dead letter', () => {
      const result = this.#db
        .prepare(
          `insert or ignore into dead_letters (consumer, group_name, topic, partition, "offset", key, value,
             headers, timestamp, error, stack, attempts, first_failed_at, failed_at)
           values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          letter.consumer,
          letter.group,
          r.topic,
          r.partition,
          r.offset,
          r.key,
          r.value,
          JSON.stringify(r.headers),
          r.timestamp,
          letter.error,
          letter.stack ?? null,
          letter.attempts,
          letter.firstFailedAt,
          letter.failedAt,
        );
      return result.changes === 1 ? Number(result.lastInsertRowid) : undefined;
    });
  }

  /** In id order; `limit`/`offset` page through them (see `countDeadLetters` for the total). */
  deadLetters(
    consumer: string,
    options: { status?: DeadLetterStatus; ids?: readonly number[]; limit?: number; offset?: number } = {},
  ): DeadLetter[] {
    const { where, params } = deadLetterFilter(consumer, options);
    const page = options.limit === undefined ? '' : ` limit ${options.limit} offset ${options.offset ?? 0}`;
    return this.#run('read dead letters', () =>
      (
        this.#db
          .prepare(`select * from dead_letters where ${where} order by id${page}`)
          .all(...params) as DeadLetterRow[]
      ).map(toDeadLetter),
    );
  }

  /**
   * One page of the dead letters of several consumers, newest first, read from storage (`limit`
   * rows, not all of them), with the number of all that match.
   */
  deadLetterPage(
    consumers: readonly string[],
    options: { status?: DeadLetterStatus; limit: number; offset: number },
  ): { total: number; items: DeadLetter[] } {
    if (consumers.length === 0) return { total: 0, items: [] };
    const where = [`consumer in (${consumers.map(() => '?').join(',')})`];
    const params: unknown[] = [...consumers];
    if (options.status) {
      where.push('status = ?');
      params.push(options.status);
    }
    const filter = where.join(' and ');
    return this.#run('read dead letters', () =>
      this.#db.transaction(() => ({
        total: (
          this.#db.prepare(`select count(*) as n from dead_letters where ${filter}`).get(...params) as {
            n: number;
          }
        ).n,
        items: (
          this.#db
            .prepare(`select * from dead_letters where ${filter} order by id desc limit ? offset ?`)
            .all(...params, options.limit, options.offset) as DeadLetterRow[]
        ).map(toDeadLetter),
      }))(),
    );
  }

  /** Whether the consumer has any dead letter (any status). */
  hasDeadLetters(consumer: string): boolean {
    return this.#run(
      'read dead letters',
      () =>
        this.#db.prepare('select 1 from dead_letters where consumer = ? limit 1').get(consumer) !== undefined,
    );
  }

  countDeadLetters(consumer: string, options: { status?: DeadLetterStatus } = {}): number {
    const { where, params } = deadLetterFilter(consumer, options);
    return this.#run(
      'count dead letters',
      () =>
        (
          this.#db.prepare(`select count(*) as n from dead_letters where ${where}`).get(...params) as {
            n: number;
          }
        ).n,
    );
  }

  /**
   * Offsets of a partition at or after `from` that the group already dead-lettered (any status):
   * records above the committed offset when a replica stopped (lanes finish out of order), which
   * the next owner must not handle a second time.
   */
  deadLetteredOffsets(group: string, topic: string, partition: number, from: number): Set<number> {
    return this.#run('read dead-lettered offsets', () => {
      const rows = this.#db
        .prepare(
          `select "offset" as o from dead_letters where group_name = ? and topic = ? and partition = ? and "offset" >= ?`,
        )
        .all(group, topic, partition, from) as { o: number }[];
      return new Set(rows.map((r) => r.o));
    });
  }

  deadLetter(consumer: string, id: number): DeadLetter | undefined {
    return this.deadLetters(consumer, { ids: [id] })[0];
  }

  /** Resolves a pending dead letter; false when it was not pending (already resolved). */
  resolve(id: number, status: 'replayed' | 'discarded', by: string, note?: string): boolean {
    return this.#run(
      'resolve a dead letter',
      () =>
        this.#db
          .prepare(
            `update dead_letters set status = ?, resolved_by = ?, resolved_at = ?, note = coalesce(?, note)
             where id = ? and status = 'pending'`,
          )
          .run(status, by, this.#clock(), note ?? null, id).changes === 1,
    );
  }

  /** Records why a replay failed, keeping the dead letter pending. */
  recordFailure(id: number, error: string, stack: string | undefined): void {
    this.#run('update a dead letter', () =>
      this.#db
        .prepare(
          `update dead_letters set error = ?, stack = ?, attempts = attempts + 1, failed_at = ? where id = ?`,
        )
        .run(error, stack ?? null, this.#clock(), id),
    );
  }

  countPending(consumer: string): number {
    return this.#run(
      'count dead letters',
      () =>
        (
          this.#db
            .prepare(`select count(*) as n from dead_letters where consumer = ? and status = 'pending'`)
            .get(consumer) as { n: number }
        ).n,
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #run<T>(action: string, work: () => T): T {
    if (this.#closed)
      throw new ConsumerStoreError('CONSUMER_STORE_CLOSED', `Cannot ${action}: ${this.file} is closed`);
    try {
      return work();
    } catch (error) {
      if (error instanceof TributaryError) throw error;
      throw new ConsumerStoreError('CONSUMER_STORE_FAILED', `Cannot ${action} in ${this.file}`, {
        cause: error,
        retryable: (error as { code?: string }).code === 'SQLITE_BUSY',
      });
    }
  }
}

interface DeadLetterRow {
  id: number;
  consumer: string;
  group_name: string;
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  headers: string | null;
  timestamp: number;
  error: string;
  stack: string | null;
  attempts: number;
  first_failed_at: number;
  failed_at: number;
  status: DeadLetterStatus;
  resolved_by: string | null;
  resolved_at: number | null;
  note: string | null;
}

function toDeadLetter(row: DeadLetterRow): DeadLetter {
  return {
    id: row.id,
    consumer: row.consumer,
    group: row.group_name,
    topic: row.topic,
    partition: row.partition,
    offset: row.offset,
    key: row.key,
    value: row.value,
    headers: row.headers ? JSON.parse(row.headers) : {},
    timestamp: row.timestamp,
    error: row.error,
    stack: row.stack,
    attempts: row.attempts,
    firstFailedAt: row.first_failed_at,
    failedAt: row.failed_at,
    status: row.status,
    resolvedBy: row.resolved_by,
    resolvedAt: row.resolved_at,
    note: row.note,
  };
}

/** A dead letter as the stored record it came from. */
export function deadLetterRecord(letter: DeadLetter): StoredRecord {
  return {
    topic: letter.topic,
    partition: letter.partition,
    offset: letter.offset,
    key: letter.key,
    value: letter.value,
    headers: letter.headers,
    timestamp: letter.timestamp,
  };
}

function deadLetterFilter(
  consumer: string,
  options: { status?: DeadLetterStatus; ids?: readonly number[] },
): { where: string; params: unknown[] } {
  const where = ['consumer = ?'];
  const params: unknown[] = [consumer];
  if (options.status) {
    where.push('status = ?');
    params.push(options.status);
  }
  if (options.ids) {
    where.push(`id in (${options.ids.map(() => '?').join(',') || 'null'})`);
    params.push(...options.ids);
  }
  return { where: where.join(' and '), params };
}
