import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { groupKeys, parsePartitionEntry } from '../../src/consumers/nats/group-keys.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { listKeys } from '../../src/log/nats/nats-kv-keys.ts';
import { NatsLogBucket } from '../../src/log/nats/nats-log-bucket.ts';
import { recordCount, tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { natsMirrorSuite, startMirrorCapture, writeMirrorConsumer } from '../support/nats-mirror.ts';

const LOG_NAME = 'natsgroup';
const TOPIC = 'grp.public.src';
const PARTITIONS = 4;
const ENV = cleanCliEnv({ TRIBUTARY_NATS_LOG_NAME: LOG_NAME });
const dirs = tempDirs('nats-group-');

/** Owner (member id) of each partition of the group, from the log's bucket. */
async function owners(bucket: NatsLogBucket, group: string): Promise<(string | null)[]> {
  return Promise.all(
    Array.from({ length: PARTITIONS }, async (_, p) => {
      const entry = await bucket.kv.get(groupKeys.offset(group, TOPIC, p));
      return entry?.operation === 'PUT' ? parsePartitionEntry(entry.string()).owner : null;
    }),
  );
}

/** Member ids of a `consumers run` process start with `<host>-<pid>-`. */
const memberOf = (proc: CliProcess) => (owner: string | null) =>
  owner?.startsWith(`${hostname()}-${proc.child.pid}-`) === true;

/**
 * `tributary consumers run` processes against a 3-node NATS cluster share a transactional
 * consumer's partitions through NATS; kill -9 of one process (and of its replicas: the machine is
 * gone) hands its partitions to the other within seconds, and the sink table equals the source,
 * each change applied exactly once (the target's offsets; the NATS entries fence stale owners).
 */
describe('tributary consumers run --log nats://', () => {
  const nats = natsMirrorSuite(dirs, 'natsgroup');

  it('two processes share the partitions; kill -9 of one: the other takes over, the sink equals the source exactly once', async () => {
    const { db, cluster, procs } = nats;
    const consumersDir = dirs.make();
    writeMirrorConsumer(consumersDir, TOPIC, db);
    const capture = await startMirrorCapture({
      db,
      logUrl: cluster.url,
      topicPrefix: 'grp',
      partitions: PARTITIONS,
      makeDir: () => dirs.make(),
      env: ENV,
    });
    procs.push(capture);
    const runArgs = (dataDir: string) => [
      ...['consumers', 'run', 'mirror', '--log', cluster.url, '--consumers-dir', consumersDir],
      ...['--data-dir', dataDir, '--replicas', '2', '--lease-ms', '2000'],
    ];
    const a = startCli(runArgs(dirs.make()), { env: ENV });
    const b = startCli(runArgs(dirs.make()), { env: ENV });
    procs.push(a, b);

    // The workload goes on until 30 transactions after the kill, so B applies changes of its
    // own however slowly the processes start (on a loaded machine A could apply all of a
    // shorter workload before B joined).
    let done = false;
    let killed = false;
    let transactions = 0;
    const workload = (async () => {
      for (let i = 0, after = 0; i < 150 || after < 30; i++) {
        await db.query(
          `begin;
           insert into src select g, 0 from generate_series(${i * 10 + 1}, ${i * 10 + 10}) g;
           update src set v = v + 1 where id % 7 = ${i % 7} and id > ${(i - 50) * 10};
           delete from src where id = ${Math.max(1, i * 10 - 5)};
           commit;`,
        );
        transactions++;
        if (killed) after++;
        await new Promise((r) => setTimeout(r, 20));
      }
      done = true;
    })();

    const bucket = await NatsLogBucket.open({ url: cluster.url, name: LOG_NAME }, { waitMs: 30_000 });
    try {
      const diagnostics = () => `\n--- A\n${a.stderr.slice(-3000)}\n--- B\n${b.stderr.slice(-3000)}`;
      // Four replicas over four partitions: each process ends with its fair share, two (the
      // first one to start takes everything, then hands partitions over as the other joins).
      await waitFor(
        async () => {
          const o = await owners(bucket, 'mirror');
          return o.filter(memberOf(a)).length === 2 && o.filter(memberOf(b)).length === 2;
        },
        'both processes to own two partitions each',
        60_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}${diagnostics()}`);
      });
      const applied = async () => Number((await db.query('select count(*) as n from applied')).rows[0]!.n);

      // The machine of A dies: the process and its replicas, at once.
      const replicaPids: number[] = [];
      for (const key of await listKeys(bucket.kv, groupKeys.members('mirror'))) {
        const entry = await bucket.kv.get(key);
        const v =
          entry?.operation === 'PUT' ? (entry.json() as { pid: number; replicaPid?: number }) : undefined;
        if (v !== undefined && v.pid === a.child.pid && v.replicaPid) replicaPids.push(v.replicaPid);
      }
      expect(replicaPids.length).toBe(2);
      const appliedBy = async (pids: number[]) =>
        Number((await db.query('select count(*) as n from applied where pid = any($1)', [pids])).rows[0]!.n);
      await waitFor(
        async () => (await applied()) > 300 && (await appliedBy(replicaPids)) > 0,
        'changes applied, some by A',
      );
      const killedAt = Date.now();
      a.child.kill('SIGKILL');
      for (const pid of replicaPids) process.kill(pid, 'SIGKILL');
      killed = true;
      await waitFor(
        async () => (await owners(bucket, 'mirror')).every(memberOf(b)),
        'B to own every partition',
        30_000,
      );
      const takeoverMs = Date.now() - killedAt;
      console.log(`takeover of A's partitions by B: ${takeoverMs} ms (lease 2000 ms)`);
      expect(takeoverMs).toBeLessThan(15_000);

      await workload;
      expect(done).toBe(true);
      const log = await NatsEventLog.open({ servers: cluster.urls, name: LOG_NAME, readonly: true });
      const records = await recordCount(log, TOPIC);
      await log.close();
      const tombstones = transactions; // one delete of an existing row each
      const diff = async () =>
        Number(
          (
            await db.query(
              'select count(*) as n from ((select * from src except select * from dst) union all (select * from dst except select * from src)) d',
            )
          ).rows[0]!.n,
        );
      await waitFor(
        async () => (await applied()) === records - tombstones && (await diff()) === 0,
        'every change applied and the sink equal to the source',
        90_000,
      ).catch(async (error: Error) => {
        throw new Error(
          `${error.message}: applied ${await applied()} of ${records - tombstones}, diff ${await diff()}${diagnostics()}`,
        );
      });
      const dups = await db.query('select part, off from applied group by 1, 2 having count(*) > 1');
      expect(dups.rows).toEqual([]);
      // Both processes did work: A's replicas before the kill, B's (other pids) too.
      const byPid = (await db.query('select pid, count(*)::int as n from applied group by 1')).rows as {
        pid: number;
      }[];
      expect(byPid.some((r) => !replicaPids.includes(r.pid))).toBe(true);

      // State from NATS: the group's members (B's two live) and no lag.
      let listed = '';
      await waitFor(async () => {
        const list = await cli(['consumers', '--json', '--log', cluster.url], { env: ENV });
        listed = list.stdout;
        const rows = JSON.parse(list.stdout) as {
          name: string;
          lag: { records: number };
          members: { pid: number; alive: boolean; partitions: string[] }[];
        }[];
        const mirror = rows.find((r) => r.name === 'mirror');
        const live = mirror?.members.filter((m) => m.alive) ?? [];
        return (
          mirror?.lag.records === 0 &&
          live.length === 2 &&
          live.every((m) => m.pid === b.child.pid) &&
          live.reduce((n, m) => n + m.partitions.length, 0) === PARTITIONS
        );
      }, '`consumers --log` to show B owning everything with no lag').catch((error: Error) => {
        throw new Error(`${error.message}: ${listed}${diagnostics()}`);
      });

      // A graceful stop drains and releases: no owner left.
      b.child.kill('SIGTERM');
      const exit = await b.exited;
      expect(exit.code, exit.stderr.slice(-3000)).toBe(0);
      expect(await owners(bucket, 'mirror')).toEqual(Array(PARTITIONS).fill(null));
    } finally {
      await bucket.close();
    }
    capture.child.kill('SIGTERM');
    expect((await capture.exited).code).toBe(0);
  }, 240_000);
});
