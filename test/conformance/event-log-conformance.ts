import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlobRecord, type ValueBytes } from '../../src/core/blob-record.ts';
import { isTributaryError } from '../../src/core/errors.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import type { AppendRecord, StoredRecord } from '../../src/core/record.ts';
import { partitionForKey } from '../../src/log/partitioner.ts';

export interface EventLogUnderTest {
  readonly log: EventLog;
  /** Opens a fresh instance on the same storage; the suite closes the previous one first. */
  reopen(): Promise<EventLog>;
  /** Closes whatever is still open and removes the storage. */
  cleanup(): Promise<void>;
}

/**
 * The guarantees written on the `EventLog` interface, checked against one implementation. `open` must
 * give a new, empty log each time whose topics get more than one partition, so key placement is tested.
 */
export function eventLogConformance(name: string, open: () => Promise<EventLogUnderTest>): void {
  describe(`EventLog conformance: ${name}`, () => {
    let subject: EventLogUnderTest;
    let log: EventLog;
    let topicSeq = 0;
    let topic: string;

    beforeEach(async () => {
      subject = await open();
      log = subject.log;
      topic = `conformance.t${++topicSeq}`;
    });
    afterEach(async () => {
      await subject.cleanup();
    });

    const reopen = async () => {
      await log.close();
      log = await subject.reopen();
      return log;
    };
    const record = (
      key: string | null,
      value: string | null,
      extra: Partial<AppendRecord> = {},
    ): AppendRecord => ({
      topic,
      key,
      value,
      headers: {},
      timestamp: 1_700_000_000_000,
      ...extra,
    });
    const partitionCount = async (name = topic) =>
      (await log.topics()).find((t) => t.topic === name)?.partitions.length ?? 0;
    const readAll = async (partition: number, from = 0) => {
      const all: StoredRecord[] = [];
      for (;;) {
        const page = await log.read(topic, partition, from + all.length, 1_000);
        if (page.length === 0) return all;
        all.push(...page);
      }
    };

    it('gives dense offsets from 0 in append order, and reads back what append returned', async () => {
      const first = await log.append([
        record(null, 'a', { partition: 0 }),
        record(null, 'b', { partition: 0 }),
      ]);
      const second = await log.append([record(null, 'c', { partition: 0 })]);
      expect([...first, ...second].map((r) => r.offset)).toEqual([0, 1, 2]);
      const read = await log.read(topic, 0, 0, 10);
      expect(read).toEqual([...first, ...second]);
      expect(read.map((r) => r.value)).toEqual(['a', 'b', 'c']);
    });

    it('round-trips keys, tombstones, headers, timestamps and non-ASCII text', async () => {
      const records = [
        record('{"id":1}', '{"name":"Zoë 😀"}', {
          headers: { 'content-type': 'application/json' },
          timestamp: 42,
        }),
        record('{"id":1}', null),
        record(null, 'no key', { partition: 0 }),
      ];
      const stored = await log.append(records);
      for (const [i, r] of stored.entries()) {
        const [back] = await log.read(topic, r.partition, r.offset, 1);
        expect(back).toEqual({ ...records[i], partition: r.partition, offset: r.offset });
      }
    });

    it('gives values as their bytes until read: a reader may take them without decoding', async () => {
      const values = ['{"name":"Zoë 😀"}', 'plain', '{"line":"a\\nb"}'];
      await log.append(values.map((v) => record(null, v, { partition: 0 })));
      const read = await log.read(topic, 0, 0, 10);
      const bytes: ValueBytes = { blob: undefined, start: 0, end: 0 };
      for (const [i, r] of read.entries()) {
        expect(BlobRecord.bytesInto(r, bytes)).toBe(true);
        expect(bytes.blob!.data.toString('utf8', bytes.start, bytes.end)).toBe(values[i]);
        expect(r.value).toBe(values[i]);
      }
    });

    it('puts every record of a key in the same partition, the one Kafka would choose', async () => {
      const keys = Array.from({ length: 40 }, (_, i) => `{"id":${i}}`);
      const first = await log.append(keys.map((k) => record(k, 'v1')));
      const second = await log.append(keys.map((k) => record(k, 'v2')));
      const partitions = await partitionCount();
      expect(partitions).toBeGreaterThan(1);
      for (const [i, key] of keys.entries()) {
        expect(second[i]!.partition).toBe(first[i]!.partition);
        expect(first[i]!.partition).toBe(partitionForKey(key, partitions));
      }
      expect(new Set(first.map((r) => r.partition)).size).toBeGreaterThan(1);
    });

    it('honours an explicit partition and rejects one out of range without storing anything', async () => {
      await log.append([record('k', 'ok', { partition: 1 })], { source: 'src', position: '1' });
      const partitions = await partitionCount();
      const error = await log
        .append([record('k', 'lost'), record('k', 'bad', { partition: partitions })], {
          source: 'src',
          position: '2',
        })
        .catch((e: unknown) => e);
      expect(isTributaryError(error)).toBe(true);
      expect(await log.checkpoint('src')).toEqual({ source: 'src', position: '1' });
      const ends = (await log.topics()).find((t) => t.topic === topic)!.partitions.map((p) => p.endOffset);
      expect(ends.reduce((a, b) => a + b, 0)).toBe(1);
      const next = await log.append([record(null, 'after', { partition: 1 })]);
      expect(next[0]!.offset).toBe(1);
    });

    it('stores the checkpoint with the records: after reopening they agree', async () => {
      let count = 0;
      for (let batch = 1; batch <= 5; batch++) {
        const records = Array.from({ length: batch * 3 }, (_, i) => record(`k${i}`, `${count + i}`));
        count += records.length;
        await log.append(records, { source: 'pg', position: JSON.stringify({ count }) });
      }
      await log.append([], { source: 'other', position: 'x' });
      await reopen();
      const checkpoint = await log.checkpoint('pg');
      expect(JSON.parse(checkpoint!.position)).toEqual({ count });
      const info = (await log.topics()).find((t) => t.topic === topic)!;
      const values: number[] = [];
      for (const p of info.partitions)
        values.push(...(await readAll(p.partition)).map((r) => Number(r.value)));
      expect(values.sort((a, b) => a - b)).toEqual(Array.from({ length: count }, (_, i) => i));
      expect(await log.checkpoint('other')).toEqual({ source: 'other', position: 'x' });
      expect(await log.checkpoint('never-written')).toBeNull();
    });

    it('pages through a partition with read(offset, max)', async () => {
      await log.append(Array.from({ length: 25 }, (_, i) => record(null, `${i}`, { partition: 0 })));
      const pages = [
        await log.read(topic, 0, 0, 10),
        await log.read(topic, 0, 10, 10),
        await log.read(topic, 0, 20, 10),
      ];
      expect(pages.map((p) => p.length)).toEqual([10, 10, 5]);
      expect(pages.flat().map((r) => r.offset)).toEqual(Array.from({ length: 25 }, (_, i) => i));
      expect(await log.read(topic, 0, 25, 10)).toEqual([]);
      expect(await log.read(topic, 0, 1_000, 10)).toEqual([]);
      expect((await log.read(topic, 0, 7, 1))[0]!.value).toBe('7');
      expect(await log.read('conformance.unknown-topic', 0, 0, 10)).toEqual([]);
    });

    it('reports topics with start and end offsets per partition', async () => {
      await log.append([record(null, 'a', { partition: 0 }), record(null, 'b', { partition: 0 })]);
      await log.append([record(null, 'c', { partition: 1 })]);
      const info = (await log.topics()).find((t) => t.topic === topic)!;
      expect(info.partitions.map((p) => p.partition)).toEqual(info.partitions.map((_, i) => i));
      expect(info.partitions[0]).toEqual({ partition: 0, startOffset: 0, endOffset: 2 });
      expect(info.partitions[1]).toEqual({ partition: 1, startOffset: 0, endOffset: 1 });
      expect(info.partitions.slice(2).every((p) => p.endOffset === 0)).toBe(true);
    });

    it('commits group positions, reads them back and computes lag', async () => {
      await log.append(Array.from({ length: 6 }, (_, i) => record(null, `${i}`, { partition: 0 })));
      await log.append([record(null, 'x', { partition: 1 })]);
      expect(await log.committed('g1')).toEqual([]);
      expect(await log.lag('g1')).toEqual([]);
      await log.commit('g1', [{ topic, partition: 0, offset: 2 }]);
      await log.commit('g1', [{ topic, partition: 0, offset: 4 }]);
      await log.commit('g2', [{ topic, partition: 0, offset: 6 }]);
      expect(await log.committed('g1')).toEqual([{ topic, partition: 0, offset: 4 }]);
      const lag = await log.lag('g1');
      expect(lag.length).toBe(await partitionCount());
      expect(lag[0]).toEqual({ topic, partition: 0, committed: 4, endOffset: 6, records: 2 });
      expect(lag[1]).toMatchObject({ topic, partition: 1, endOffset: 1, records: 1 });
      expect((await log.lag('g2'))[0]).toMatchObject({ committed: 6, records: 0 });
    });

    it('keeps records, topics, checkpoints and group positions across reopening', async () => {
      const stored = await log.append([record('a', '1'), record('b', '2'), record('c', '3')], {
        source: 's',
        position: 'p1',
      });
      await log.commit('g', [{ topic, partition: stored[0]!.partition, offset: 1 }]);
      const topicsBefore = await log.topics();
      await reopen();
      expect(await log.topics()).toEqual(topicsBefore);
      expect(await log.checkpoint('s')).toEqual({ source: 's', position: 'p1' });
      expect(await log.committed('g')).toEqual([{ topic, partition: stored[0]!.partition, offset: 1 }]);
      for (const r of stored) expect((await log.read(topic, r.partition, r.offset, 1))[0]).toEqual(r);
      const more = await log.append([record(null, '4', { partition: 0 })]);
      const before = topicsBefore.find((t) => t.topic === topic)!.partitions[0]!.endOffset;
      expect(more[0]!.offset).toBe(before);
    });

    it('closes idempotently', async () => {
      await log.append([record('k', 'v')]);
      await log.close();
      await log.close();
      await expect(log.append([record('k', 'v')])).rejects.toSatisfy(isTributaryError);
    });
  });
}
