import { afterAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import {
  envelope,
  readTopic,
  recordCount,
  recordCountIn,
  tempDirs,
  waitFor,
} from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ROWS = 40_000;
const TOPIC = 'kill.public.big';

describe.each(PG_VERSIONS)('snapshot across kill -9 on PostgreSQL %i', (version) => {
  const dirs = tempDirs();
  const dbs: TestDatabase[] = [];
  const procs: CliProcess[] = [];
  afterAll(async () => {
    for (const p of procs)
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await Promise.all(procs.map((p) => p.exited));
    for (const db of dbs) await db.drop();
    dirs.removeAll();
  });

  it.each(['blocks', 'key'] as const)(
    'resumes from the last chunk in the log, and every row is there exactly once (%s chunks)',
    async (chunks) => {
      const db = await createDatabase(version, 'snapkill');
      dbs.push(db);
      await db.query(`
      create table big (id int primary key, v int not null, note text);
      insert into big select g, g % 7, md5(g::text) from generate_series(1, ${ROWS}) g;
      analyze big;
    `);
      const dir = dirs.make();
      const args = [
        'run',
        '--source',
        db.url,
        '--data-dir',
        dir,
        '--slot',
        db.name,
        '--topic-prefix',
        'kill',
      ];
      const env = {
        TRIBUTARY_SNAPSHOT_CHUNK_ROWS: '250',
        TRIBUTARY_SNAPSHOT_MAX_PARALLEL_CHUNKS: '1',
        TRIBUTARY_SNAPSHOT_INITIAL_CHUNKS: chunks,
        TRIBUTARY_HTTP_PORT: '0',
      };
      const inLog = () => recordCountIn(dir, TOPIC);

      // The position stored with the log lists no unfinished snapshot job.
      const snapshotDone = async () => {
        const log = EmbeddedEventLog.open({ dataDir: dir, readonly: true });
        try {
          return (await Capture.position(log, `postgres:${db.name}`))?.snapshot === undefined;
        } finally {
          await log.close();
        }
      };

      // In the data directory: no ./consumers folder there for `run` to start.
      const first = startCli(args, { env, cwd: dir });
      procs.push(first);
      await waitFor(
        async () =>
          first.child.exitCode === null ? (await inLog()) >= 5000 : Promise.reject(new Error(first.stderr)),
        'the snapshot to be under way',
      );
      first.child.kill('SIGKILL');
      expect((await first.exited).signal).toBe('SIGKILL');

      // What the log holds after the kill, and the snapshot position stored with it.
      const log = EmbeddedEventLog.open({ dataDir: dir, readonly: true });
      const atKill = await recordCount(log, TOPIC);
      const stored = await Capture.position(log, `postgres:${db.name}`);
      await log.close();
      expect(atKill).toBeLessThan(ROWS);
      const job = stored!.snapshot!.jobs.find((j) => j.table === 'big')!;
      // Keys 1..ROWS were inserted in order, so both ways read them in order: the stored cursor is
      // where the chunk after the last one in the log starts, the last key or the next block.
      if (chunks === 'key') {
        expect(job).toMatchObject({ kind: 'initial', rows: atKill, cursor: { after: [String(atKill)] } });
      } else {
        expect(job).toMatchObject({ kind: 'initial', rows: atKill, cursor: { block: expect.any(Number) } });
        const perBlock = Number(
          (await db.query<{ n: string }>(`select count(*) as n from big where ctid < '(1,0)'::tid`)).rows[0]!
            .n,
        );
        expect((job.cursor as { block: number }).block * perBlock).toBe(atKill);
      }

      const second = startCli(args, { env, cwd: dir });
      procs.push(second);
      await waitFor(
        async () =>
          second.child.exitCode === null
            ? (await inLog()) >= ROWS && (await snapshotDone())
            : Promise.reject(new Error(second.stderr)),
        'the snapshot to finish',
      );
      second.child.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
      const resumed = second.stderr
        .split('\n')
        .filter((line) => line.includes('resuming snapshot from its last chunk'))
        .map((line) => JSON.parse(line) as { rows: number; table: string });
      expect(resumed).toEqual([expect.objectContaining({ table: 'public.big', rows: atKill })]);

      const after = EmbeddedEventLog.open({ dataDir: dir, readonly: true });
      const records = await readTopic(after, TOPIC);
      await after.close();
      expect(records).toHaveLength(ROWS);
      const ids = new Set(records.map((r) => envelope(r).after!.id));
      expect(ids.size).toBe(ROWS);
      expect(records.every((r) => envelope(r).op === 'r')).toBe(true);

      // `status` reports the finished snapshot.
      const status = await cli(['status', '--data-dir', dir, '--json']);
      expect(status.code, status.stderr).toBe(0);
      const report = JSON.parse(status.stdout) as {
        snapshot: { table: string; state: string; rows: number }[];
      };
      expect(report.snapshot).toEqual([
        expect.objectContaining({ table: 'public.big', state: 'done', rows: ROWS }),
      ]);
    },
  );
});
