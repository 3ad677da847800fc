import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDITED_TABLES, AuditedWorkload, expectLogEqualsAudit } from '../support/audited-workload.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { NatsCluster } from '../support/nats-cluster.ts';
import { StandbyPipeline } from '../support/standby-pipeline.ts';

/**
 * `capture.standby` / TRIBUTARY_STANDBY (docs/configuration.md): the setting behind `run --standby`,
 * for deployments that configure by environment or file rather than by flag.
 */
describe('NATS log: the standby setting', () => {
  let db: TestDatabase;
  let cluster: NatsCluster;
  const dirs = tempDirs('tributary-standby-config-');
  const pipelines: StandbyPipeline[] = [];
  const databases: TestDatabase[] = [];

  beforeAll(async () => {
    [db, cluster] = await Promise.all([createDatabase(PG_VERSIONS[0]!, 'nsbconf'), NatsCluster.start()]);
    await db.query(AUDITED_TABLES);
  }, 60_000);
  afterAll(async () => {
    for (const pipe of pipelines) await pipe.kill();
    for (const d of databases) await d.drop();
    await db?.drop();
    await cluster?.stop();
    dirs.removeAll();
  });

  it('TRIBUTARY_STANDBY=true makes `run` wait as a standby behind the active capture, as --standby does', {
    timeout: 90_000,
  }, async () => {
    const pipe = new StandbyPipeline(db, cluster, 'nsbconf');
    pipelines.push(pipe);
    const [dirA, dirB] = [dirs.make(), dirs.make()];
    pipe.start(dirA);
    await waitFor(
      () => pipe.status(dirA)?.connected && pipe.status(dirA)?.term === 1,
      'the active capture to stream',
      30_000,
    );
    const slotPid = await waitFor(() => pipe.slotPid(), 'the active capture to hold the slot');
    // No flag: the environment alone. Without the setting this `run` would fight for the slot.
    const standby = pipe.start(dirB, [], { TRIBUTARY_STANDBY: 'true' });
    await waitFor(
      () => pipe.status(dirB)?.role === 'standby' && pipe.status(dirB)?.term === 1,
      'the standby status',
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\nstandby stderr: ${standby.stderr.slice(-3_000)}`);
    });
    expect(standby.stderr).toContain('standby: waiting for slot nsbconf');
    expect(pipe.status(dirB)?.leader?.holder).toContain(dirA);
    expect(await pipe.slotPid()).toBe(slotPid);
    expect(standby.child.exitCode).toBeNull();
  });

  it('TRIBUTARY_STANDBY=1 on the embedded log is refused as --standby is', async () => {
    const r = await cli(['run', '--source', db.url, '--data-dir', dirs.make(), '--http-port', '0'], {
      env: { TRIBUTARY_STANDBY: '1' },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--standby needs a log both captures share');
  });

  it('a bad value names the variable and the setting', async () => {
    const r = await cli(['run', '--source', db.url, '--data-dir', dirs.make(), '--http-port', '0'], {
      env: { TRIBUTARY_STANDBY: 'maybe' },
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('invalid value "maybe" for environment variable TRIBUTARY_STANDBY');
    expect(r.stderr).toContain('capture.standby');
  });

  it('two standbys racing for the slot of a killed leader: one captures in the next term, the other waits without taking a term, then takes over in its turn; the log stays exact', {
    timeout: 180_000,
  }, async () => {
    const raceDb = await createDatabase(PG_VERSIONS[0]!, 'nsbrace');
    databases.push(raceDb);
    await raceDb.query(AUDITED_TABLES);
    const pipe = new StandbyPipeline(raceDb, cluster, 'nsbrace');
    pipelines.push(pipe);
    const [dirA, dirB, dirC] = [dirs.make(), dirs.make(), dirs.make()];
    const leader = pipe.start(dirA, ['--standby']);
    await waitFor(() => pipe.status(dirA)?.connected && pipe.status(dirA)?.term === 1, 'the leader', 30_000);
    const firstPid = await waitFor(() => pipe.slotPid(), 'the leader to hold the slot');
    const standbys = [
      { dir: dirB, proc: pipe.start(dirB, ['--standby']) },
      { dir: dirC, proc: pipe.start(dirC, ['--standby']) },
    ];
    for (const s of standbys)
      await waitFor(() => pipe.status(s.dir)?.role === 'standby', 'both standbys', 40_000).catch(
        (error: Error) => {
          throw new Error(`${error.message}\nstderr: ${s.proc.stderr.slice(-3_000)}`);
        },
      );

    const workload = new AuditedWorkload(raceDb.url);
    try {
      workload.start(3);
      await waitFor(async () => (await pipe.count()) > 200, 'records from the leader', 40_000);
      // Both standbys poll the slot every 250 ms: both see it free and race for it.
      leader.child.kill('SIGKILL');
      await leader.exited;
      const before = await pipe.count();
      await waitFor(
        async () => {
          const pid = await pipe.slotPid();
          return pid !== undefined && pid !== firstPid;
        },
        'a standby to hold the slot',
        30_000,
      );
      await waitFor(async () => (await pipe.count()) > before + 200, 'records from the new leader', 40_000);
      // Exactly one streams, in term 2; the other is alive and not connected (refused by the
      // server, or still a standby), and took no term: the winner was never fenced.
      const shown = () => standbys.map((s) => `${s.dir}: ${JSON.stringify(pipe.status(s.dir))}`);
      const winner = await waitFor(
        () => standbys.find((s) => pipe.status(s.dir)?.connected && pipe.status(s.dir)?.term === 2),
        'one standby to report itself active and connected, in term 2',
        20_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\nstatus: ${shown().join('\n')}`);
      });
      const loser = standbys.find((s) => s !== winner)!;
      expect(pipe.status(winner.dir)).toMatchObject({ role: 'active', term: 2 });
      expect(pipe.status(loser.dir)?.connected, shown().join('\n')).toBeFalsy();
      expect(loser.proc.child.exitCode).toBeNull();
      expect((await pipe.records()).term).toBe(2);

      // The loser really waits: when the winner dies in turn, it takes over, in term 3.
      const winnerPid = (await pipe.slotPid())!;
      winner.proc.child.kill('SIGKILL');
      await winner.proc.exited;
      const atSecondKill = await pipe.count();
      await waitFor(
        async () => {
          const pid = await pipe.slotPid();
          return pid !== undefined && pid !== winnerPid && pipe.status(loser.dir)?.term === 3;
        },
        'the other standby to take over',
        40_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\nstderr: ${loser.proc.stderr.slice(-3_000)}`);
      });
      await waitFor(
        async () => (await pipe.count()) > atSecondKill + 100,
        'records from the third leader',
        40_000,
      );
    } finally {
      await workload.stop();
    }
    await pipe.captureMarker();
    const last = standbys.find((s) => s.proc.child.exitCode === null && s.proc.child.signalCode === null)!;
    last.proc.child.kill('SIGTERM');
    expect((await last.proc.exited).code).toBe(0);
    const { records, term } = await pipe.records();
    expect(term).toBe(3);
    await expectLogEqualsAudit(records, (sql) => raceDb.query(sql));
  });
});
