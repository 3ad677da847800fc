import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';

const REPO = resolve(import.meta.dirname, '../..');
const PARTITIONS = 3;
const BATCHES = 300;

// Appends BATCHES batches and prints the running total after each append has resolved.
const WRITER = `
  const { EmbeddedEventLog } = await import(${JSON.stringify(join(REPO, 'src/log/embedded/sqlite-event-log.ts'))});
  const log = EmbeddedEventLog.open({ dataDir: process.argv[1], defaultPartitions: ${PARTITIONS} });
  process.stdout.write('ready\\n');
  let total = 0;
  for (let batch = 0; batch < ${BATCHES}; batch++) {
    const n = 1 + (batch % 50);
    const records = Array.from({ length: n }, (_, i) => ({
      topic: 'orders', key: 'order-' + ((total + i) % 101), value: JSON.stringify({ n: total + i }),
      headers: { batch: String(batch) }, timestamp: Date.now(),
    }));
    await log.append(records, { source: 'writer', position: String(total + n) });
    total += n;
    process.stdout.write(total + '\\n');
  }
  await log.close();
`;

describe('embedded log shared between processes', () => {
  let dataDir: string;
  afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

  it('a read-only process sees every committed append of the writing process while it writes', async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'tributary-mp-'));
    const writer = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', WRITER, dataDir],
      {
        cwd: REPO,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const exited = once(writer, 'exit');
    let reader: EmbeddedEventLog | undefined;
    let acknowledged = 0;
    let checks = 0;
    try {
      for await (const line of createInterface({ input: writer.stdout })) {
        if (line === 'ready') {
          reader = EmbeddedEventLog.open({ dataDir, readonly: true });
          continue;
        }
        acknowledged = Number(line);
        // The writer may already be further along; what it acknowledged must be visible, never less.
        const [topic] = await reader!.topics();
        const visible = topic!.partitions.reduce((sum, p) => sum + p.endOffset, 0);
        expect(visible).toBeGreaterThanOrEqual(acknowledged);
        expect(Number((await reader!.checkpoint('writer'))!.position)).toBeGreaterThanOrEqual(acknowledged);
        if (++checks % 25 === 0) await expectDenseAndComplete(reader!, visible);
      }
      const [code] = await exited;
      expect(code).toBe(0);
      expect(checks).toBe(BATCHES);
      const [topic] = await reader!.topics();
      const total = topic!.partitions.reduce((sum, p) => sum + p.endOffset, 0);
      expect(total).toBe(acknowledged);
      expect(await reader!.checkpoint('writer')).toEqual({ source: 'writer', position: String(total) });
      await expectDenseAndComplete(reader!, total);
    } finally {
      writer.kill('SIGKILL');
      await reader?.close();
    }
  });
});

/** Reads every partition: offsets are dense, and every value below `atLeast` (visible before) is there. */
async function expectDenseAndComplete(log: EmbeddedEventLog, atLeast: number): Promise<void> {
  const seen = new Set<number>();
  for (let partition = 0; partition < PARTITIONS; partition++) {
    let offset = 0;
    for (;;) {
      const page = await log.read('orders', partition, offset, 500);
      if (page.length === 0) break;
      for (const record of page) {
        expect(record.offset).toBe(offset++);
        seen.add(JSON.parse(record.value!).n);
      }
    }
  }
  for (let n = 0; n < atLeast; n++) if (!seen.has(n)) expect.fail(`value ${n} missing`);
}
