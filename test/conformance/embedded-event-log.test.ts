import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventLog } from '../../src/core/event-log.ts';
import type { AppendRecord } from '../../src/core/record.ts';
import { EmbeddedEventLog, type EmbeddedEventLogOptions } from '../../src/log/embedded/sqlite-event-log.ts';
import { partitionForKey } from '../../src/log/partitioner.ts';
import { eventLogConformance } from './event-log-conformance.ts';

const REPO = resolve(import.meta.dirname, '../..');
const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-log-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

eventLogConformance('embedded (SQLite)', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-log-'));
  const options = { dataDir, defaultPartitions: 4 };
  const opened: EventLog[] = [EmbeddedEventLog.open(options)];
  return {
    log: opened[0]!,
    reopen: async () => {
      opened.push(EmbeddedEventLog.open(options));
      return opened.at(-1)!;
    },
    cleanup: async () => {
      for (const log of opened) await log.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
});

const rec = (topic: string, key: string | null, value: string, timestamp = 1_000): AppendRecord => ({
  topic,
  key,
  value,
  headers: {},
  timestamp,
});

describe('EmbeddedEventLog', () => {
  const open = (options: Partial<EmbeddedEventLogOptions> = {}) =>
    EmbeddedEventLog.open({ dataDir: tempDir(), ...options });

  it('creates <dataDir>/log.sqlite, nested folders included', async () => {
    const dataDir = join(tempDir(), 'a', 'b');
    const log = EmbeddedEventLog.open({ dataDir });
    expect(existsSync(join(dataDir, 'log.sqlite'))).toBe(true);
    await log.close();
  });

  it('sends a null key to partition 0 and a key to its murmur2 partition', async () => {
    const log = open({ defaultPartitions: 8 });
    const stored = await log.append([rec('t', null, 'a'), rec('t', 'order-17', 'b')]);
    expect(stored.map((r) => r.partition)).toEqual([0, partitionForKey('order-17', 8)]);
    await log.close();
  });

  it.each([
    [
      'a text file',
      (file: string) => writeFileSync(file, 'hello, not a database\n'.repeat(100)),
      'LOG_CORRUPT',
    ],
    [
      "another program's SQLite database",
      (file: string) => new Database(file).exec('CREATE TABLE users (id INTEGER)').close(),
      'LOG_CORRUPT',
    ],
  ])('refuses %s with a clear error naming the file', (_, make, code) => {
    const dataDir = tempDir();
    const file = join(dataDir, 'log.sqlite');
    make(file);
    expect(() => EmbeddedEventLog.open({ dataDir })).toThrow(expect.objectContaining({ code }));
    expect(() => EmbeddedEventLog.open({ dataDir })).toThrow(file);
  });

  it('explains a data directory that cannot be created and a read-only open of a missing log', () => {
    const file = join(tempDir(), 'plain-file');
    writeFileSync(file, '');
    const notADir = () => EmbeddedEventLog.open({ dataDir: join(file, 'log') });
    expect(notADir).toThrow(expect.objectContaining({ code: 'LOG_OPEN_FAILED', hint: expect.any(String) }));
    const missing = () => EmbeddedEventLog.open({ dataDir: join(tempDir(), 'nothing'), readonly: true });
    expect(missing).toThrow(expect.objectContaining({ code: 'LOG_OPEN_FAILED' }));
  });

  it('refuses writes through a read-only instance', async () => {
    const dataDir = tempDir();
    const writer = EmbeddedEventLog.open({ dataDir });
    await writer.append([rec('t', 'k', 'v')]);
    const reader = EmbeddedEventLog.open({ dataDir, readonly: true });
    expect(await reader.read('t', 0, 0, 10)).toHaveLength(1);
    await expect(reader.append([rec('t', 'k', 'v')])).rejects.toMatchObject({ code: 'LOG_READONLY' });
    await expect(reader.commit('g', [])).rejects.toMatchObject({ code: 'LOG_READONLY' });
    await reader.close();
    await writer.close();
  });

  it('continues at the right offsets when another connection appended in between', async () => {
    const dataDir = tempDir();
    const a = EmbeddedEventLog.open({ dataDir });
    const b = EmbeddedEventLog.open({ dataDir });
    await a.append([rec('t', null, '0')]);
    await b.append([rec('t', null, '1'), rec('u', null, 'x')]);
    const [third] = await a.append([rec('t', null, '2')]);
    expect(third!.offset).toBe(2);
    expect((await a.read('t', 0, 0, 10)).map((r) => r.value)).toEqual(['0', '1', '2']);
    await a.close();
    await b.close();
  });

  it('reports cheap stats', async () => {
    const log = open();
    await log.append([rec('a', 'k', 'x'.repeat(100)), rec('b', null, 'y'.repeat(50))]);
    expect(log.stats()).toEqual({ records: 2, topics: 2, bytes: 24 * 2 + 1 + 100 + 50 });
    await log.close();
  });

  it('deletes by age from the head, in bounded transactions, keeping checkpoints and group offsets', async () => {
    const log = open({ defaultPartitions: 2, retention: { maxAgeMs: 1_000 } });
    const records = Array.from({ length: 12_000 }, (_, i) => ({
      ...rec('t', null, `${i}`, i),
      partition: i % 2,
    }));
    await log.append(records, { source: 's', position: 'p' });
    await log.commit('g', [{ topic: 't', partition: 0, offset: 3 }]);
    // One append stores each partition's records as batches of 1,000, removed whole once all of
    // their records are older than the cutoff: partition 0 holds even timestamps (offset o at 2o),
    // partition 1 odd ones (2o + 1).
    const result = await log.enforceRetention(10_999); // keeps timestamps >= 9_999
    // Partition 0: offsets 0..4999 (timestamps up to 9,998) go, 5,000 starts a batch.
    // Partition 1: offset 4,999 (timestamp 9,999) is kept, and with it its batch from 4,000.
    expect(result.deletedRecords).toBe(9_000);
    const [info] = await log.topics();
    expect(info!.partitions).toEqual([
      { partition: 0, startOffset: 5_000, endOffset: 6_000 },
      { partition: 1, startOffset: 4_000, endOffset: 6_000 },
    ]);
    const fromBelowStart = await log.read('t', 0, 0, 2);
    expect(fromBelowStart.map((r) => r.offset)).toEqual([5_000, 5_001]);
    expect(await log.checkpoint('s')).toEqual({ source: 's', position: 'p' });
    expect(await log.committed('g')).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
    expect((await log.lag('g'))[0]).toMatchObject({ committed: 3, records: 1_000 });
    expect(log.stats().records).toBe(3_000);
    expect((await log.enforceRetention(10_999)).deletedRecords).toBe(0);
    const [next] = await log.append([{ ...rec('t', null, 'new', 20_000), partition: 0 }]);
    expect(next!.offset).toBe(6_000);
    await log.close();
  });

  it('deletes by size per topic, oldest records first across partitions', async () => {
    const log = open({ defaultPartitions: 2 });
    const value = 'v'.repeat(76); // 100 bytes as a row, with the overhead
    // Ten appends of ten records, five per partition: each stored as one batch per partition, of
    // 48 bytes of overhead, the codec's name and header ('records', '1'), and its data (a count,
    // then per record a timestamp and three lengths, then the value's bytes).
    const batchBytes = 48 + 'records'.length + 1 + 4 + 5 * (8 + 4 + 4 + 4) + 5 * 76;
    for (let a = 0; a < 10; a++) {
      await log.append(
        Array.from({ length: 10 }, (_, i) => ({ ...rec('big', null, value, 10 * a + i), partition: i % 2 })),
      );
    }
    await log.append([rec('small', null, value)]);
    expect(log.stats().bytes).toBe(20 * batchBytes + 100);
    await log.enforceRetention(0, { maxBytes: 2_050 });
    // 'big' must lose 17 batches to fit (3 × 540 ≤ 2,050 < 4 × 540), the oldest first: the batches
    // of partition 0 end on even timestamps, those of partition 1 one later, so they alternate.
    const [big, small] = await log.topics();
    expect(big!.partitions.map((p) => [p.startOffset, p.endOffset])).toEqual([
      [45, 50],
      [40, 50],
    ]);
    expect(small!.partitions[0]).toEqual({ partition: 0, startOffset: 0, endOffset: 1 });
    expect(log.stats()).toMatchObject({ records: 16, bytes: 3 * batchBytes + 100 });
    await log.close();
  });
});

describe('EmbeddedEventLog crash atomicity', () => {
  const child = (dataDir: string): ChildProcess => {
    const script = `
      const { EmbeddedEventLog } = await import(${JSON.stringify(join(REPO, 'src/log/embedded/sqlite-event-log.ts'))});
      const log = EmbeddedEventLog.open({ dataDir: process.argv[1], defaultPartitions: 3 });
      const checkpoint = await log.checkpoint('kill-test');
      let total = checkpoint === null ? 0 : JSON.parse(checkpoint.position).count;
      for (;;) {
        const n = 1 + Math.floor(Math.random() * 300);
        const records = Array.from({ length: n }, (_, i) => ({
          topic: 'kill', key: 'k' + ((total + i) % 17), value: String(total + i), headers: {}, timestamp: Date.now(),
        }));
        await log.append(records, { source: 'kill-test', position: JSON.stringify({ count: total + n }) });
        total += n;
        process.stdout.write(total + '\\n');
      }`;
    return spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, dataDir], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
  };

  it('after SIGKILL at a random moment, every append is there with its checkpoint or not at all', async () => {
    const dataDir = tempDir();
    for (let round = 0; round < 4; round++) {
      const proc = child(dataDir);
      const exited = once(proc, 'exit');
      const target = 1 + Math.floor(Math.random() * 20_000);
      let acknowledged = 0;
      for await (const line of createInterface({ input: proc.stdout! })) {
        acknowledged = Number(line);
        if (acknowledged >= target) {
          proc.kill('SIGKILL');
          break;
        }
      }
      const [, signal] = await exited;
      expect(signal).toBe('SIGKILL');

      const log = EmbeddedEventLog.open({ dataDir, readonly: true });
      const count = JSON.parse((await log.checkpoint('kill-test'))!.position).count as number;
      expect(count).toBeGreaterThanOrEqual(acknowledged);
      const values: number[] = [];
      for (let partition = 0; partition < 3; partition++) {
        for (let offset = 0; ; ) {
          const page = await log.read('kill', partition, offset, 5_000);
          if (page.length === 0) break;
          values.push(...page.map((r) => Number(r.value)));
          offset = page.at(-1)!.offset + 1;
        }
      }
      expect(values.length).toBe(count);
      expect(new Set(values).size).toBe(count);
      expect(values.reduce((a, b) => Math.max(a, b), -1)).toBe(count - 1);
      await log.close();
    }
  });
});
