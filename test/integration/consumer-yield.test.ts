import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { readYieldLease } from '../../src/consumers/capture-yield.ts';
import { captureConfig, recordCount, runCapture, tempDirs, waitFor } from '../support/capture-harness.ts';
import { createDatabase, PG_VERSIONS } from '../support/databases.ts';
import { FakeParent, launch, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('tributary-yield-');
afterAll(() => dirs.removeAll());

const TOPIC = 'y.public.items';
const BACKLOG = 150_000;

/** (time handled, records) of every batch the consumer handled, from the file it appends to. */
function handled(dataDir: string): { at: number; n: number }[] {
  let text = '';
  try {
    text = readFileSync(join(dataDir, 'handled.txt'), 'utf8');
  } catch {
    return [];
  }
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [at, n] = line.split(' ').map(Number);
      return { at: at!, n: n! };
    });
}

describe.each(PG_VERSIONS)('consumers yield to a capture catching up, PostgreSQL %i', (version) => {
  it('a replica reads nothing while the capture drains a backlog, then consumes all of it', async () => {
    const db = await createDatabase(version, 'yield');
    const dataDir = dirs.make();
    let running: RunningCapture | undefined;
    let parent: FakeParent | undefined;
    try {
      await db.query('create table items (id int primary key, qty int not null, note text not null)');
      const config = captureConfig(db.url, dataDir, {
        topicPrefix: 'y',
        'source.tables': 'public.items',
        'snapshot.mode': 'never',
        'log.partitions': 2,
        'log.durable': false,
        // Whatever this machine's spare CPU: the test is about what a hold does.
        'consumers.yieldToCapture': 'always',
      });
      // The slot first, then a backlog written while nothing captures.
      running = await runCapture(config);
      await running.stop();
      running = undefined;
      for (let i = 0; i < BACKLOG; i += 10_000) {
        await db.query(
          `insert into items select g, g % 100, 'item ' || g from generate_series(${i + 1}, ${i + 10_000}) g`,
        );
      }
      const module = writeConsumer(
        dataDir,
        'reader',
        `const out = ${JSON.stringify(join(dataDir, 'handled.txt'))};
export default defineConsumer({ topics: [${JSON.stringify(TOPIC)}], batch: { maxRecords: 100 }, concurrency: 1,
  handle(batch) { appendFileSync(out, Date.now() + ' ' + batch.length + '\\n'); } });`,
      );
      parent = new FakeParent(launch('reader', module, dataDir));
      await parent.ready();
      parent.assign([
        { topic: TOPIC, partition: 0 },
        { topic: TOPIC, partition: 1 },
      ]);

      running = await runCapture(config);
      const capture = running;
      await waitFor(() => capture.consumerYield.stats.holding, 'the capture to hold the consumers back');
      const heldAt = Date.now();
      expect(readYieldLease(dataDir)).toBeGreaterThan(heldAt);
      await waitFor(() => !capture.consumerYield.stats.holding, 'the capture to let go', 120_000);
      const releasedAt = Date.now();
      expect(await recordCount(capture.log, TOPIC)).toBeGreaterThan(BACKLOG * 0.9);
      expect(readYieldLease(dataDir)).toBe(0);
      expect(capture.consumerYield.stats.holds).toBe(1);

      // Everything is handled once the capture has caught up.
      await waitFor(
        () => handled(dataDir).reduce((n, b) => n + b.n, 0) >= BACKLOG,
        'the backlog handled',
        120_000,
      );
      const batches = handled(dataDir);
      // While held, the replica only finishes what it had read before (at most 256 buffered
      // records per partition, 100 ms to notice the lease): without the hold it keeps pace with
      // the capture and handles tens of thousands of records in that time.
      const duringHold = batches
        .filter((b) => b.at > heldAt + 100 && b.at < releasedAt - 50)
        .reduce((n, b) => n + b.n, 0);
      expect(releasedAt - heldAt).toBeGreaterThan(200);
      expect(duringHold).toBeLessThanOrEqual(512);
      expect(batches.filter((b) => b.at >= releasedAt).reduce((n, b) => n + b.n, 0)).toBeGreaterThan(
        BACKLOG / 2,
      );
      expect(await parent.stop()).toBe(0);
    } finally {
      parent?.child.kill('SIGKILL');
      await running?.stop();
      await db.drop();
    }
  });

  it('does not hold consumers back while the capture keeps up', async () => {
    const db = await createDatabase(version, 'yield');
    const dataDir = dirs.make();
    const running = await runCapture(
      captureConfig(db.url, dataDir, {
        topicPrefix: 'y',
        'snapshot.mode': 'never',
        'consumers.yieldToCapture': 'always',
      }),
    );
    try {
      await db.query('create table items (id int primary key, note text not null)');
      // Small transactions one after the other: the capture receives each as it commits.
      for (let i = 0; i < 200; i++) await db.query(`insert into items values (${i}, 'item ${i}')`);
      await waitFor(async () => (await recordCount(running.log, TOPIC)) === 200, 'the 200 changes captured');
      expect(running.consumerYield.stats.holds).toBe(0);
      expect(readYieldLease(dataDir)).toBe(0);
    } finally {
      await running.stop();
      await db.drop();
    }
  });
});
