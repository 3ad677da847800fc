import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { groupKeys, parsePartitionEntry } from '../../src/consumers/nats/group-keys.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { listKeys } from '../../src/log/nats/nats-kv-keys.ts';
import { NatsLogBucket } from '../../src/log/nats/nats-log-bucket.ts';
import { recordCount, tempDirs, waitFor } from '../support/capture-harness.ts';
import { cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { natsMirrorSuite, startMirrorCapture, writeMirrorConsumer } from '../support/nats-mirror.ts';

const LOG_NAME = 'natskills';
const TOPIC = 'kil.public.src';
const PARTITIONS = 4;
const ROUNDS = 300;
const ENV = cleanCliEnv({ TRIBUTARY_NATS_LOG_NAME: LOG_NAME });
const dirs = tempDirs('nats-kills-');

/**
 * The proof: three `consumers run` processes of a transactional consumer against a 3-node
 * NATS cluster under a capture of a live workload; one process at a time, chosen at random, dies
 * with its replicas (kill -9, the machine is gone) at a random moment and a new one starts. Each
 * time the partitions of the dead one are owned by live ones within seconds, and in the end the
 * sink table equals the source, every change applied exactly once.
 */
describe('consumers run: random kills of one of three processes', () => {
  const nats = natsMirrorSuite(dirs, 'natskills');

  it('the sink equals the source exactly once; takeovers within seconds', async () => {
    const { db, cluster, procs } = nats;
    const consumersDir = dirs.make();
    writeMirrorConsumer(consumersDir, TOPIC, db);
    const capture = await startMirrorCapture({
      db,
      logUrl: cluster.url,
      topicPrefix: 'kil',
      partitions: PARTITIONS,
      makeDir: () => dirs.make(),
      env: ENV,
    });
    procs.push(capture);
    const start = () => {
      const p = startCli(
        [
          ...['consumers', 'run', 'mirror', '--log', cluster.url, '--consumers-dir', consumersDir],
          ...['--data-dir', dirs.make(), '--lease-ms', '2000'],
        ],
        { env: ENV },
      );
      procs.push(p);
      return p;
    };
    let live = [start(), start(), start()];

    let done = false;
    // At least ROUNDS transactions, and on until the last kill: each kill waits for progress.
    let killsDone = false;
    let rounds = 0;
    const workload = (async () => {
      for (let i = 0; i < ROUNDS || !killsDone; i++) {
        await db.query(
          `begin;
           insert into src select g, 0 from generate_series(${i * 10 + 1}, ${i * 10 + 10}) g;
           update src set v = v + 1 where id % 7 = ${i % 7} and id > ${(i - 50) * 10};
           delete from src where id = ${Math.max(1, i * 10 - 5)};
           commit;`,
        );
        rounds = i + 1;
        await new Promise((r) => setTimeout(r, 20));
      }
      done = true;
    })();

    const bucket = await NatsLogBucket.open({ url: cluster.url, name: LOG_NAME }, { waitMs: 30_000 });
    const owners = () =>
      Promise.all(
        Array.from({ length: PARTITIONS }, async (_, p) => {
          const entry = await bucket.kv.get(groupKeys.offset('mirror', TOPIC, p));
          return entry?.operation === 'PUT' ? parsePartitionEntry(entry.string()).owner : null;
        }),
      );
    const ownedByLive = (owner: string | null) =>
      live.some((p) => owner?.startsWith(`${hostname()}-${p.child.pid}-`) === true);
    const applied = async () => Number((await db.query('select count(*) as n from applied')).rows[0]!.n);
    const takeovers: number[] = [];
    try {
      await waitFor(async () => (await owners()).every(ownedByLive), 'the partitions to be owned', 60_000);
      for (let kill = 0; kill < 3; kill++) {
        // Every process holds its share (4 partitions over 3: at least one each), then one dies.
        await waitFor(
          async () => {
            const o = await owners();
            return (
              o.every(ownedByLive) &&
              live.every((p) => o.some((x) => x?.startsWith(`${hostname()}-${p.child.pid}-`)))
            );
          },
          'every process to own partitions',
          60_000,
        );
        const before = await applied();
        await waitFor(async () => (await applied()) > before + 100, 'progress before the kill', 60_000);
        await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 500)));
        const victim = live[Math.floor(Math.random() * live.length)]!;
        const pids: number[] = [];
        for (const key of await listKeys(bucket.kv, groupKeys.members('mirror'))) {
          const entry = await bucket.kv.get(key);
          const v =
            entry?.operation === 'PUT' ? (entry.json() as { pid: number; replicaPid?: number }) : undefined;
          if (v !== undefined && v.pid === victim.child.pid && v.replicaPid) pids.push(v.replicaPid);
        }
        const killedAt = Date.now();
        victim.child.kill('SIGKILL');
        for (const pid of pids) process.kill(pid, 'SIGKILL');
        live = live.filter((p) => p !== victim);
        await waitFor(
          async () => (await owners()).every(ownedByLive),
          'live processes to own every partition',
          30_000,
        );
        takeovers.push(Date.now() - killedAt);
        live.push(start());
      }
      killsDone = true;
      console.log(`takeovers after kill -9 (lease 2000 ms): ${takeovers.join(', ')} ms`);
      expect(Math.max(...takeovers)).toBeLessThan(15_000);

      await workload;
      expect(done).toBe(true);
      // The capture may still be appending the workload's last transactions: the count is read
      // again at each try (it stops growing once the capture caught up).
      const log = await NatsEventLog.open({ servers: cluster.urls, name: LOG_NAME, readonly: true });
      let records = 0;
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
          records = await recordCount(log, TOPIC);
          return (await applied()) === records - rounds && (await diff()) === 0;
        },
        'every change applied and the sink equal to the source',
        120_000,
      ).catch(async (error: Error) => {
        throw new Error(
          `${error.message}: applied ${await applied()} of ${records - rounds}, diff ${await diff()}\n${live.map((p) => p.stderr.slice(-2000)).join('\n---\n')}`,
        );
      });
      await log.close();
      const dups = await db.query('select part, off from applied group by 1, 2 having count(*) > 1');
      expect(dups.rows).toEqual([]);
      expect(Number((await db.query('select count(*) as n from src')).rows[0]!.n)).toBeGreaterThan(2000);

      // Every process that still runs (the last one started may still be loading: a SIGTERM before
      // it set up its handlers ends it by the signal) owns partitions, then ends cleanly and
      // releases what it owns.
      await waitFor(
        async () => {
          const o = await owners();
          return live.every((p) => o.some((x) => x?.startsWith(`${hostname()}-${p.child.pid}-`)));
        },
        'every live process to own partitions before the stop',
        60_000,
      );
      for (const p of live) p.child.kill('SIGTERM');
      for (const p of live) {
        const exit = await p.exited;
        expect(exit.code, `signal ${exit.signal}: ${p.stderr.slice(-3000)}`).toBe(0);
      }
      expect(await owners()).toEqual(Array(PARTITIONS).fill(null));
      const list = await cli(['consumers', '--json', '--log', cluster.url], { env: ENV });
      const rows = JSON.parse(list.stdout) as { name: string; lag: { records: number } }[];
      expect(rows.find((r) => r.name === 'mirror')?.lag.records).toBe(0);
    } finally {
      killsDone = true;
      await bucket.close();
    }
    capture.child.kill('SIGTERM');
    const captureExit = await capture.exited;
    expect(captureExit.code, `signal ${captureExit.signal}: ${capture.stderr.slice(-3000)}`).toBe(0);
  }, 300_000);
});
