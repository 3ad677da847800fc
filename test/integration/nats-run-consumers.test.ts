import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { AUDITED_TABLES, AuditedWorkload } from '../support/audited-workload.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { NatsCluster } from '../support/nats-cluster.ts';
import { StandbyPipeline } from '../support/standby-pipeline.ts';
import { writeConsumer } from './consumer-worker-support.ts';

/** A record the `tally` consumer refuses (dead-lettered). */
const poison = (offset: number) => offset % 97 === 13;

/**
 * The consumers of `tributary run --log nats://` keep their offsets and dead letters in the log's
 * bucket, not in the data directory: when the standby (another data directory, another machine)
 * takes over, its consumers continue from the offsets the former active one committed (they
 * started over from 0 before), and the dead letters of both are seen from anywhere.
 */
describe('run --log nats:// consumers: state in NATS across a capture take-over', () => {
  let db: TestDatabase;
  let cluster: NatsCluster;
  const dirs = tempDirs('tributary-run-consumers-');
  const pipelines: StandbyPipeline[] = [];
  beforeAll(async () => {
    [db, cluster] = await Promise.all([createDatabase(PG_VERSIONS.at(-1)!, 'nrunc'), NatsCluster.start()]);
    await db.query(AUDITED_TABLES);
  }, 60_000);
  afterAll(async () => {
    for (const pipe of pipelines) await pipe.kill();
    await db?.drop();
    await cluster?.stop();
    dirs.removeAll();
  });

  it('the standby continues from the committed offsets; dead letters in NATS', {
    timeout: 180_000,
  }, async () => {
    const pipe = new StandbyPipeline(db, cluster, 'nrunc');
    pipelines.push(pipe);
    const consumersDir = dirs.make();
    const handledFile = join(dirs.make(), 'handled');
    writeConsumer(
      consumersDir,
      'tally',
      `export default defineConsumer({
  topics: [${JSON.stringify(pipe.topic)}],
  retry: { attempts: 1 },
  batch: { maxRecords: 20 },
  async handle(batch) {
    for (const r of batch) if (r.offset % 97 === 13) throw new Error('refused ' + r.partition + '/' + r.offset);
    appendFileSync(${JSON.stringify(handledFile)}, batch.map((r) => r.partition + '/' + r.offset).join('\\n') + '\\n');
  },
});`,
    );
    const handled = () =>
      existsSync(handledFile)
        ? readFileSync(handledFile, 'utf8')
            .split('\n')
            .filter((l) => l !== '')
        : [];
    const [dirA, dirB] = [dirs.make(), dirs.make()];
    const port = await freePort();
    const active = pipe.start(dirA, ['--consumers', consumersDir]);
    await waitFor(() => pipe.status(dirA)?.term === 1, 'the active capture to stream', 30_000);
    const standby = pipe.start(dirB, ['--standby', '--consumers', consumersDir, '--http-port', String(port)]);
    await waitFor(() => pipe.status(dirB)?.role === 'standby', 'the standby', 30_000);

    const workload = new AuditedWorkload(db.url);
    let beforeKill = 0;
    try {
      workload.start(2);
      await waitFor(() => handled().length > 300, 'records handled by the active process', 60_000);
      active.child.kill('SIGKILL');
      await active.exited;
      // Its replicas see their parent gone and drain; what they handled is now final.
      await waitFor(() => pipe.status(dirB)?.role === 'active', 'the standby to take over', 30_000);
      beforeKill = handled().length;
      await waitFor(() => handled().length > beforeKill + 100, 'records handled after the take-over', 60_000);
    } finally {
      await workload.stop();
    }
    await pipe.captureMarker();
    const { records } = await pipe.records();
    const expected = records.filter((r) => !poison(r.offset)).map((r) => `${r.partition}/${r.offset}`);
    await waitFor(
      () => new Set(handled()).size === expected.length,
      'every record handled or dead-lettered',
      60_000,
    ).catch((error: Error) => {
      throw new Error(
        `${error.message}: ${new Set(handled()).size} of ${expected.length}\n${standby.stderr.slice(-3000)}`,
      );
    });
    const rows = handled();
    const seen = new Set(rows);
    const want = new Set(expected);
    const missing = expected.filter((k) => !seen.has(k));
    const extra = [...seen].filter((k) => !want.has(k));
    expect({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }).toEqual({ missing: [], extra: [] });
    // Only what the former active process handled and had not committed yet is handled again
    // (the standby's consumers started at 0 before: every record handled until the kill again).
    const again = rows.length - new Set(rows).size;
    console.log(`take-over: ${beforeKill} handled before, ${again} handled again after`);
    expect(beforeKill).toBeGreaterThan(300);
    expect(again).toBeLessThan(100);

    // The dead letters of both processes, from a third data directory, and from B's API.
    const poisoned = records.filter((r) => poison(r.offset)).length;
    expect(poisoned).toBeGreaterThan(3);
    const listed = await cli(
      [
        'dlq',
        'list',
        'tally',
        '--log',
        cluster.url,
        '--json',
        '--limit',
        '100000',
        '--data-dir',
        dirs.make(),
      ],
      {
        env: { TRIBUTARY_NATS_LOG_NAME: pipe.name },
      },
    );
    expect(listed.code, listed.stderr).toBe(0);
    const letters = JSON.parse(listed.stdout) as { partition: number; offset: number; error: string }[];
    expect(letters.map((l) => `${l.partition}/${l.offset}`).sort()).toEqual(
      records
        .filter((r) => poison(r.offset))
        .map((r) => `${r.partition}/${r.offset}`)
        .sort(),
    );
    const api = (await (
      await fetch(`http://127.0.0.1:${port}/api/dead-letters?consumer=tally&limit=500`)
    ).json()) as {
      total: number;
    };
    expect(api.total).toBe(poisoned);
    standby.child.kill('SIGTERM');
    expect((await standby.exited).code).toBe(0);
  });
});
