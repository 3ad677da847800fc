import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { distinctOffsets, handled, writeConsumer } from '../fixtures/consumers/supervisor-fixtures.ts';
import { readTopic, tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { NatsCluster } from '../support/nats-cluster.ts';

const ENV = cleanCliEnv({ TRIBUTARY_NATS_LOG_NAME: 'natsrun' });
const dirs = tempDirs('nats-run-');

/** `run --log nats://...`: capture, consumers and the CLI's readers all use the NATS log. */
describe('tributary run --log nats:// with consumers', () => {
  let db: TestDatabase;
  let cluster: NatsCluster;
  let proc: CliProcess | undefined;
  beforeAll(async () => {
    [db, cluster] = await Promise.all([createDatabase(PG_VERSIONS.at(-1)!, 'natsrun'), NatsCluster.start()]);
    await db.query('create table orders (id int primary key, total numeric(10,2))');
  }, 60_000);
  afterAll(async () => {
    proc?.child.kill('SIGKILL');
    await proc?.exited;
    await db?.drop();
    await cluster?.stop();
    dirs.removeAll();
  });

  it('captures into the stream, runs the consumers on it, and topics/read show it', async () => {
    const dataDir = dirs.make();
    const consumersDir = dirs.make();
    writeConsumer(consumersDir, 'order-copy', { topics: ['nrun.public.orders'] });
    proc = startCli(
      [
        'run',
        '--source',
        db.url,
        '--data-dir',
        dataDir,
        '--log',
        cluster.url,
        '--slot',
        db.name,
        '--publication',
        db.name,
        '--topic-prefix',
        'nrun',
        '--partitions',
        '2',
        '--consumers',
        consumersDir,
      ],
      { env: ENV },
    );
    await waitFor(
      () => proc!.stderr.includes('"msg":"replication started"') || proc!.child.exitCode !== null,
      'replication to start',
      60_000,
    );
    for (let i = 0; i < 4; i++) {
      await db.query(
        `insert into orders select g, g * 1.5 from generate_series(${i * 50 + 1}, ${i * 50 + 50}) g`,
      );
    }
    await waitFor(() => distinctOffsets(handled(dataDir)) === 200, '200 changes handled', 60_000).catch(
      (error: Error) => {
        throw new Error(`${error.message}\n${proc!.stderr.slice(-4_000)}`);
      },
    );
    const rows = handled(dataDir);
    expect(new Set(rows.map((r) => r.key)).size).toBe(200);
    expect(new Set(rows.map((r) => r.partition))).toEqual(new Set([0, 1]));

    // The data directory holds no embedded log: the records are in the stream.
    const log = await NatsEventLog.open({ servers: cluster.urls, name: 'natsrun', readonly: true });
    const records = await readTopic(log, 'nrun.public.orders');
    await log.close();
    expect(records.length).toBe(200);

    const topics = await cli(['topics', '--json', '--log', cluster.url], { env: ENV });
    expect(topics.code, topics.stderr).toBe(0);
    const info = (JSON.parse(topics.stdout) as { topic: string; partitions: { endOffset: number }[] }[]).find(
      (t) => t.topic === 'nrun.public.orders',
    )!;
    expect(info.partitions.reduce((n, p) => n + p.endOffset, 0)).toBe(200);
    const read = await cli(['read', 'nrun.public.orders', '--partition', '0', '--log', cluster.url], {
      env: ENV,
    });
    expect(read.code, read.stderr).toBe(0);
    expect(read.stdout.trim().split('\n').length).toBe(info.partitions[0]!.endOffset);

    proc.child.kill('SIGTERM');
    const exit = await proc.exited;
    expect(exit.code, exit.stderr).toBe(0);
  }, 110_000);
});
