import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { DEFAULT_CEILING_FACTOR } from '../../src/log/embedded/wal-bound.ts';
import { waitFor } from '../support/capture-harness.ts';

const REPO = resolve(import.meta.dirname, '../..');
const MB = 1024 * 1024;

// Follows the topic as a consumer replica does, reading as fast as it can until told to stop, and
// prints how many records it read.
const READER = `
  const { EmbeddedEventLog } = await import(${JSON.stringify(join(REPO, 'src/log/embedded/sqlite-event-log.ts'))});
  const log = EmbeddedEventLog.open({ dataDir: process.argv[1], readonly: true });
  let stop = false;
  process.stdin.on('data', () => { stop = true; });
  process.stdout.write('ready\\n');
  let offset = 0;
  while (!stop) {
    const records = await log.read('big', 0, offset, 50);
    offset += records.length;
    if (records.length === 0) await new Promise((r) => setImmediate(r));
  }
  process.stdout.write(offset + '\\n');
  await log.close();
`;

describe('embedded log write-ahead log', () => {
  let dataDir: string;
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('stays under its ceiling while another process reads all the time, and back under its bound once the writer is idle', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tributary-wal-'));
    const limit = 1 * MB;
    const ceiling = limit * DEFAULT_CEILING_FACTOR;
    const wal = join(dataDir, 'log.sqlite-wal');
    const log = EmbeddedEventLog.open({ dataDir, walLimitBytes: limit });
    await log.append([{ topic: 'big', key: null, value: '{}', headers: {}, timestamp: 0 }]);
    const reader = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', READER, dataDir],
      { cwd: REPO, stdio: ['pipe', 'pipe', 'inherit'] },
    );
    const exited = once(reader, 'exit');
    const lines = createInterface({ input: reader.stdout! })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toBe('ready');
      const value = JSON.stringify({ text: 'x'.repeat(5_000) });
      let largest = 0;
      // 40 appends of ~1 MiB each without a pause: five times the ceiling. Unbounded, the WAL
      // reached 17.5 MB this way.
      for (let append = 0; append < 40; append++) {
        const records = Array.from({ length: 200 }, (_, i) => ({
          topic: 'big',
          key: `k${append}-${i}`,
          value,
          headers: {},
          timestamp: Date.now(),
        }));
        await log.append(records);
        largest = Math.max(largest, statSync(wal).size);
      }
      // Past the ceiling by at most the append that crossed it (and a page or two).
      expect(largest).toBeLessThan(ceiling + 2 * MB);
      expect(largest).toBeGreaterThan(limit);
      // The writer is idle now (the reader still reads): the WAL goes back under the bound.
      await waitFor(() => statSync(wal).size <= limit, 'the write-ahead log back under its bound', 20_000);
      expect(log.walStats.idle).toBeGreaterThan(0);
      reader.stdin!.end('stop\n');
      const read = Number((await lines.next()).value);
      expect(read).toBeGreaterThan(0);
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      reader.kill('SIGKILL');
      await log.close();
    }
  });
});
