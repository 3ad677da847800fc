/**
 * The snapshot's reader connections dropping mid-snapshot, while several chunks of one table are
 * read at once: the chunks after the failed one are forgotten, the job resumes from its last
 * chunk in the log, and every row is read exactly once, in key order.
 */
import { describe, expect, it } from 'vitest';
import { captureConfig, envelope, readTopic, runCapture, waitFor } from '../support/capture-harness.ts';
import { PG_VERSIONS } from '../support/databases.ts';
import { snapshotBed } from './snapshot-support.ts';

const ROWS = 200_000;

describe.each(PG_VERSIONS)('snapshot readers cut off on PostgreSQL %i', (version) => {
  const { dirs, captures, database } = snapshotBed(version, 'cut', 'analyze items;');

  it('resumes from the last chunk in the log after its connections are terminated, twice', async () => {
    const db = await database(ROWS);
    const running = await runCapture(
      captureConfig(db.url, dirs.make(), {
        'source.slot': db.name,
        topicPrefix: 'cut',
        'snapshot.chunkRows': 1000,
        'snapshot.maxParallelChunks': 3,
      }),
    );
    captures.push(running);
    const job = () => running.snapshots.status().find((j) => j.table === 'public.items');
    const cuts: number[] = [];
    for (const after of [1, ROWS / 4]) {
      // Once rows are in the log (past `after`), with the snapshot still running: cut every reader.
      const rows = await waitFor(() => {
        const j = job();
        return j && j.rows >= after ? j.rows : undefined;
      }, `${after} rows snapshotted`);
      const terminated = await db.query<{ n: string }>(
        `select count(pg_terminate_backend(pid))::text as n from pg_stat_activity
          where application_name = 'tributary-snapshot' and datname = current_database()`,
      );
      expect(Number(terminated.rows[0]!.n)).toBeGreaterThan(0);
      expect(job()!.state).not.toBe('done');
      cuts.push(rows);
    }
    await waitFor(() => job()?.state === 'done', 'the snapshot to finish', 120_000);
    expect(cuts[1]!).toBeLessThan(ROWS);

    const reads = (await readTopic(running.log, 'cut.public.items')).filter(
      (r) => r.value !== null && envelope(r).op === 'r',
    );
    const ids = reads.map((r) => envelope(r).after!.id as number);
    // Every row once, in key order: no chunk was written twice or skipped.
    expect(ids.length).toBe(ROWS);
    expect(ids.every((id, i) => id === i + 1)).toBe(true);
    const markers = reads.map((r) => envelope(r).source.snapshot);
    expect(markers.filter((m) => m === 'last')).toHaveLength(1);
    expect(markers.at(-1)).toBe('last');
    expect(job()!.rows).toBe(ROWS);
  }, 180_000);
});
