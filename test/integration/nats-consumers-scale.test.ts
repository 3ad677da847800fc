import { describe, expect, it } from 'vitest';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { distinctOffsets, handled, writeConsumer } from '../fixtures/consumers/supervisor-fixtures.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { natsSuite } from '../support/nats-suite.ts';

const LOG_NAME = 'natsscale';
const TOPIC = 'scl.public.items';
const ENV = cleanCliEnv({ TRIBUTARY_NATS_LOG_NAME: LOG_NAME });
const dirs = tempDirs('nats-scale-');

interface Listed {
  name: string;
  lag: { records: number };
  members: { member: string; pid: number; alive: boolean; partitions: string[]; replicaPid?: number }[];
}

/**
 * `consumers scale|restart --log` reach a `consumers run` process through the NATS bucket: it
 * starts or retires replicas (the retired ones drain, commit and release their partitions) and
 * replaces its replicas one by one; every record is handled, the lag returns to 0.
 */
describe('tributary consumers scale|restart --log nats://', () => {
  const nats = natsSuite(dirs);

  it('scales a consumers run process up and down and restarts its replicas, losing no record', async () => {
    const { cluster, procs } = nats;
    const log = await NatsEventLog.open({ servers: cluster.urls, name: LOG_NAME, defaultPartitions: 4 });
    let appended = 0;
    const append = async (n: number) => {
      await log.append(
        Array.from({ length: n }, (_, i) => ({
          topic: TOPIC,
          key: JSON.stringify({ id: (appended + i) % 97 }),
          value: JSON.stringify({ seq: appended + i }),
          headers: {},
          timestamp: Date.now(),
        })),
      );
      appended += n;
    };
    const list = async (): Promise<Listed | undefined> => {
      const r = await cli(['consumers', '--json', '--log', cluster.url], { env: ENV });
      return (JSON.parse(r.stdout) as Listed[]).find((c) => c.name === 'tally');
    };
    const dataDir = dirs.make();
    try {
      await append(2000);
      const consumersDir = dirs.make();
      writeConsumer(consumersDir, 'tally', { topics: [TOPIC] });
      const proc = startCli(
        [
          ...['consumers', 'run', 'tally', '--log', cluster.url, '--consumers-dir', consumersDir],
          ...['--data-dir', dataDir, '--replicas', '1', '--lease-ms', '2000'],
        ],
        { env: ENV },
      );
      procs.push(proc);
      /** Every record appended so far handled (at least once), and the group's lag 0. */
      const caughtUp = (what: string) =>
        waitFor(
          async () => {
            const lag = await log.lag('tally');
            return (
              lag.length === 4 &&
              lag.every((p) => p.records === 0) &&
              distinctOffsets(handled(dataDir, 'tally')) === appended
            );
          },
          what,
          60_000,
        ).catch((error: Error) => {
          throw new Error(`${error.message}\n${proc.stderr.slice(-3000)}`);
        });
      await caughtUp('the first 2,000 records handled by one replica');

      const up = await cli(['consumers', 'scale', 'tally', '3', '--log', cluster.url], { env: ENV });
      expect(up.stderr).toBe('');
      expect(up.stdout).toMatch(
        /scaled to 3 replica\(s\) per process; 3 of 3 replicas in 1 process\(es\) acknowledged/,
      );
      await waitFor(async () => {
        const live = (await list())?.members.filter((m) => m.alive) ?? [];
        return live.length === 3 && live.every((m) => m.partitions.length > 0);
      }, 'three live replicas sharing the four partitions');
      await append(2000);
      await caughtUp('2,000 more records handled by three replicas');
      const pids = new Set(
        handled(dataDir, 'tally')
          .slice(-2000)
          .map((r) => r.pid),
      );
      expect(pids.size).toBeGreaterThanOrEqual(2);

      const down = await cli(['consumers', 'scale', 'tally', '1', '--log', cluster.url], { env: ENV });
      expect(down.stdout).toMatch(/1 of 1 replicas in 1 process\(es\) acknowledged/);
      await waitFor(async () => {
        const members = (await list())?.members ?? [];
        return members.length === 1 && members[0]!.partitions.length === 4;
      }, 'one replica owning the four partitions, the retired ones gone from the bucket');
      const before = (await list())!.members[0]!;

      const restart = await cli(['consumers', 'restart', 'tally', '--log', cluster.url], { env: ENV });
      expect(restart.stdout).toMatch(/tally: restarted; 1 of 1 replicas in 1 process\(es\) acknowledged/);
      const after = (await list())!.members[0]!;
      expect(after.member).toBe(before.member);
      expect(after.replicaPid).not.toBe(before.replicaPid);
      await append(1000);
      await caughtUp('1,000 more records after the restart');
      expect(proc.child.exitCode).toBeNull();
    } finally {
      await log.close();
    }
  }, 180_000);
});
