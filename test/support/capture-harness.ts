import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { loadConfig } from '../../src/config/config-loader.ts';
import type { TributaryConfig } from '../../src/config/config-schema.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';

export const quietLogger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export function tempDir(prefix = 'tributary-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Temporary directories made during a test file: `make()` one, `removeAll()` in `afterAll`. */
export function tempDirs(prefix?: string): { make(): string; removeAll(): void } {
  const made: ReturnType<typeof tempDir>[] = [];
  return {
    make: () => {
      const d = tempDir(prefix);
      made.push(d);
      return d.path;
    },
    removeAll: () => {
      for (const d of made.splice(0)) d.remove();
    },
  };
}

export function captureConfig(
  url: string,
  dataDir: string,
  settings: Record<string, unknown> = {},
): TributaryConfig {
  return loadConfig({ env: {}, cwd: dataDir, flags: { 'source.url': url, dataDir, ...settings } });
}

export async function runCapture(config: TributaryConfig): Promise<RunningCapture> {
  return startCapture(config, { logger: quietLogger, statusIntervalMs: 200 });
}

/** Polls a condition until it holds: waiting on an observable state, never a fixed sleep. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every record of a topic, all partitions, in offset order per partition. */
export async function readTopic(log: EventLog, topic: string): Promise<StoredRecord[]> {
  const info = (await log.topics()).find((t) => t.topic === topic);
  if (!info) return [];
  const out: StoredRecord[] = [];
  // Up to the end the log reported, then on until a read is empty: a read that returns less than
  // the end says is waited on (15 s for the whole topic), not taken for the end.
  const deadline = Date.now() + 15_000;
  for (const p of info.partitions) {
    let offset = p.startOffset;
    for (;;) {
      const batch = await log.read(topic, p.partition, offset, 5000);
      if (batch.length === 0) {
        if (offset >= p.endOffset) break;
        if (Date.now() > deadline) {
          throw new Error(
            `${topic}/${p.partition}: nothing to read at ${offset}, below its end ${p.endOffset}`,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      out.push(...batch);
      offset = batch[batch.length - 1]!.offset + 1;
    }
  }
  return out;
}

/** The last `count` records (at most) of each partition of a topic. */
export async function readTopicTail(log: EventLog, topic: string, count: number): Promise<StoredRecord[]> {
  const info = (await log.topics()).find((t) => t.topic === topic);
  if (!info) return [];
  const out: StoredRecord[] = [];
  for (const p of info.partitions) {
    out.push(...(await log.read(topic, p.partition, Math.max(p.startOffset, p.endOffset - count), count)));
  }
  return out;
}

export async function recordCount(log: EventLog, topic: string): Promise<number> {
  const info = (await log.topics()).find((t) => t.topic === topic);
  return info ? info.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0) : 0;
}

/** Records of a topic in a data directory, opened read-only; 0 before the first run creates the log. */
export async function recordCountIn(dataDir: string, topic: string): Promise<number> {
  let log: EmbeddedEventLog;
  try {
    log = EmbeddedEventLog.open({ dataDir, readonly: true });
  } catch {
    return 0;
  }
  try {
    return await recordCount(log, topic);
  } finally {
    await log.close();
  }
}

/** Waits until a topic holds at least `count` records and returns them all. */
export async function waitForRecords(
  log: EventLog,
  topic: string,
  count: number,
  timeoutMs = 60_000,
): Promise<StoredRecord[]> {
  await waitFor(
    async () => (await recordCount(log, topic)) >= count,
    `${count} records in ${topic}`,
    timeoutMs,
  );
  return readTopic(log, topic);
}

export interface Envelope {
  before: Record<string, unknown> | null;
  after: Record<string, unknown> | null;
  source: Record<string, unknown>;
  op: string;
  ts_ms: number;
  transaction: { id: string; total_order: number; data_collection_order: number } | null;
}

export function envelope(record: StoredRecord): Envelope {
  if (record.value === null) throw new Error(`record ${record.offset} is a tombstone`);
  return JSON.parse(record.value) as Envelope;
}

/** Runs `fn` on the log of a data directory, opened read-only as the CLI's readers do. */
export async function withLog<T>(dataDir: string, fn: (log: EmbeddedEventLog) => Promise<T>): Promise<T> {
  const log = EmbeddedEventLog.open({ dataDir, readonly: true });
  try {
    return await fn(log);
  } finally {
    await log.close();
  }
}
