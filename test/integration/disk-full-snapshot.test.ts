import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { captureConfig, envelope, quietLogger, readTopic, waitFor } from '../support/capture-harness.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';
import { fill } from '../support/disk-fill.ts';
import { Churn, replay, tableState } from './snapshot-support.ts';

const VERSION = 18;
const ROWS = 150_000;

/**
 * Issue 14 item 4, with a snapshot under way: appends lost to the full disk carried snapshot
 * progress, which the stream does not bring back. Once space returns the same capture rolls the
 * snapshot back to the progress stored in the log (what a restart would load) and reads the lost
 * chunks again; the log ends equal to the table, every row read once.
 */
describe('a full disk under the event log during a snapshot', () => {
  let mountPoint: string;
  let db: TestDatabase;
  let running: RunningCapture | undefined;
  let churn: Churn | undefined;
  beforeAll(async () => {
    mountPoint = mkdtempSync(join(tmpdir(), 'tributary-diskfull-snap-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=96m', 'tmpfs', mountPoint]);
    db = await createDatabase(VERSION, 'fullsnap');
    await db.query(`
      create table items (id int primary key, v int not null, note text);
      insert into items select g, 0, md5(g::text) from generate_series(1, ${ROWS}) g;
      analyze items;
    `);
  });
  afterAll(async () => {
    await churn?.stop();
    await running?.stop();
    await db?.drop();
    execFileSync('umount', [mountPoint]);
    rmdirSync(mountPoint);
  });

  it('resumes the snapshot by itself once space returns, in the same capture, each row once', {
    timeout: 300_000,
  }, async () => {
    const dataDir = join(mountPoint, 'data');
    const config = captureConfig(db.url, dataDir, {
      'source.slot': `s_${db.name}`,
      'source.publication': `p_${db.name}`,
      'snapshot.mode': 'initial',
      'snapshot.chunkRows': 500,
      'snapshot.maxParallelChunks': 1,
      'log.walLimitMb': 1,
      'capture.maxBatchRecords': 50,
      'source.heartbeatIntervalMs': 0,
    });
    const options = { logger: quietLogger, statusIntervalMs: 200 };
    running = await startCapture(config, options);
    const capture = running;
    // Before the rollback, the capture ended with LOG_APPEND_LOST: the waits below fail at once then.
    let ended: unknown;
    capture.done.then(
      () => {
        ended = new Error('the capture ended');
      },
      (error: unknown) => {
        ended = error;
      },
    );
    const failed = () => {
      if (ended) throw ended;
    };
    // Which progress the snapshot went back to, and from where (the lost appends' progress).
    const restores: { from: string; to: string }[] = [];
    const tracker = capture.snapshots;
    const restore = tracker.restore.bind(tracker);
    tracker.restore = (stored) => {
      restores.push({ from: JSON.stringify(tracker.progress()), to: JSON.stringify(stored) });
      restore(stored);
    };
    const topic = `${config.topicPrefix}.public.items`;
    const rowsRead = () => capture.snapshots.status().find((j) => j.table === 'public.items')?.rows ?? 0;
    await waitFor(() => rowsRead() >= 5000, 'the snapshot to be under way');
    churn = new Churn(db.url, 'items', ROWS + 1000);
    churn.start();

    // The disk fills while the snapshot and the changes go on.
    const filler = fill(mountPoint);
    await waitFor(() => capture.source.stats.diskFull ?? undefined, 'the disk-full state');
    const changesWhileFull = churn.changes;
    await waitFor(() => churn!.changes > changesWhileFull + 200, 'changes while the disk is full');
    expect(capture.source.stats.diskFull).not.toBeNull();

    // Space returns: the same capture goes back to the stored progress and finishes the snapshot.
    rmSync(filler);
    const stored = async () => Capture.position(capture.log, `postgres:${config.source.slot}`);
    await waitFor(
      async () => {
        failed();
        return capture.snapshots.unfinished === 0 && (await stored())?.snapshot === undefined;
      },
      'the snapshot to finish',
      240_000,
    );
    await churn.stop();
    // A marker committed last tells when every change is in.
    const marker = ROWS + 5000;
    await db.query(`insert into items (id, v, note) values (${marker}, 1, 'marker')`);
    const markerKey = JSON.stringify({ id: marker });
    await waitFor(
      async () => (await readTopic(capture.log, topic)).some((r) => r.key === markerKey),
      'the marker to be captured',
      120_000,
    );
    failed();
    // The snapshot had moved on in the lost appends, and went back in this capture.
    expect(restores.some((r) => r.from !== r.to)).toBe(true);

    // The oracle: replaying the log gives the table, and each row was read at most once.
    const records = await readTopic(capture.log, topic);
    expect(replay(records)).toEqual(await tableState((sql) => db.query(sql), 'items'));
    const reads = new Map<string, number>();
    for (const record of records) {
      if (record.value !== null && envelope(record).op === 'r')
        reads.set(record.key!, (reads.get(record.key!) ?? 0) + 1);
    }
    expect([...reads.entries()].filter(([, n]) => n > 1)).toEqual([]);
    // Rows the stream never touched reach the log once, as reads.
    const changed = new Set(
      records.filter((r) => r.value === null || envelope(r).op !== 'r').map((r) => r.key),
    );
    const missing: number[] = [];
    for (let id = 1; id <= ROWS; id++) {
      const key = JSON.stringify({ id });
      if (!changed.has(key) && reads.get(key) !== 1) missing.push(id);
    }
    expect(missing).toEqual([]);
    expect(reads.size).toBeGreaterThan(ROWS / 2);
  });
});
