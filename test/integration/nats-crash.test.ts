import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Capture } from '../../src/capture/capture.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { LogNames } from '../../src/log/nats/nats-names.ts';
import { AUDITED_TABLES, AuditedWorkload, expectLogEqualsAudit } from '../support/audited-workload.ts';
import { readTopic, readTopicTail, tempDir, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { NatsCluster } from '../support/nats-cluster.ts';

const TOPIC = 'ncrash.public.accounts';
const LOG_NAME = 'ncrash';

/**
 * Exactly once into a NATS log (R3 on a 3-node cluster) across kill -9 of the stream leader and of
 * the capture, under a concurrent workload whose `audit` table is the committed history.
 */
describe('NATS log: crash safety', () => {
  let db: TestDatabase;
  let cluster: NatsCluster;
  const dir = tempDir();

  beforeAll(async () => {
    [db, cluster] = await Promise.all([createDatabase(PG_VERSIONS[0]!, 'ncrash'), NatsCluster.start()]);
    await db.query(AUDITED_TABLES);
  }, 60_000);
  let capture: CliProcess | undefined;
  afterAll(async () => {
    capture?.child.kill('SIGKILL');
    await capture?.exited;
    await db?.drop();
    await cluster?.stop();
    dir.remove();
  });

  const openReader = () => NatsEventLog.open({ servers: cluster.urls, name: LOG_NAME, readonly: true });
  /** Records of the topic; undefined while the cluster cannot answer (a leader election). */
  const count = async (): Promise<number | undefined> => {
    const log = await openReader().catch(() => undefined);
    try {
      const info = (await log?.topics())?.find((t) => t.topic === TOPIC);
      return info?.partitions.reduce((n, p) => n + p.endOffset, 0) ?? 0;
    } catch {
      return undefined;
    } finally {
      await log?.close();
    }
  };
  const streamLeader = async (): Promise<number> => {
    const nc = await connect({ servers: [...cluster.urls] });
    try {
      const info = await (await jetstreamManager(nc)).streams.info(new LogNames(LOG_NAME).stream);
      return cluster.indexOf(info.cluster!.leader!);
    } finally {
      await nc.close();
    }
  };

  it('loses and repeats nothing across kill -9 of the stream leader, then of the next leader and the capture', {
    timeout: 115_000,
  }, async () => {
    const args = [
      'run',
      '--source',
      db.url,
      '--data-dir',
      dir.path,
      '--log',
      cluster.url,
      '--partitions',
      '3',
      '--tables',
      'public.accounts',
      '--slot',
      'ncrash',
      '--topic-prefix',
      'ncrash',
      '--snapshot-mode',
      'never',
      '--http-port',
      '0',
      '--log-level',
      'warn',
    ];
    const env = { TRIBUTARY_MAX_BATCH_RECORDS: '300', TRIBUTARY_NATS_LOG_NAME: LOG_NAME };
    const workload = new AuditedWorkload(db.url);
    const progress = async (proc: CliProcess, what: string, timeoutMs = 30_000) => {
      const before = (await waitFor(count, 'the log to answer')) ?? 0;
      await waitFor(
        async () =>
          proc.child.exitCode === null
            ? ((await count()) ?? 0) > before
            : Promise.reject(new Error(proc.stderr)),
        what,
        timeoutMs,
      ).catch((error: Error) => {
        throw new Error(`${error.message}\ncapture stderr: ${proc.stderr.slice(-4_000)}`);
      });
    };
    capture = startCli(args, { env });
    try {
      await waitFor(
        async () =>
          (await db.query(`select 1 from pg_replication_slots where slot_name = 'ncrash' and active`))
            .rowCount === 1,
        'the slot',
      );
      workload.start(3);
      await progress(capture, 'the first records');

      // 1. kill -9 the stream leader under load: the capture keeps going on the new leader.
      const leader = await streamLeader();
      await cluster.kill(leader);
      await progress(capture, 'records after the leader was killed', 45_000);
      await cluster.startNode(leader);

      // 2. then the new leader and the capture, at a random moment; restart both.
      await new Promise((r) => setTimeout(r, Math.random() * 500));
      const second = await streamLeader();
      await cluster.kill(second);
      capture.child.kill('SIGKILL');
      await capture.exited;
      await cluster.startNode(second);
      capture = startCli(args, { env });
      await progress(capture, 'records after both restarted', 45_000);
    } finally {
      await workload.stop();
    }
    expect(workload.committed).toBeGreaterThan(50);

    const marker = await db.query<{ id: string }>(
      `with i as (insert into accounts (version, payload) values (1, 'marker') returning id, version)
       insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
    );
    const markerKey = `{"id":${marker.rows[0]!.id}}`;
    await waitFor(
      async () => {
        const log = await openReader();
        try {
          return (await readTopicTail(log, TOPIC, 20)).some((r) => r.key === markerKey);
        } finally {
          await log.close();
        }
      },
      'the marker to be captured',
      40_000,
    ).catch(async (error: Error) => {
      throw new Error(
        `${error.message} (log holds ${await count()} records)\ncapture stderr: ${capture!.stderr.slice(-4_000)}`,
      );
    });
    capture.child.kill('SIGTERM');
    expect((await capture.exited).code).toBe(0);

    const log = await openReader();
    const records = await readTopic(log, TOPIC);
    const position = await Capture.position(log, 'postgres:ncrash');
    await log.close();
    const events = await expectLogEqualsAudit(records, (sql) => db.query(sql));
    expect(events).toBeGreaterThan(workload.committed);
    expect(position!.lsn).toBeGreaterThan(0n);
  });

  it('pauses the capture while the cluster has no quorum (slot kept) and resumes, exactly once, when it returns', {
    timeout: 110_000,
  }, async () => {
    await db.query('create table items (id int primary key, note text)');
    const env = { TRIBUTARY_NATS_LOG_NAME: 'nquorum' };
    const topic = 'nquorum.public.items';
    const args = [
      'run',
      '--source',
      db.url,
      '--data-dir',
      dir.path,
      '--log',
      cluster.url,
      '--tables',
      'public.items',
    ];
    args.push('--slot', 'nquorum', '--publication', 'nquorum', '--topic-prefix', 'nquorum');
    args.push('--snapshot-mode', 'never', '--http-port', '0', '--log-level', 'warn');
    const quorumReader = () => NatsEventLog.open({ servers: cluster.urls, name: 'nquorum', readonly: true });
    const records = async () => {
      const log = await quorumReader().catch(() => undefined);
      try {
        return log ? await readTopic(log, topic) : [];
      } catch {
        return [];
      } finally {
        await log?.close();
      }
    };
    capture = startCli(args, { env });
    await waitFor(
      async () =>
        (await db.query(`select 1 from pg_replication_slots where slot_name = 'nquorum' and active`))
          .rowCount === 1,
      'the slot',
    );
    await db.query(`insert into items select g, 'before' from generate_series(1, 100) g`);
    await waitFor(async () => (await records()).length === 100, 'the first 100 rows', 40_000);

    await cluster.kill(1);
    await cluster.kill(2);
    await db.query(`insert into items select g, 'during' from generate_series(101, 200) g`);
    await waitFor(
      () => capture!.stderr.includes('retrying (capture paused)'),
      'the capture to pause',
      40_000,
    );
    expect(capture.child.exitCode).toBeNull();
    const slot = await db.query(`select 1 from pg_replication_slots where slot_name = 'nquorum'`);
    expect(slot.rowCount).toBe(1);

    await cluster.startNode(1);
    await cluster.startNode(2);
    await waitFor(
      async () => (await records()).length >= 200,
      'the rows written without quorum',
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}\ncapture stderr: ${capture!.stderr.slice(-3_000)}`);
    });
    const ids = (await records()).map((r) => Number(JSON.parse(r.key!).id)).sort((a, b) => a - b);
    expect(ids).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
    capture.child.kill('SIGTERM');
    expect((await capture.exited).code).toBe(0);
  });
});
