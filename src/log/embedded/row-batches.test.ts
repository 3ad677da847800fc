import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { AppendBatch, AppendItem, AppendRecord, StoredRecord } from '../../core/record.ts';
import { type BatchCodec, registerBatchCodec } from '../batch-codecs.ts';
import { partitionForKey } from '../partitioner.ts';
import { RetentionSweeper } from './retention.ts';
import { EmbeddedEventLog, type EmbeddedEventLogOptions } from './sqlite-event-log.ts';
import { APPLICATION_ID } from './sqlite-schema.ts';

/**
 * Test codec: header = `{"timestamp": n}`, data = one value per line; record i has key `{"id":"<value>"}`
 * and value `<value>`. Counts `open` calls so the tests can see the read cache at work.
 */
let opens = 0;
const lines: BatchCodec = {
  open(header, data) {
    opens++;
    const { timestamp } = JSON.parse(header) as { timestamp: number };
    const values = Buffer.from(data).toString('utf8').split('\n');
    return {
      count: values.length,
      record: (i) => {
        const value = values[i];
        if (value === undefined) throw new RangeError(`no record ${i}`);
        return { key: JSON.stringify({ id: value }), value, headers: { codec: 'test' }, timestamp };
      },
    };
  },
};
registerBatchCodec('test-lines', lines);
registerBatchCodec('test-broken', {
  open: () => {
    throw new SyntaxError('bad header');
  },
});

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-batches-'));
  dirs.push(dir);
  return dir;
};
const logs: EmbeddedEventLog[] = [];
const open = (options: Partial<EmbeddedEventLogOptions> & { dataDir: string }) => {
  const log = EmbeddedEventLog.open(options);
  logs.push(log);
  return log;
};
afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const rec = (topic: string, value: string, timestamp = 1_000): AppendRecord => ({
  topic,
  key: null,
  value,
  headers: {},
  timestamp,
});
const batch = (topic: string, values: string[], timestamp = 1_000, codec = 'test-lines'): AppendBatch => ({
  kind: 'batch',
  topic,
  count: values.length,
  timestamp,
  codec,
  header: JSON.stringify({ timestamp }),
  data: new TextEncoder().encode(values.join('\n')),
});
const values = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** What a read should return for the items appended to a one-partition topic, in offset order. */
function expected(topic: string, items: readonly AppendItem[]): StoredRecord[] {
  const out: StoredRecord[] = [];
  for (const item of items) {
    if ('kind' in item) {
      const text = new TextDecoder().decode(item.data).split('\n');
      for (const value of text) {
        out.push({
          topic,
          partition: 0,
          offset: out.length,
          key: JSON.stringify({ id: value }),
          value,
          headers: { codec: 'test' },
          timestamp: item.timestamp,
        });
      }
    } else {
      out.push({ ...item, topic, partition: 0, offset: out.length });
    }
  }
  return out;
}

async function readAll(log: EmbeddedEventLog, topic: string, partition = 0): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (let offset = 0; ; ) {
    const page = await log.read(topic, partition, offset, 3);
    if (page.length === 0) return out;
    out.push(...page);
    offset = page.at(-1)!.offset + 1;
  }
}

/** Runs `work` on a second connection to the same file, to look at (or tamper with) the tables. */
function withDb<T>(log: EmbeddedEventLog, work: (db: Database.Database) => T): T {
  const db = new Database(log.file);
  try {
    return work(db);
  } finally {
    db.close();
  }
}
const count = (log: EmbeddedEventLog, table: 'records' | 'batches') =>
  withDb(log, (db) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get());

describe('row batches', () => {
  it('gives batches dense offsets among records, returns only the plain records, reads any slice', async () => {
    const dataDir = tempDir();
    const log = open({ dataDir });
    const first: AppendItem[] = [rec('t', 'a'), batch('t', values('b', 5)), rec('t', 'c')];
    const stored = await log.append(first);
    expect(stored.map((r) => [r.offset, r.value])).toEqual([
      [0, 'a'],
      [6, 'c'],
    ]);
    // Adjacent batches, a batch of one, a batch first and last in an append.
    const second: AppendItem[] = [
      batch('t', values('d', 3)),
      batch('t', ['e']),
      rec('t', 'f'),
      rec('t', 'g', 2_000),
      batch('t', values('h', 4), 3_000),
    ];
    expect((await log.append(second)).map((r) => r.offset)).toEqual([11, 12]);
    const all = expected('t', [...first, ...second]);
    expect(all).toHaveLength(17);
    expect((await log.topics())[0]!.partitions[0]).toMatchObject({ startOffset: 0, endOffset: 17 });
    expect(log.stats().records).toBe(17);
    for (let offset = 0; offset <= all.length; offset++) {
      for (const max of [1, 2, 3, 4, 5, 7, 16, 100]) {
        expect(await log.read('t', 0, offset, max), `read(${offset}, ${max})`).toEqual(
          all.slice(offset, offset + max),
        );
      }
    }
    // The writer reloads its offsets from the database after another connection wrote.
    const other = open({ dataDir });
    await other.append([batch('t', ['x', 'y'])]);
    expect((await log.append([rec('t', 'z')]))[0]!.offset).toBe(19);
    expect((await log.read('t', 0, 16, 10)).map((r) => r.value)).toEqual(['h3', 'x', 'y', 'z']);
  });

  it('counts a batch in stats bytes and keeps records-only partitions as they were', async () => {
    const log = open({ dataDir: tempDir() });
    await log.append([rec('plain', 'v')]);
    const bytesBefore = log.stats().bytes;
    const b = batch('t', ['ab', 'cd']);
    await log.append([b]);
    expect(log.stats().bytes - bytesBefore).toBe(48 + 'test-lines'.length + b.header.length + 5);
    expect(log.topicStats().find((t) => t.topic === 't')!.records).toBe(2);
    expect(await log.read('plain', 0, 0, 10)).toEqual([{ ...rec('plain', 'v'), partition: 0, offset: 0 }]);
    expect([count(log, 'records'), count(log, 'batches')]).toEqual([1, 1]);
  });

  it('opens a batch once while a consumer reads it in many small reads', async () => {
    const log = open({ dataDir: tempDir() });
    await log.append([batch('t', values('v', 20_000)), rec('t', 'after')]);
    const before = opens;
    let read = 0;
    for (let offset = 0; ; ) {
      const page = await log.read('t', 0, offset, 1_000);
      if (page.length === 0) break;
      read += page.length;
      offset = page.at(-1)!.offset + 1;
    }
    expect(read).toBe(20_001);
    expect(opens - before).toBe(1);
  });

  it('expands a batch by key when its topic has several partitions', async () => {
    const log = open({ dataDir: tempDir(), defaultPartitions: 4 });
    const items = values('k', 40);
    const stored = await log.append([rec('t', 'first'), batch('t', items, 5_000), rec('t', 'last')]);
    expect(stored.map((r) => r.value)).toEqual(['first', ...items, 'last']);
    for (const r of stored.slice(1, -1)) {
      expect(r.partition).toBe(partitionForKey(r.key!, 4));
      expect(r).toMatchObject({ headers: { codec: 'test' }, timestamp: 5_000 });
    }
    expect(new Set(stored.map((r) => r.partition)).size).toBeGreaterThan(1);
    for (let p = 0; p < 4; p++) {
      expect(await readAll(log, 't', p)).toEqual(stored.filter((r) => r.partition === p));
    }
    // Rendered, then stored like any records of an append: one `records` batch per partition's run.
    const codecs = withDb(log, (db) =>
      db.prepare('SELECT codec, count(*) AS n FROM batches GROUP BY codec').all(),
    );
    expect(codecs).toEqual([{ codec: 'records', n: expect.any(Number) }]);
    expect((codecs as { n: number }[])[0]!.n).toBeLessThanOrEqual(4);
  });

  it('refuses a malformed batch or an unknown codec on append without storing anything', async () => {
    const log = open({ dataDir: tempDir() });
    await log.append([rec('t', 'a')], { source: 's', position: '1' });
    const bad: [AppendBatch, string][] = [
      [{ ...batch('t', ['x']), count: 0 }, 'LOG_INVALID_ARGUMENT'],
      [{ ...batch('t', ['x']), count: 1.5 }, 'LOG_INVALID_ARGUMENT'],
      [batch('t', ['x'], 1_000, 'no-such-codec'), 'LOG_UNKNOWN_CODEC'],
    ];
    for (const [item, code] of bad) {
      await expect(log.append([rec('t', 'b'), item], { source: 's', position: '2' })).rejects.toMatchObject({
        code,
      });
    }
    const multi = open({ dataDir: tempDir(), defaultPartitions: 2 });
    await expect(multi.append([{ ...batch('t', ['x', 'y']), count: 3 }])).rejects.toMatchObject({
      code: 'LOG_INVALID_ARGUMENT',
    });
    expect(await multi.topics()).toEqual([]);
    expect(await log.checkpoint('s')).toEqual({ source: 's', position: '1' });
    expect((await log.append([rec('t', 'c')]))[0]!.offset).toBe(1);
  });

  it('lets a read-only instance see batches, also those appended after it opened', async () => {
    const dataDir = tempDir();
    const writer = open({ dataDir });
    const items: AppendItem[] = [rec('t', 'a'), batch('t', values('b', 4)), rec('t', 'c')];
    await writer.append(items);
    const reader = open({ dataDir, readonly: true });
    expect(await readAll(reader, 't')).toEqual(expected('t', items));
    await writer.append([batch('t', ['d'])]);
    expect(await reader.read('t', 0, 5, 10)).toEqual(expected('t', [...items, batch('t', ['d'])]).slice(5));
  });

  it('names the codec when a stored batch has a codec this build does not know, or cannot be rendered', async () => {
    const dataDir = tempDir();
    const log = open({ dataDir });
    await log.append([rec('t', 'a'), rec('u', 'a')]);
    withDb(log, (db) => {
      const insert = db.prepare(
        `INSERT INTO batches (id, base_offset, timestamp, codec, header, data)
         SELECT (partition_id << 43) + ?, ?, 1000, ?, '{"timestamp":1000}', X'6162'
         FROM partitions JOIN topics USING (topic_id) WHERE name = ?`,
      );
      insert.run(2, 1, 'future-codec', 't');
      insert.run(2, 1, 'test-broken', 'u');
      db.exec('UPDATE partitions SET end_offset = 3');
    });
    const reader = open({ dataDir, readonly: true });
    expect((await reader.read('t', 0, 0, 1)).map((r) => r.value)).toEqual(['a']);
    const unknown = await reader.read('t', 0, 0, 10).catch((e: unknown) => e);
    expect(unknown).toMatchObject({ name: 'LogError', code: 'LOG_UNKNOWN_CODEC' });
    expect((unknown as Error).message).toContain('"future-codec"');
    const broken = await reader.read('u', 0, 1, 10).catch((e: unknown) => e);
    expect(broken).toMatchObject({ name: 'LogError', code: 'LOG_CORRUPT' });
    expect((broken as Error).message).toMatch(/offsets 1\.\.2 of u\/0 .* by codec test-broken: bad header/);
  });
});

describe('retention of row batches', () => {
  /** Offsets 0 | 1-5 | 6 | 7-10 | 11 with the given timestamps (record, batch, record, batch, record). */
  const layout = (t: [number, number, number, number, number]): AppendItem[] => [
    rec('t', 'r0', t[0]),
    batch('t', values('a', 5), t[1]),
    rec('t', 'r6', t[2]),
    batch('t', values('b', 4), t[3]),
    rec('t', 'r11', t[4]),
  ];
  const startOf = async (log: EmbeddedEventLog) => (await log.topics())[0]!.partitions[0]!.startOffset;

  it('deletes old batches whole by age and stops at a young one', async () => {
    const log = open({ dataDir: tempDir() });
    const items = layout([100, 100, 100, 300, 100]);
    await log.append(items);
    const all = expected('t', items);
    expect(await log.enforceRetention(400, { maxAgeMs: 200 })).toMatchObject({ deletedRecords: 7 });
    expect(await startOf(log)).toBe(7);
    expect(await log.read('t', 0, 0, 2)).toEqual(all.slice(7, 9));
    expect(log.stats().records).toBe(5);
    expect(await log.enforceRetention(1_000, { maxAgeMs: 200 })).toMatchObject({ deletedRecords: 5 });
    expect(await startOf(log)).toBe(12);
    expect(log.stats()).toMatchObject({ records: 0, bytes: 0 });
    expect(count(log, 'batches')).toBe(0);
  });

  it.each([1, 2, 3, 4, 7])('never splits a batch across its deletion windows (chunk %i)', async (chunk) => {
    for (const [timestamps, start] of [
      [[100, 100, 300, 300, 300], 6],
      [[100, 300, 300, 300, 300], 1],
      [[100, 100, 100, 100, 300], 11],
      [[100, 100, 100, 300, 300], 7],
    ] as [[number, number, number, number, number], number][]) {
      const log = open({ dataDir: tempDir() });
      await log.append(layout(timestamps));
      const result = withDb(log, (db) => new RetentionSweeper(db, chunk).enforce({ maxAgeMs: 100 }, 300));
      expect([result.deletedRecords, await startOf(log)], `${timestamps}`).toEqual([start, start]);
      expect((await log.read('t', 0, 0, 1))[0]!.offset).toBe(start);
    }
  });

  it('deletes whole batches by size and lands start_offset on a boundary', async () => {
    for (const chunk of [1, 2, 5_000]) {
      const log = open({ dataDir: tempDir() });
      const items = layout([100, 200, 300, 400, 500]);
      await log.append(items);
      const total = log.stats().bytes;
      const recordBytes = 24 + 2; // 'r0', 'r6'
      const db = new Database(log.file);
      const sweeper = new RetentionSweeper(db, chunk);
      // One byte over: the first record goes.
      expect(sweeper.enforce({ maxBytes: total - 1 }, 0)).toEqual({
        deletedRecords: 1,
        deletedBytes: recordBytes,
      });
      // One byte more over: the whole first batch goes, never part of it.
      const afterRecord = log.stats().bytes;
      const result = sweeper.enforce({ maxBytes: afterRecord - 1 }, 0);
      expect(result.deletedRecords).toBe(5);
      expect(await startOf(log)).toBe(6);
      expect(log.stats()).toMatchObject({ records: 6, bytes: afterRecord - result.deletedBytes });
      // Everything but the last record: start lands after the second batch.
      sweeper.enforce({ maxBytes: 24 + 3 }, 0);
      expect(await startOf(log)).toBe(11);
      expect(await log.read('t', 0, 0, 10)).toEqual(expected('t', items).slice(11));
      db.close();
    }
  });
});

describe('format 1 logs', () => {
  const V1 = `
CREATE TABLE topics (topic_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, partitions INTEGER NOT NULL,
  created_at INTEGER NOT NULL);
CREATE TABLE partitions (partition_id INTEGER PRIMARY KEY, topic_id INTEGER NOT NULL, partition INTEGER NOT NULL,
  start_offset INTEGER NOT NULL DEFAULT 0, end_offset INTEGER NOT NULL DEFAULT 0, bytes INTEGER NOT NULL DEFAULT 0,
  UNIQUE (topic_id, partition));
CREATE TABLE records (id INTEGER PRIMARY KEY, key TEXT, value TEXT, headers TEXT, timestamp INTEGER NOT NULL);
CREATE TABLE checkpoints (source TEXT PRIMARY KEY, position TEXT NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE group_offsets (group_name TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
  next_offset INTEGER NOT NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (group_name, topic, partition)) WITHOUT ROWID;
INSERT INTO topics VALUES (1, 't', 1, 0);
INSERT INTO partitions VALUES (1, 1, 0, 0, 2, 50);
INSERT INTO records VALUES ((1 << 43) + 0, NULL, 'old0', NULL, 10), ((1 << 43) + 1, 'k', 'old1', '{"h":"1"}', 11);
INSERT INTO checkpoints VALUES ('pg', 'p1', 0);
`;

  it('is read as is by a read-only open and migrated by the writer, keeping its records', async () => {
    const dataDir = tempDir();
    const db = new Database(join(dataDir, 'log.sqlite'));
    db.pragma('journal_mode = WAL');
    db.exec(V1);
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma('user_version = 1');
    db.close();
    const old = [
      { topic: 't', partition: 0, offset: 0, key: null, value: 'old0', headers: {}, timestamp: 10 },
      { topic: 't', partition: 0, offset: 1, key: 'k', value: 'old1', headers: { h: '1' }, timestamp: 11 },
    ];

    const reader = open({ dataDir, readonly: true });
    expect(await reader.read('t', 0, 0, 10)).toEqual(old);
    expect(await reader.read('t', 0, 1, 10)).toEqual(old.slice(1));

    const writer = open({ dataDir });
    expect(withDb(writer, (db) => db.pragma('user_version', { simple: true }))).toBe(2);
    expect(count(writer, 'batches')).toBe(0);
    expect(await writer.checkpoint('pg')).toEqual({ source: 'pg', position: 'p1' });
    await writer.append([batch('t', ['n0', 'n1'], 20)]);
    const batchRecord = (offset: number, value: string) => ({
      topic: 't',
      partition: 0,
      offset,
      key: JSON.stringify({ id: value }),
      value,
      headers: { codec: 'test' },
      timestamp: 20,
    });
    const all = [...old, batchRecord(2, 'n0'), batchRecord(3, 'n1')];
    expect(await readAll(writer, 't')).toEqual(all);
    // The reader opened before the migration finds the new table too.
    expect(await readAll(reader, 't')).toEqual(all);
    await writer.close();
    expect(await readAll(open({ dataDir }), 't')).toEqual(all);
  });
});
