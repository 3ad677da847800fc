import { describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { captureConfig, envelope, readTopic, runCapture, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { Churn, replay, sameState, snapshotBed, tableState } from './snapshot-support.ts';

describe.each(PG_VERSIONS)('initial snapshot on PostgreSQL %i', (version) => {
  const { dirs, captures, churns, database } = snapshotBed(
    version,
    'snap',
    `create table nokey (a int, b text);
      alter table nokey replica identity full;
      insert into nokey select g, 'x' || g from generate_series(1, 250) g;
      analyze items;`,
  );

  it.each(['blocks', 'key'] as const)(
    'emits the existing rows as reads, then streams; racing writes converge to the table (%s chunks)',
    async (chunks) => {
      const db = await database(4000);
      const churn = new Churn(db.url, 'items', 4400);
      churns.push(churn);
      churn.start();
      const running = await runCapture(
        captureConfig(db.url, dirs.make(), {
          'source.slot': db.name,
          topicPrefix: 'snap',
          'snapshot.chunkRows': 100,
          'snapshot.maxParallelChunks': 3,
          'snapshot.initialChunks': chunks,
        }),
      );
      captures.push(running);
      const during = churn.changes;
      await waitFor(
        () => running.snapshots.status().every((job) => job.state === 'done'),
        'the snapshot to finish',
      );
      const raced = churn.changes - during;
      await churn.stop();
      await db.query(`insert into items values (5000, 1, 'after the snapshot')`);

      const topic = 'snap.public.items';
      const expected = await tableState(db.query, 'items');
      await waitFor(
        async () => sameState(replay(await readTopic(running.log, topic)), expected),
        'the replayed topic to equal the table',
      );
      expect(raced).toBeGreaterThan(0);
      const records = await readTopic(running.log, topic);
      const reads = records.filter((r) => r.value !== null && envelope(r).op === 'r');
      // How many rows come as reads, and how many as changes streamed while the snapshot ran,
      // depends on the machine's speed; the replay above equals the table either way.
      expect(reads.length).toBeGreaterThan(0);
      expect(reads.length).toBeLessThanOrEqual(4400);
      expect(new Set(reads.map((r) => r.key)).size).toBe(reads.length);
      // Three chunks are read at a time, and still reach the log in chunk order: key order for
      // keyset chunks. Block ranges follow the heap, where the churn's updates move rows.
      if (chunks === 'key') {
        const ids = reads.map((r) => envelope(r).after!.id as number);
        expect(ids).toEqual([...ids].sort((a, b) => a - b));
      }
      // No overlap: a key the stream already carried gets no read event afterwards.
      const streamed = new Set<string | null>();
      for (const r of records) {
        if (r.value === null) continue;
        if (envelope(r).op === 'r') expect(streamed.has(r.key), `read after change of ${r.key}`).toBe(false);
        else streamed.add(r.key);
      }
      const markers = reads.map((r) => envelope(r).source.snapshot);
      // `last` marks the final chunk's last row; the churn may have changed all of that chunk's
      // rows (they then come as changes only), so here it is at most one, on the last read.
      expect(markers.filter((m) => m === 'last').length).toBeLessThanOrEqual(1);
      expect(markers.slice(0, -1)).not.toContain('last');
      expect(new Set(markers).has('true')).toBe(true);
      // Streaming went on after the snapshot: the last record is the insert made after it.
      expect(envelope(records[records.length - 1]!)).toMatchObject({ op: 'c', after: { id: 5000 } });

      // A table without a key is read by CTID ranges.
      const nokey = await readTopic(running.log, 'snap.public.nokey');
      expect(nokey.map((r) => envelope(r).op)).toEqual(Array(250).fill('r'));
      expect(new Set(nokey.map((r) => envelope(r).after!.a)).size).toBe(250);
      // Block ranges read in parallel, in block order: the insertion order of a fresh table.
      const as = nokey.map((r) => envelope(r).after!.a as number);
      expect(as).toEqual([...as].sort((a, b) => a - b));

      const status = running.snapshots.status().find((j) => j.table === 'public.items')!;
      expect(status).toMatchObject({ kind: 'initial', state: 'done', totalRows: 4000 });
      expect(status.rows).toBe(reads.length);
    },
  );
});

describe.each(PG_VERSIONS)('block ranges of a partitioned table on PostgreSQL %i', (version) => {
  const { dirs, captures, database } = snapshotBed(version, 'snapparts');

  it('reads every partition whole when the publication publishes the partitioned table', async () => {
    const db = await database(0);
    // Partitions of unequal size, each much larger than one chunk's block range.
    await db.query(`
      create table readings (id int primary key, at int not null, pad text) partition by range (id);
      create table readings_a partition of readings for values from (1) to (3001);
      create table readings_b partition of readings for values from (3001) to (100001);
      insert into readings select g, g % 60, md5(g::text) from generate_series(1, 9000) g;
      analyze readings;
      create publication parts for table readings with (publish_via_partition_root = true);
    `);
    const running = await runCapture(
      captureConfig(db.url, dirs.make(), {
        'source.slot': db.name,
        'source.publication': 'parts',
        topicPrefix: 'parts',
        'snapshot.chunkRows': 200,
      }),
    );
    captures.push(running);
    await waitFor(
      () => running.snapshots.status().every((job) => job.state === 'done'),
      'the snapshot to finish',
    );
    const records = await readTopic(running.log, 'parts.public.readings');
    const ids = records.map((r) => envelope(r).after!.id as number);
    expect(new Set(ids).size).toBe(9000);
    expect(records.every((r) => envelope(r).op === 'r')).toBe(true);
  });
});

describe.each(PG_VERSIONS)('backfills and snapshot modes on PostgreSQL %i', (version) => {
  const { dirs, captures, churns, database } = snapshotBed(version, 'backfill');

  async function start(db: TestDatabase, dir: string, settings: Record<string, unknown>) {
    const running = await runCapture(
      captureConfig(db.url, dir, { 'source.slot': db.name, topicPrefix: 'bf', ...settings }),
    );
    captures.push(running);
    return running;
  }

  it('backfills through the CLI and the signal table while rows being backfilled change', async () => {
    const db = await database(4000);
    const running = await start(db, dirs.make(), {
      'snapshot.mode': 'never',
      'snapshot.chunkRows': 100,
    });
    const topic = 'bf.public.items';
    // Bad requests name what is wrong and insert nothing.
    const missing = await cli(['snapshot', 'public.nope', '--source', db.url]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('SNAPSHOT_TABLE_MISSING');
    expect(missing.stderr).toContain('public.nope does not exist');
    const bad = await cli(['snapshot', 'public.items', '--where', 'no_such_column > 1', '--source', db.url]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('SNAPSHOT_CONDITION_INVALID');
    expect(bad.stderr).toContain('no_such_column');

    const churn = new Churn(db.url, 'items', 3000);
    churns.push(churn);
    churn.start();
    const requested = await cli(['snapshot', 'public.items', '--where', 'id <= 3000', '--source', db.url]);
    expect(requested.code, requested.stderr).toBe(0);
    expect(requested.stdout).toContain('created the signal table public.tributary_signal');
    expect(requested.stdout).toContain('requested a snapshot of public.items where id <= 3000');
    await waitFor(
      () => running.snapshots.status().some((j) => j.kind === 'backfill' && j.state === 'done'),
      'the backfill to finish',
    );
    await churn.stop();
    expect(churn.changes).toBeGreaterThan(0);
    const inRange = await tableState(db.query, '(select * from items where id <= 3000) as');
    await waitFor(
      async () => sameState(replay(await readTopic(running.log, topic)), inRange),
      'the replayed topic to equal the backfilled rows',
    );
    const reads = (await readTopic(running.log, topic)).filter(
      (r) => r.value !== null && envelope(r).op === 'r',
    );
    expect(reads.length).toBeGreaterThan(1000);
    expect(new Set(reads.map((r) => envelope(r).source.snapshot))).toEqual(new Set(['incremental']));

    // A signal inserted directly, Debezium style.
    await db.query(
      `insert into tributary_signal values ('manual-1', 'execute-snapshot', '{"data-collections": ["public.items"], "additional-condition": "id > 3500"}')`,
    );
    const expected = await tableState(db.query, '(select * from items where id <= 3000 or id > 3500) as');
    await waitFor(
      async () => sameState(replay(await readTopic(running.log, topic)), expected),
      'the second backfill',
    );
    // The signal table's own changes are not written to the log.
    expect((await running.log.topics()).map((t) => t.topic)).not.toContain('bf.public.tributary_signal');
  });

  it('with a table list, the signal table is added to the publication and stays there', async () => {
    const db = await database(50);
    const dir = dirs.make();
    const settings = { 'snapshot.mode': 'never', 'source.tables': ['public.items'] };
    let running = await start(db, dir, settings);
    const requested = await cli(['snapshot', 'public.items', '--where', 'id <= 10', '--source', db.url]);
    expect(requested.code, requested.stderr).toBe(0);
    expect(requested.stdout).toContain('added public.tributary_signal to publication tributary');
    const reads = async (log: RunningCapture['log']) => (await readTopic(log, 'bf.public.items')).length;
    await waitFor(async () => (await reads(running.log)) === 10, 'the first backfill');
    await running.stop();
    // A restart sets the publication to the table list again: the signal table must stay in it.
    running = await start(db, dir, settings);
    await db.query(
      `insert into tributary_signal values ('again', 'execute-snapshot', '{"data-collections": ["public.items"], "additional-condition": "id > 40"}')`,
    );
    await waitFor(async () => (await reads(running.log)) === 20, 'the second backfill');
  });

  it('modes: never, initial, always, initial_only', async () => {
    const db = await database(300);
    const dir = dirs.make();
    const topic = 'bf.public.items';
    const ops = async (log: RunningCapture['log']) =>
      (await readTopic(log, topic)).map((r) => (r.value === null ? 'tombstone' : envelope(r).op));

    // never: only changes from now on.
    let running = await start(db, dir, { 'snapshot.mode': 'never' });
    await db.query(`insert into items values (301, 1, 'x')`);
    await waitFor(async () => (await ops(running.log)).length === 1, 'the insert');
    expect(await ops(running.log)).toEqual(['c']);
    await running.stop();

    // initial: a position exists already, so no snapshot on this start.
    running = await start(db, dir, { 'snapshot.mode': 'initial' });
    await db.query(`insert into items values (302, 1, 'y')`);
    await waitFor(async () => (await ops(running.log)).length === 2, 'the second insert');
    expect(running.snapshots.status()).toEqual([]);
    await running.stop();

    // always: every start reads every row again.
    running = await start(db, dir, { 'snapshot.mode': 'always', 'snapshot.chunkRows': 50 });
    await waitFor(async () => (await ops(running.log)).length === 2 + 302, 'the snapshot');
    await running.stop();

    // initial_only: a new slot is snapshotted, then capture stops by itself.
    const other = dirs.make();
    const only = await runCapture(
      captureConfig(db.url, other, {
        'source.slot': `${db.name}_only`,
        topicPrefix: 'bf',
        'snapshot.mode': 'initial_only',
      }),
    );
    captures.push(only);
    await only.done;
    const log = EmbeddedEventLog.open({ dataDir: other, readonly: true });
    try {
      expect(await ops(log)).toEqual(Array(302).fill('r'));
      // Without concurrent changes, the last row read is marked as the snapshot's last.
      const markers = (await readTopic(log, topic)).map((r) => envelope(r).source.snapshot);
      expect(markers).toEqual([...Array(301).fill('true'), 'last']);
    } finally {
      await log.close();
    }
  });
});
