import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { LazyClient } from '../../src/source/postgres/lazy-client.ts';
import { captureConfig, quietLogger, recordCount, tempDirs, waitFor } from '../support/capture-harness.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

/**
 * Issue 11 item 12: `pg` warned "Calling client.query() when the client is already executing a
 * query is deprecated" under `up`: the capture's side connection was shared by independent tasks
 * (heartbeat timer, status poll, consumer-yield backlog, the stream's catalog look-ups) that sent
 * statements on it at the same time. The real driver runs here; only its `query` is watched, to
 * count the statements in flight on each connection at once.
 */

interface Overlap {
  readonly application: string;
  readonly running: string;
  readonly asked: string;
}

const overlaps: Overlap[] = [];
const warnings: Error[] = [];
const inFlight = new WeakMap<pg.Client, string>();
const originalQuery = pg.Client.prototype.query;

function sqlOf(args: unknown[]): string {
  const first = args[0] as string | { text?: string } | undefined;
  const text = typeof first === 'string' ? first : (first?.text ?? '(stream)');
  return text.replace(/\s+/g, ' ').slice(0, 80);
}

function watchQueries(): void {
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const sql = sqlOf(args);
    const running = inFlight.get(this);
    const application = (this as unknown as { connectionParameters: { application_name?: string } })
      .connectionParameters.application_name;
    // The replication connection carries one endless statement (the stream) and nothing else.
    if (running !== undefined) overlaps.push({ application: application ?? '?', running, asked: sql });
    inFlight.set(this, sql);
    const result = (originalQuery as (...a: unknown[]) => unknown).apply(this, args);
    const done = () => {
      if (inFlight.get(this) === sql) inFlight.delete(this);
    };
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<unknown>).then(done, done);
    }
    return result;
  } as typeof pg.Client.prototype.query;
}

const onWarning = (warning: Error) => {
  if (warning.name === 'DeprecationWarning') warnings.push(warning);
};

describe('one statement at a time on a shared connection (PostgreSQL 18)', () => {
  let db: TestDatabase;
  const dirs = tempDirs();

  beforeAll(async () => {
    db = await createDatabase(18, 'shared');
  });
  afterAll(async () => {
    await db?.drop();
    dirs.removeAll();
  });
  beforeEach(() => {
    overlaps.length = 0;
    warnings.length = 0;
    watchQueries();
    process.on('warning', onWarning);
  });
  afterEach(() => {
    pg.Client.prototype.query = originalQuery;
    process.off('warning', onWarning);
  });

  it('LazyClient runs overlapping calls one at a time, in the order asked, past a failure', async () => {
    const client = new LazyClient({ connectionString: db.url, application_name: 'lazy-test' });
    try {
      const order: number[] = [];
      const calls = Array.from({ length: 30 }, (_, i) => {
        if (i === 13)
          return client.query('select no_such_column').then(
            () => 'resolved',
            () => 'failed',
          );
        if (i % 3 === 0) {
          // Two statements that must not be split by another's.
          return client.use(async (c) => {
            await c.query('select pg_sleep(0.002)');
            const r = await c.query<{ i: number }>('select $1::int as i', [i]);
            order.push(r.rows[0]!.i);
            return r.rows[0]!.i;
          });
        }
        return client.query<{ i: number }>('select $1::int as i', [i]).then((r) => {
          order.push(r.rows[0]!.i);
          return r.rows[0]!.i;
        });
      });
      const results = await Promise.all(calls);
      expect(results[13]).toBe('failed');
      expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i !== 13));
      // Work holding the connection that asks for it again is refused, not left to wait for itself.
      await expect(client.use(() => client.query('select 1'))).rejects.toMatchObject({
        code: 'CONNECTION_REENTRANT',
      });
      expect((await client.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    } finally {
      await client.close();
    }
    expect(overlaps).toEqual([]);
    expect(warnings.map((w) => w.message)).toEqual([]);
  });

  it('close() fails the statements still waiting instead of opening a connection for them', async () => {
    const client = new LazyClient({ connectionString: db.url, application_name: 'lazy-close' });
    const sessions = async () =>
      Number(
        (
          await db.query<{ n: string }>(
            "select count(*) as n from pg_stat_activity where application_name = 'lazy-close'",
          )
        ).rows[0]!.n,
      );
    try {
      const running = client.query('select pg_sleep(1)');
      const waiting = [client.query('select 1'), client.use((c) => c.query('select 2'))];
      await waitFor(async () => (await sessions()) === 1, 'the first statement running');
      await client.close();
      await expect(running).rejects.toThrow();
      for (const statement of waiting) {
        await expect(statement).rejects.toMatchObject({ code: 'SOURCE_CONNECTION', retryable: true });
      }
      // Asked for after the close: a new connection.
      expect((await client.query<{ two: number }>('select 2 as two')).rows).toEqual([{ two: 2 }]);
    } finally {
      await client.close();
    }
    await waitFor(async () => (await sessions()) === 0, 'no session left');
  });

  it("a busy capture's side connections never run two statements at once", async () => {
    await db.query(`
      create table docs (id int primary key, body text, n int);
      alter table docs alter column body set storage external;
      alter table docs replica identity full;
      insert into docs select g, repeat(md5(g::text), 200), 0 from generate_series(1, 200) g;
    `);
    const dataDir = dirs.make();
    const config = captureConfig(db.url, dataDir, {
      topicPrefix: 'sc',
      // Every task that shares the catalog connection, as often as it can run.
      'source.heartbeatIntervalMs': 1,
      'toast.fetch': true,
      'consumers.yieldToCapture': 'always',
    });
    let running: RunningCapture | undefined;
    try {
      running = await startCapture(config, { logger: quietLogger, statusIntervalMs: 1 });
      const capture = running;
      // Changes that need catalog look-ups (new tables: Relation messages, REPLICA IDENTITY FULL)
      // and TOAST fetches, while the status poll, heartbeats and the API's calls run beside them.
      let asking = true;
      const api = (async () => {
        while (asking) {
          await Promise.all([
            capture.source.serverLsn(),
            capture.source.slotState(),
            capture.source.database(),
          ]);
        }
      })();
      for (let round = 1; round <= 20; round++) {
        await db.query(
          `create table t${round} (id int primary key, v text); alter table t${round} replica identity full`,
        );
        await db.query(`insert into t${round} select g, 'v' from generate_series(1, 5) g`);
        await db.query(`update docs set n = ${round} where id % 20 = ${round % 20}`);
      }
      await waitFor(
        async () => (await recordCount(capture.log, 'sc.public.t20')) >= 5,
        'the last table captured',
      );
      asking = false;
      await api;
      expect(capture.source.stats.heartbeats).toBeGreaterThan(0);
    } finally {
      await running?.stop();
    }
    expect(overlaps).toEqual([]);
    expect(warnings.map((w) => w.message)).toEqual([]);
  });
});
