import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cleanCliEnv, cli, startCli } from '../support/cli.ts';
import { natsSuite } from '../support/nats-suite.ts';

const LOG_NAME = 'natsbacklog';
const TOPIC = 'blog.public.items';
const RECORDS = 40_000;
const ENV = cleanCliEnv({ TRIBUTARY_NATS_LOG_NAME: LOG_NAME });
const dirs = tempDirs('nats-backlog-');

/**
 * A backlog read by three replicas of one `consumers run` process (at least once, offsets in the
 * NATS bucket): once every record is handled, every partition's offset is committed. The last
 * records of a partition finished while the previous commit was on its way to NATS stayed
 * uncommitted (lag stuck above 0 with nothing left to read; the supervisor benchmark's 300 s).
 */
describe('tributary consumers run --log nats:// through a backlog', () => {
  const nats = natsSuite(dirs);

  it('three replicas handle a 40,000-record backlog and commit every partition to its end', async () => {
    const { cluster, procs } = nats;
    const log = await NatsEventLog.open({
      servers: cluster.urls,
      name: LOG_NAME,
      defaultPartitions: 4,
      stream: { replicas: 1 },
    });
    try {
      for (let i = 0; i < RECORDS; i += 5000) {
        await log.append(
          Array.from({ length: 5000 }, (_, j) => ({
            topic: TOPIC,
            key: JSON.stringify({ id: (i + j) % 64 }),
            value: JSON.stringify({ n: i + j }),
            headers: {},
            timestamp: Date.now(),
          })),
        );
      }
      const consumersDir = dirs.make();
      mkdirSync(join(consumersDir, 'tally'));
      writeFileSync(
        join(consumersDir, 'tally', 'index.ts'),
        `import { defineConsumer } from ${JSON.stringify(resolve('src/consumers/define-consumer.ts'))};
export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], batch: { maxRecords: 500 }, handle() {} });
`,
      );
      const proc = startCli(
        [
          ...['consumers', 'run', 'tally', '--log', cluster.url, '--consumers-dir', consumersDir],
          ...['--data-dir', dirs.make(), '--replicas', '3', '--lease-ms', '2000'],
        ],
        { env: ENV },
      );
      procs.push(proc);
      let seen = '';
      await waitFor(
        async () => {
          const lag = await log.lag('tally');
          seen = lag.map((p) => `${p.partition}:${p.records}`).join(' ');
          return lag.length === 4 && lag.every((p) => p.records === 0);
        },
        'every partition committed to its end',
        90_000,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; lag per partition ${seen}\n${proc.stderr.slice(-3000)}`);
      });
      // As the user sees it.
      const list = await cli(['consumers', '--json', '--log', cluster.url], { env: ENV });
      const rows = JSON.parse(list.stdout) as { name: string; lag: { records: number } }[];
      expect(rows.find((r) => r.name === 'tally')?.lag.records).toBe(0);
    } finally {
      await log.close();
    }
  }, 150_000);
});
