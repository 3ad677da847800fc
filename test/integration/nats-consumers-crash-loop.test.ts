import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupKeys, parsePartitionEntry } from '../../src/consumers/nats/group-keys.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { NatsLogBucket } from '../../src/log/nats/nats-log-bucket.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { startCli } from '../support/cli.ts';
import { natsSuite } from '../support/nats-suite.ts';
import { keyedRecords, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('nats-crash-loop-');
const TOPIC = 'loop.events';

/** The process exists and is not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** The `msg` of each JSON log line on stderr. */
const messages = (stderr: string) =>
  stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => (JSON.parse(l) as { msg?: string }).msg ?? '');

/**
 * A `consumers run` process whose replica dies on every record (or spins without a heartbeat)
 * restarts it with a growing delay, then, at `consumers.crashLoopRestarts`, stops, releases its
 * partitions and exits 1: the container runtime sees the failure (it restarted the replica every
 * second forever, looking alive).
 */
describe('consumers run --log nats://: crash loops end the process', () => {
  const nats = natsSuite(dirs);

  const runUntilExit = async (name: string, handle: string) => {
    const log = await NatsEventLog.open({ servers: nats.cluster.urls, name, defaultPartitions: 2 });
    await log.append(keyedRecords(TOPIC, 20, 5));
    await log.close();
    const consumersDir = dirs.make();
    writeConsumer(
      consumersDir,
      'doomed',
      `export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], async handle(batch) { ${handle} } });`,
    );
    const p = startCli(
      [
        ...['consumers', 'run', 'doomed', '--log', nats.cluster.url, '--consumers-dir', consumersDir],
        ...['--data-dir', dirs.make(), '--replicas', '1', '--lease-ms', '2000'],
      ],
      {
        env: {
          TRIBUTARY_NATS_LOG_NAME: name,
          TRIBUTARY_DATA_DIR: '',
          TRIBUTARY_CONSUMERS_DIR: '',
          TRIBUTARY_CONSUMERS_CRASH_LOOP_RESTARTS: '3',
          TRIBUTARY_CONSUMERS_CRASH_LOOP_WINDOW_MS: '600000',
          TRIBUTARY_CONSUMERS_HEARTBEAT_TIMEOUT_MS: '3000',
        },
      },
    );
    nats.procs.push(p);
    const exit = await p.exited;
    const bucket = await NatsLogBucket.open({ url: nats.cluster.url, name });
    const owners = await Promise.all(
      [0, 1].map(async (partition) => {
        const entry = await bucket.kv.get(groupKeys.offset('doomed', TOPIC, partition));
        return entry?.operation === 'PUT' ? parsePartitionEntry(entry.string()).owner : null;
      }),
    );
    await bucket.close();
    return { exit, owners, msgs: messages(exit.stderr) };
  };

  it('a replica that exits on every record: restarted after 200 then 400 ms, then exit 1 naming the crash loop', async () => {
    const { exit, owners, msgs } = await runUntilExit('loopcrash', 'process.exit(3);');
    expect(exit.code, exit.stderr.slice(-3000)).toBe(1);
    expect(msgs.filter((m) => m.startsWith('restarting replica 0 in'))).toEqual([
      'restarting replica 0 in 200 ms',
      'restarting replica 0 in 400 ms',
    ]);
    expect(msgs.filter((m) => m.startsWith('replica 0 exited (code 3')).length).toBe(3);
    expect(
      msgs.some((m) =>
        m.startsWith(
          'consumer doomed is crash-looping (3 restarts within 600 s; last: replica 0 exited (code 3',
        ),
      ),
    ).toBe(true);
    // Released, so other processes of the group take the partitions at once.
    expect(owners).toEqual([null, null]);
  }, 120_000);

  it('the replicas of a consumers run process killed with kill -9 end, even with a handler spinning forever', async () => {
    const log = await NatsEventLog.open({
      servers: nats.cluster.urls,
      name: 'looporphan',
      defaultPartitions: 2,
    });
    const consumersDir = dirs.make();
    const started = join(dirs.make(), 'spinning');
    writeConsumer(
      consumersDir,
      'spinner',
      `export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], async handle() { appendFileSync(${JSON.stringify(started)}, String(process.pid)); for (;;) {} } });`,
    );
    const p = startCli(
      [
        ...['consumers', 'run', 'spinner', '--log', nats.cluster.url, '--consumers-dir', consumersDir],
        ...['--data-dir', dirs.make(), '--replicas', '1'],
      ],
      { env: { TRIBUTARY_NATS_LOG_NAME: 'looporphan', TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' } },
    );
    nats.procs.push(p);
    await log.append(keyedRecords(TOPIC, 4, 2));
    await log.close();
    await waitFor(() => existsSync(started), 'the handler to spin', 60_000);
    const replica = Number(readFileSync(started, 'utf8'));
    expect(alive(replica)).toBe(true);
    p.child.kill('SIGKILL');
    await p.exited;
    // Its shutdown deadline (15 s) and the watch's margin pass, then it is gone.
    const killedAt = Date.now();
    await waitFor(() => !alive(replica), 'the orphaned replica to end', 40_000);
    console.log(`orphaned spinning replica ended ${Date.now() - killedAt} ms after its parent's kill -9`);
  }, 120_000);

  it('a replica that spins without a heartbeat: killed for silence, and three hangs end the process', async () => {
    const { exit, owners, msgs } = await runUntilExit('loophang', 'for (;;) {}');
    expect(exit.code, exit.stderr.slice(-3000)).toBe(1);
    expect(
      msgs.filter((m) => /^killing replica 0 \(pid \d+\): no heartbeat for \d+ ms$/.test(m)).length,
    ).toBe(3);
    expect(msgs.some((m) => m.startsWith('consumer doomed is crash-looping (3 hangs in a row'))).toBe(true);
    expect(owners).toEqual([null, null]);
  }, 120_000);
});
