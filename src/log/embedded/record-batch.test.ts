import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { BlobRecord, type ValueBytes } from '../../core/blob-record.ts';
import type { AppendItem, AppendRecord, StoredRecord } from '../../core/record.ts';
import { batchCodec } from '../batch-codecs.ts';
import { EMPTY_HEADERS, encodeRecords, RECORDS_CODEC, recordsCodec } from './record-batch.ts';
import { MAX_RECORDS_PER_BATCH } from './sqlite-appender.ts';
import { EmbeddedEventLog } from './sqlite-event-log.ts';

const record = (
  key: string | null,
  value: string | null,
  headers: { [name: string]: string } = {},
  timestamp = 1_700_000_000_123,
): AppendRecord => ({ topic: 't', key, value, headers, timestamp });

/** Encodes as the appender does: headers as JSON text, null when there are none. */
function encode(records: readonly AppendRecord[]) {
  const headers = records.map((r) => (Object.keys(r.headers).length > 0 ? JSON.stringify(r.headers) : null));
  return encodeRecords(
    records,
    headers,
    records.map((_, i) => i),
  );
}

const dirs: string[] = [];
const logs: EmbeddedEventLog[] = [];
afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function openLog(partitions = 1): EmbeddedEventLog {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-record-batch-'));
  dirs.push(dataDir);
  const log = EmbeddedEventLog.open({ dataDir, defaultPartitions: partitions, durable: false });
  logs.push(log);
  return log;
}
function batchRows(log: EmbeddedEventLog): { codec: string; base: number; last: number }[] {
  const db = new Database(log.file, { readonly: true });
  try {
    return db
      .prepare(`SELECT codec, base_offset AS base, id & ${2 ** 43 - 1} AS last FROM batches ORDER BY id`)
      .all() as { codec: string; base: number; last: number }[];
  } finally {
    db.close();
  }
}
async function readAll(
  log: EmbeddedEventLog,
  topic: string,
  partition = 0,
  page = 7,
): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for (let offset = 0; ; ) {
    const got = await log.read(topic, partition, offset, page);
    if (got.length === 0) return out;
    out.push(...got);
    offset = got.at(-1)!.offset + 1;
  }
}

describe('records codec', () => {
  it('renders what was encoded: null keys, tombstones, headers, non-ASCII text, timestamps', () => {
    const records = [
      record('{"id":1}', '{"after":{"name":"Zoë 🚀 ñandú"}}', {}, 1),
      record(null, 'no key'),
      record('{"id":2}', null, { op: 'd', 'trace-id': 'ä' }, 2.5),
      record('', ''),
      record('{"id":3}', 'x'.repeat(70_000), {}, -5),
    ];
    const { header, data, timestamp } = encode(records);
    expect(timestamp).toBe(1_700_000_000_123);
    const opened = batchCodec(RECORDS_CODEC).open(header, data);
    expect(opened.count).toBe(records.length);
    // In order, out of order, and again: readers may start anywhere in a batch.
    for (const i of [0, 1, 2, 3, 4, 2, 0, 4]) {
      const { key, value, headers, timestamp: ts } = records[i]!;
      expect(opened.record(i)).toEqual({ key, value, headers, timestamp: ts });
    }
    expect(opened.record(1).headers).toBe(EMPTY_HEADERS);
    expect(() => opened.record(5)).toThrow(/outside the batch/);
    expect(() => opened.record(-1)).toThrow(/outside the batch/);
  });

  it('gives stored records whose values stay bytes until read, and read as the rendered ones', () => {
    const records = [
      record('{"id":1}', '{"after":{"name":"Zoë 🚀"}}', { h: '1' }, 1),
      record('{"id":2}', null),
      record(null, '{"a":1}'),
    ];
    const { header, data } = encode(records);
    const opened = recordsCodec.open(header, data);
    const stored = [2, 0, 1].map((i) => opened.stored!(i, 'x.public.t', 3, 40 + i));
    const bytes: ValueBytes = { blob: undefined, start: 0, end: 0 };
    // A value is bytes in the blob until read; a tombstone is a plain record.
    expect(BlobRecord.bytesInto(stored[1]!, bytes)).toBe(true);
    expect(bytes.blob!.data.toString('utf8', bytes.start, bytes.end)).toBe(records[0]!.value);
    expect(bytes.blob!.lineFree).toBe(true);
    expect(BlobRecord.bytesInto(stored[2]!, bytes)).toBe(false);
    // Read, spread or serialized, a stored record is the rendered one with its place.
    for (const [n, i] of [2, 0, 1].entries()) {
      const r = stored[n]!;
      const expected = { topic: 'x.public.t', partition: 3, offset: 40 + i, ...opened.record(i) };
      expect({ ...r }).toEqual(expected);
      expect(JSON.parse(JSON.stringify(r))).toEqual(expected);
      expect(r.value).toBe(records[i]!.value);
    }
    // A blob holding a line feed anywhere in its text says so (its values are not copied as lines).
    const pretty = encode([record('k', '{"a":\n1}'), record('k', '{"b":2}')]);
    const second = recordsCodec.open(pretty.header, pretty.data).stored!(1, 't', 0, 1);
    expect(BlobRecord.bytesInto(second, bytes)).toBe(true);
    expect(bytes.blob!.lineFree).toBe(false);
  });

  it('refuses a truncated, padded or garbled blob and an unknown layout, instead of misreading it', () => {
    const { header, data } = encode([record('k1', 'v1'), record('k2', 'v2')]);
    expect(() => recordsCodec.open(header, data.subarray(0, data.length - 1))).toThrow(/announces/);
    expect(() => recordsCodec.open(header, Buffer.concat([data, Buffer.from('!')]))).toThrow(/announces/);
    expect(() => recordsCodec.open(header, data.subarray(0, 3))).toThrow(/malformed/);
    const huge = Buffer.from(data);
    huge.writeUInt32LE(1_000_000, 0);
    expect(() => recordsCodec.open(header, huge)).toThrow(/cannot hold 1000000 records/);
    const negative = Buffer.from(data);
    negative.writeInt32LE(-7, 4 + 2 * 8); // the first key's length
    expect(() => recordsCodec.open(header, negative)).toThrow(/negative length/);
    expect(() => recordsCodec.open('2', data)).toThrow(/layout "2" is not known/);
  });
});

describe('records stored as batches', () => {
  it('stores the records of an append as one batch per partition and reads them back at any page size', async () => {
    const log = openLog(3);
    const records = Array.from({ length: 50 }, (_, i) =>
      record(`{"id":${i % 7}}`, `value ${i} ✓`, i % 5 === 0 ? { n: String(i) } : {}, 1_000 + i),
    );
    const stored = await log.append(records);
    expect(stored.map((r) => r.value)).toEqual(records.map((r) => r.value));
    const rows = batchRows(log);
    expect(rows.every((r) => r.codec === RECORDS_CODEC)).toBe(true);
    expect(rows.length).toBe(new Set(stored.map((r) => r.partition)).size);
    for (let p = 0; p < 3; p++) {
      const expected = stored.filter((r) => r.partition === p);
      for (const page of [1, 3, 1000]) expect(await readAll(log, 't', p, page)).toEqual(expected);
    }
    // From the middle of a batch, as a consumer resuming at a committed offset does.
    const p0 = stored.filter((r) => r.partition === 0);
    expect(await log.read('t', 0, 2, 3)).toEqual(p0.slice(2, 5));
  });

  it('reads the batches of more partitions than it keeps open, in small reads taken in turn', async () => {
    const log = openLog(6);
    const stored = await log.append(
      Array.from({ length: 600 }, (_, i) => record(`{"id":${i}}`, `{"n":${i}}`, {}, 1_000 + i)),
    );
    const next = [0, 0, 0, 0, 0, 0];
    const got: StoredRecord[][] = [[], [], [], [], [], []];
    for (let more = true; more; ) {
      more = false;
      for (let p = 0; p < 6; p++) {
        const page = await log.read('t', p, next[p]!, 7);
        if (page.length === 0) continue;
        more = true;
        got[p]!.push(...page);
        next[p] = page.at(-1)!.offset + 1;
      }
    }
    for (let p = 0; p < 6; p++) {
      expect(got[p]!.map((r) => [r.offset, r.key, r.value])).toEqual(
        stored.filter((r) => r.partition === p).map((r) => [r.offset, r.key, r.value]),
      );
    }
  });

  it('keeps a single record of an append as a row, and mixes rows and batches in offset order', async () => {
    const log = openLog();
    const appended: StoredRecord[] = [];
    appended.push(...(await log.append([record('a', 'single')])));
    appended.push(...(await log.append([record('b', '1'), record('c', '2'), record('d', '3')])));
    appended.push(...(await log.append([record('e', 'single again')])));
    appended.push(...(await log.append([record('f', '4'), record('g', '5')])));
    expect(batchRows(log)).toEqual([
      { codec: RECORDS_CODEC, base: 1, last: 3 },
      { codec: RECORDS_CODEC, base: 5, last: 6 },
    ]);
    for (const page of [1, 2, 4, 100]) expect(await readAll(log, 't', 0, page)).toEqual(appended);
    // A partition read back to rows, then to batches again, still reads in order.
    expect(await log.read('t', 0, 4, 1)).toEqual([appended[4]]);
    expect(await log.read('t', 0, 0, 100)).toEqual(appended);
  });

  it('never puts records around another codec`s batch of the same append into one batch', async () => {
    const log = openLog();
    const copy: AppendItem = {
      kind: 'batch',
      topic: 't',
      count: 2,
      timestamp: 5,
      codec: RECORDS_CODEC,
      ...(({ header, data }) => ({ header, data }))(encode([record('x', 'in'), record('y', 'side')])),
    };
    const items: AppendItem[] = [
      record('a', '0'),
      record('b', '1'),
      copy,
      record('c', '4'),
      record('d', '5'),
    ];
    await log.append(items);
    expect(batchRows(log).map((r) => [r.base, r.last])).toEqual([
      [0, 1],
      [2, 3],
      [4, 5],
    ]);
    expect((await readAll(log, 't')).map((r) => r.value)).toEqual(['0', '1', 'in', 'side', '4', '5']);
  });

  it(`cuts a long run into batches of ${MAX_RECORDS_PER_BATCH}, whose newest timestamp is the batch's`, async () => {
    const log = openLog();
    const n = MAX_RECORDS_PER_BATCH * 2 + 10;
    await log.append(Array.from({ length: n }, (_, i) => record(null, `${i}`, {}, i)));
    const db = new Database(log.file, { readonly: true });
    const rows = db.prepare('SELECT base_offset AS base, timestamp FROM batches ORDER BY id').all();
    db.close();
    expect(rows).toEqual([
      { base: 0, timestamp: MAX_RECORDS_PER_BATCH - 1 },
      { base: MAX_RECORDS_PER_BATCH, timestamp: 2 * MAX_RECORDS_PER_BATCH - 1 },
      { base: 2 * MAX_RECORDS_PER_BATCH, timestamp: n - 1 },
    ]);
    expect((await readAll(log, 't', 0, 999)).map((r) => r.offset)).toEqual(
      Array.from({ length: n }, (_, i) => i),
    );
  });

  it('reads from below the start after retention removed batches, and from an offset past the end', async () => {
    const log = openLog();
    await log.append(Array.from({ length: 10 }, (_, i) => record(null, `old ${i}`, {}, 1)));
    await log.append(Array.from({ length: 10 }, (_, i) => record(null, `new ${i}`, {}, 10_000)));
    expect(await log.enforceRetention(5_000, { maxAgeMs: 1_000 })).toMatchObject({ deletedRecords: 10 });
    expect((await log.read('t', 0, 0, 3)).map((r) => r.offset)).toEqual([10, 11, 12]);
    expect(await log.read('t', 0, 20, 5)).toEqual([]);
    expect(log.stats().records).toBe(10);
  });

  it('is read by a read-only instance while the writer appends', async () => {
    const log = openLog();
    const reader = EmbeddedEventLog.open({ dataDir: join(log.file, '..'), readonly: true });
    logs.push(reader);
    const all: StoredRecord[] = [];
    let offset = 0;
    for (let a = 0; a < 20; a++) {
      all.push(
        ...(await log.append(Array.from({ length: 1 + (a % 4) }, (_, i) => record(null, `${a}.${i}`)))),
      );
      const got = await reader.read('t', 0, offset, 1000);
      offset += got.length;
      expect(got).toEqual(all.slice(offset - got.length, offset));
    }
    expect(offset).toBe(all.length);
  });
});
