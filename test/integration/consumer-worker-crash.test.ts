import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { postgresTarget } from '../../src/consumers/transactional.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { captureConfig, recordCount, runCapture, tempDirs, waitFor } from '../support/capture-harness.ts';
import { createDatabase } from '../support/databases.ts';
import { FakeParent, keyedRecords, launch, writeConsumer } from './consumer-worker-support.ts';

/** What the worker is doing, for a timeout's message: heartbeat, exit, last output. */
function replicaState(p: FakeParent): string {
  const hb = p.messages.filter((m) => m.type === 'heartbeat').at(-1);
  const state =
    hb?.type === 'heartbeat'
      ? `in flight ${hb.inFlight}, last progress ${Date.now() - hb.lastProgressAt} ms ago`
      : 'no heartbeat';
  return `replica: ${state}, exit ${p.child.exitCode}\nstdout: ${p.stdout.slice(-2000)}\nstderr: ${p.stderr.slice(-1000)}`;
}

const dirs = tempDirs('tributary-worker-crash-');
afterAll(() => dirs.removeAll());

const BOTH = [
  { topic: 't', partition: 0 },
  { topic: 't', partition: 1 },
];

function lines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
}

/** Runs replicas one after the other, killing each with SIGKILL once `progress()` moved by a random amount. */
async function killRepeatedly(
  kills: number,
  start: () => FakeParent,
  progress: () => Promise<number> | number,
): Promise<void> {
  for (let i = 0; i < kills; i++) {
    const parent = start();
    try {
      await parent.ready();
      const before = await progress();
      const step = 30 + Math.floor(Math.random() * 150);
      await waitFor(
        async () => (await progress()) >= before + step,
        `progress of ${step} before kill ${i + 1}`,
      );
      // A random moment inside the next batches, not only at a batch boundary.
      await new Promise((r) => setTimeout(r, Math.random() * 15));
    } finally {
      await parent.kill9();
    }
  }
}

describe('consumer worker under kill -9', () => {
  it('loses nothing (at least once) and keeps per-key order of first handling', async () => {
    const dataDir = dirs.make();
    const out = join(dataDir, 'handled.txt');
    const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 2, durable: false });
    const total = 3000;
    const module = writeConsumer(
      dataDir,
      'audit',
      `export default defineConsumer<{ id: number; seq: number }>({
  topics: ['t'],
  batch: { maxRecords: 10 },
  concurrency: 3,
  async handle(batch) {
    await new Promise((r) => setTimeout(r, 1 + Math.random() * 2));
    appendFileSync(${JSON.stringify(out)}, batch.map((r) => r.key + '|' + r.value!.seq + '|' + r.partition + '|' + r.offset + '\\n').join(''));
  },
});`,
    );
    // The capture side keeps appending while replicas die.
    let appended = 0;
    const writer = (async () => {
      while (appended < total) {
        await log.append(keyedRecords('t', 50, 30, appended));
        appended += 50;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const start = () => {
      const p = new FakeParent(launch('audit', module, dataDir));
      p.assign(BOTH);
      return p;
    };
    await killRepeatedly(5, start, () => lines(out).length);
    await writer;
    const last = start();
    try {
      await last.ready();
      const ends = (await log.topics())[0]!.partitions.map((p) => p.endOffset);
      await waitFor(() => {
        const store = ConsumerStore.open({ dataDir });
        try {
          const c = store.committed('audit');
          return (
            c.find((p) => p.partition === 0)?.offset === ends[0] &&
            c.find((p) => p.partition === 1)?.offset === ends[1]
          );
        } finally {
          store.close();
        }
      }, 'every offset committed');
      expect(await last.stop()).toBe(0);
    } finally {
      last.child.kill('SIGKILL');
      await log.close();
    }
    const rows = lines(out).map((l) => l.split('|'));
    const first = new Map<string, string[]>();
    for (const r of rows) if (!first.has(`${r[2]}/${r[3]}`)) first.set(`${r[2]}/${r[3]}`, r);
    expect(first.size).toBe(total);
    const lastSeq = new Map<string, number>();
    for (const [key, seq] of first.values()) {
      expect(Number(seq), `first handling order of key ${key}`).toBe((lastSeq.get(key!) ?? -1) + 1);
      lastSeq.set(key!, Number(seq));
    }
  });

  it('transactional into SQLite: the sink holds every record exactly once across kills', async () => {
    const dataDir = dirs.make();
    const sinkFile = join(dataDir, 'sink.db');
    const sink = new Database(sinkFile);
    sink.pragma('journal_mode = WAL');
    sink.exec('create table applied (part integer, off integer, k text, seq integer)');
    const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 2, durable: false });
    const total = 2000;
    await log.append(keyedRecords('t', total, 25));
    const module = writeConsumer(
      dataDir,
      'ledger',
      `export default defineConsumer({
  topics: ['t'],
  batch: { maxRecords: 15 },
  concurrency: 2,
  transactional: sqliteTarget(${JSON.stringify(sinkFile)}),
  async handle(batch, ctx) {
    const insert = ctx.tx.prepare('insert into applied values (?, ?, ?, ?)');
    for (const r of batch) insert.run(r.partition, r.offset, r.key, r.value.seq);
    await new Promise((r) => setTimeout(r, 1));
  },
});`,
    );
    const start = () => {
      const p = new FakeParent(launch('ledger', module, dataDir));
      p.assign(BOTH);
      return p;
    };
    const count = () => (sink.prepare('select count(*) as n from applied').get() as { n: number }).n;
    try {
      await killRepeatedly(4, start, count);
      const last = start();
      try {
        await waitFor(() => count() >= total, 'every record applied');
        expect(await last.stop()).toBe(0);
      } finally {
        last.child.kill('SIGKILL');
      }
      expect(count()).toBe(total);
      expect(
        sink.prepare('select count(*) as n from (select distinct part, off from applied)').get(),
      ).toEqual({ n: total });
      const offsets = sink
        .prepare('select partition, next_offset from tributary_consumer_offsets order by 1')
        .all();
      const ends = (await log.topics())[0]!.partitions.map((p) => p.endOffset);
      expect(offsets).toEqual(ends.map((end, partition) => ({ partition, next_offset: end })));
    } finally {
      sink.close();
      await log.close();
    }
  });

  it('transactional into PostgreSQL from a real capture: the sink table ends identical to the source, no duplicates', async () => {
    const db = await createDatabase(18, 'consumer_tx');
    const dataDir = dirs.make();
    await db.query('create table src (id int primary key, v int not null)');
    const capture = await runCapture(
      captureConfig(db.url, dataDir, {
        topicPrefix: 'sink',
        'log.partitions': 2,
        'source.tables': 'public.src',
      }),
    );
    try {
      await db.query(`
        create table dst (id int primary key, v int not null);
        create table applied (part int not null, off bigint not null);`);
      const module = writeConsumer(
        dataDir,
        'mirror',
        `export default defineConsumer({
  topics: ['sink.public.src'],
  batch: { maxRecords: 20 },
  concurrency: 2,
  transactional: postgresTarget(${JSON.stringify(db.url)}),
  async handle(batch, ctx) {
    for (const r of batch) {
      if (r.value === null) continue;
      const e = r.value;
      if (e.op === 'd') await ctx.tx.query('delete from dst where id = $1', [e.before.id]);
      else await ctx.tx.query('insert into dst values ($1, $2) on conflict (id) do update set v = excluded.v', [e.after.id, e.after.v]);
      await ctx.tx.query('insert into applied values ($1, $2)', [r.partition, r.offset]);
    }
  },
});`,
      );
      // Workload: inserts, updates and deletes while replicas are killed.
      let done = false;
      const workload = (async () => {
        for (let i = 0; i < 120; i++) {
          await db.query(
            `begin;
             insert into src select g, 0 from generate_series(${i * 10 + 1}, ${i * 10 + 10}) g;
             update src set v = v + 1 where id % 7 = ${i % 7};
             delete from src where id = ${Math.max(1, i * 10 - 5)};
             commit;`,
          );
          await new Promise((r) => setTimeout(r, 10));
        }
        done = true;
      })();
      const assignment = [
        { topic: 'sink.public.src', partition: 0 },
        { topic: 'sink.public.src', partition: 1 },
      ];
      const start = () => {
        const p = new FakeParent(launch('mirror', module, dataDir));
        p.assign(assignment);
        return p;
      };
      const applied = async () => Number((await db.query('select count(*) as n from applied')).rows[0]!.n);
      await killRepeatedly(4, start, applied);
      await workload;
      expect(done).toBe(true);
      const last = start();
      try {
        const diff = async () =>
          Number(
            (
              await db.query(
                'select count(*) as n from ((select * from src except select * from dst) union all (select * from dst except select * from src)) d',
              )
            ).rows[0]!.n,
          );
        await waitFor(
          async () => {
            if (last.child.exitCode !== null)
              throw new Error(`the replica exited: ${last.stderr}${last.stdout}`);
            return (await diff()) === 0 && (await applied()) > 1000;
          },
          'sink identical to source',
          90_000,
        ).catch(async (error: Error) => {
          const offsets = (await db.query('select partition, next_offset from tributary_consumer_offsets'))
            .rows;
          const ends = (await capture.log.topics()).flatMap((t) => t.partitions.map((p) => p.endOffset));
          const sessions = (
            await db.query(
              `select state, wait_event_type, wait_event, left(query, 60) as query, now() - xact_start as xact_age
               from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
            )
          ).rows;
          throw new Error(
            `${error.message}; diff ${await diff()}, applied ${await applied()}, log ends ${JSON.stringify(ends)}, target offsets ${JSON.stringify(offsets)}\nsessions ${JSON.stringify(sessions)}\n${replicaState(last)}`,
          );
        });
        const records = await recordCount(capture.log, 'sink.public.src');
        const tombstones = 120;
        await waitFor(async () => (await applied()) === records - tombstones, 'every change applied');
        expect(await last.stop()).toBe(0);
      } finally {
        last.child.kill('SIGKILL');
      }
      const dups = await db.query('select part, off from applied group by 1, 2 having count(*) > 1');
      expect(dups.rows).toEqual([]);
      expect(Number((await db.query('select count(*) as n from src')).rows[0]!.n)).toBeGreaterThan(1000);
    } finally {
      await capture.stop();
      await db.drop();
    }
  }, 240_000); // slack for slow CI machines: five replica start-ups and a 90 s final wait

  it("transactional into PostgreSQL: a replica taking over waits for the previous owner's open transaction and skips what it committed", async () => {
    const db = await createDatabase(18, 'consumer_fence');
    const dataDir = dirs.make();
    const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 1, durable: false });
    await log.append(keyedRecords('t', 100, 10));
    await db.query('create table applied (part int not null, off bigint not null)');
    // The previous owner: its transaction applied offsets 0-39 and is still open (a replica whose
    // COMMIT is in flight, or a hung one being replaced) when the next replica reads the offsets.
    const previous = await postgresTarget(db.url).open({ connections: 1 });
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    let entered!: () => void;
    const holding = new Promise<void>((r) => {
      entered = r;
    });
    const owner = previous.transaction('fenced', [{ topic: 't', partition: 0, offset: 40 }], async (tx) => {
      await tx.query('insert into applied select 0, g from generate_series(0, 39) g');
      entered();
      await released;
    });
    await holding;
    const module = writeConsumer(
      dataDir,
      'fenced',
      `export default defineConsumer({
  topics: ['t'],
  batch: { maxRecords: 100 },
  concurrency: 1,
  transactional: postgresTarget(${JSON.stringify(db.url)}),
  async handle(batch, ctx) {
    for (const r of batch) await ctx.tx.query('insert into applied values ($1, $2)', [r.partition, r.offset]);
  },
});`,
    );
    const replica = new FakeParent(launch('fenced', module, dataDir));
    try {
      replica.assign([{ topic: 't', partition: 0 }]);
      // Its first batch (from offset 0: nothing committed yet) is in its transaction, waiting.
      await waitFor(
        () => replica.messages.some((m) => m.type === 'heartbeat' && m.inFlight > 0),
        `a batch in flight\n${replicaState(replica)}`,
      );
      release();
      await owner;
      const count = async () => Number((await db.query('select count(*) as n from applied')).rows[0]!.n);
      await waitFor(
        async () =>
          Number(
            (await db.query("select next_offset from tributary_consumer_offsets where group_name = 'fenced'"))
              .rows[0]?.next_offset ?? 0,
          ) === 100,
        `offset 100 committed\n${replicaState(replica)}`,
      );
      expect(await replica.stop()).toBe(0);
      expect(await count()).toBe(100);
      const dups = await db.query('select off from applied group by off having count(*) > 1');
      expect(dups.rows).toEqual([]);
      expect(replica.stdout).toContain('the target already holds records of this batch');
    } finally {
      release();
      replica.child.kill('SIGKILL');
      await previous.close();
      await log.close();
      await db.drop();
    }
  });
});
