import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { tempDirs } from '../support/capture-harness.ts';
import { FakeParent, keyedRecords, launch, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('tributary-worker-nice-');
afterAll(() => dirs.removeAll());

/** The nice value of every thread of a process (field 19 of /proc/<pid>/task/<tid>/stat). */
function threadNiceness(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

describe.runIf(process.platform === 'linux')('consumer worker priority', () => {
  it('runs every thread of the replica `niceness` below its parent, and keeps consuming', async () => {
    const dataDir = dirs.make();
    const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: 1, durable: false });
    await log.append(keyedRecords('t', 20, 4));
    await log.close();
    const module = writeConsumer(
      dataDir,
      'nice',
      `export default defineConsumer({ topics: ['t'], handle() {} });`,
    );
    const parent = new FakeParent({ ...launch('nice', module, dataDir), niceness: 7 });
    try {
      await parent.ready();
      parent.assign([{ topic: 't', partition: 0 }]);
      await expect.poll(() => parent.totals.processed, { timeout: 30_000 }).toBe(20);
      const own = threadNiceness(process.pid)[0]!;
      const nice = threadNiceness(parent.child.pid!);
      expect(nice.length).toBeGreaterThan(1);
      expect(new Set(nice)).toEqual(new Set([Math.min(19, own + 7)]));
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
    }
  });

  it('leaves the priority alone without `niceness`', async () => {
    const dataDir = dirs.make();
    const module = writeConsumer(
      dataDir,
      'plain',
      `export default defineConsumer({ topics: ['t'], handle() {} });`,
    );
    const parent = new FakeParent(launch('plain', module, dataDir));
    try {
      await parent.ready();
      const own = threadNiceness(process.pid)[0]!;
      expect(new Set(threadNiceness(parent.child.pid!))).toEqual(new Set([own]));
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
    }
  });
});
