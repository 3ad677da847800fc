/**
 * The contract every `Sink` keeps (src/sinks/sink.ts), checked by driving the sink as the worker
 * does: one target transaction per batch (the records the target already holds are skipped, as in
 * `batch-handler.ts`), records read from their JSON text as the worker reads them.
 *
 * Every kind's test calls `sinkConformance` with a factory for a fresh sink on table
 * `public.items (id int primary key, name text, qty int, big int8, price numeric)` and a reader
 * of what the target holds for it (values as text: `big` with all its digits, `price` as written).
 */
import { describe, expect, it } from 'vitest';
import type { ConsumerRecord } from '../../src/consumers/define-consumer.ts';
import type { TargetSession } from '../../src/consumers/transactional.ts';
import { partitionKey } from '../../src/consumers/transactional.ts';
import { consumerRecord } from '../../src/consumers/worker/lazy-record.ts';
import type { StoredRecord } from '../../src/core/record.ts';
import type { Sink } from '../../src/sinks/sink.ts';

export const TOPIC = 'shop.public.items';
export const GROUP = 'conformance';

export interface ItemRow {
  readonly name: string | null;
  readonly qty: string | null;
  readonly big: string | null;
  readonly price: string | null;
}

export interface SinkUnderTest {
  readonly sink: Sink<unknown>;
  /** The target's rows of `items` by id (as text). */
  rows(): Promise<Map<string, ItemRow>>;
  close(): Promise<void>;
}

export interface ConformanceOptions {
  /** At least once towards the target (webhook): the reader dedupes, the offsets still count. */
  readonly atLeastOnce?: boolean;
  /**
   * The columns the sink keeps of a row, when not all (a service keeps what its figures need:
   * inventory the name and the stock); `qty` must be one of them. Default: all four.
   */
  readonly columns?: readonly (keyof ItemRow)[];
  /** Orders a truncate with the changes of other partitions by LSN (the truncate fence). */
  readonly truncateFence?: boolean;
}

/** A row change of `items` as the capture writes it (JSON text, so `big` keeps its digits). */
export function itemRecord(
  offset: number,
  op: 'c' | 'u' | 'd' | 't',
  id: number,
  row?: { name: string; qty: number; big: string; price: string },
  partition = 0,
  lsn = offset,
): StoredRecord {
  const source = `{"version":"0.1.0","connector":"postgresql","name":"shop","ts_ms":1,"snapshot":"false","db":"shop","schema":"public","table":"items","txId":1,"lsn":${lsn}}`;
  const after = row
    ? `{"id":${id},"name":${JSON.stringify(row.name)},"qty":${row.qty},"big":${row.big},"price":${JSON.stringify(row.price)}}`
    : 'null';
  const before = op === 'd' ? `{"id":${id},"name":null,"qty":null,"big":null,"price":null}` : 'null';
  const value = `{"before":${before},"after":${op === 'd' || op === 't' ? 'null' : after},"source":${source},"op":"${op}","ts_ms":1}`;
  return {
    topic: TOPIC,
    partition,
    offset,
    key: op === 't' ? null : `{"id":${id}}`,
    value,
    headers: {},
    timestamp: 1_700_000_000_000 + offset,
  };
}

/**
 * Applies `records` as one batch, as the worker does (skipping what the target already holds).
 * `upcoming`: the batch the worker would offer as the next one (`ctx.upcoming`).
 */
export async function applyBatch(
  session: TargetSession<unknown>,
  sink: Sink<unknown>,
  records: readonly StoredRecord[],
  fail?: 'after-write',
  upcoming: readonly StoredRecord[] = [],
): Promise<void> {
  const next = new Map<string, { topic: string; partition: number; offset: number }>();
  for (const r of records) next.set(partitionKey(r.topic, r.partition), { ...r, offset: r.offset + 1 });
  await session.transaction(GROUP, [...next.values()], async (tx, stored) => {
    const fresh: ConsumerRecord<unknown>[] = records
      .filter((r) => r.offset >= (stored.get(partitionKey(r.topic, r.partition)) ?? 0))
      .map(consumerRecord);
    if (fresh.length > 0) await sink.write(fresh, tx, context(tx, upcoming));
    if (fail) throw new Error('killed before commit');
  });
}

function context(tx: unknown, upcoming: readonly StoredRecord[] = []) {
  const logger = { info() {}, warn() {}, error() {}, debug() {} } as never;
  return {
    logger,
    metrics: { increment() {} },
    signal: new AbortController().signal,
    attempt: 1,
    tx,
    consumer: GROUP,
    replica: 0,
    upcoming: () => upcoming.map(consumerRecord),
  };
}

const OPEN_ENV = { name: 'conformance', dataDir: '.', topicPrefix: 'shop', format: 'debezium' as const };

const BIG = '9007199254740993123'; // beyond 2^53 and with more digits than a double keeps

function item(n: number) {
  return { name: `item ${n} "quoted" é`, qty: n, big: `${BIG.slice(0, -1)}${n % 10}`, price: `${n}.10` };
}

export function sinkConformance(
  kind: string,
  create: () => Promise<SinkUnderTest>,
  o: ConformanceOptions = {},
): void {
  describe(`sink conformance: ${kind}`, () => {
    const columns = o.columns ?? (['name', 'qty', 'big', 'price'] as const);
    /** The part of a row the sink keeps. */
    const kept = (row: ItemRow | undefined) => row && Object.fromEntries(columns.map((c) => [c, row[c]]));
    async function withSink(test: (s: SinkUnderTest, session: TargetSession<unknown>) => Promise<void>) {
      const s = await create();
      const session = await s.sink.target.open({ connections: 2 });
      // As the worker does when a replica's session opens (sink-consumer.ts).
      await s.sink.open?.({ env: OPEN_ENV, logger: context(undefined).logger }, undefined);
      try {
        await test(s, session);
      } finally {
        await session.close();
        await s.close();
      }
    }

    it('applies inserts, updates and deletes in order per key, with exact values', async () => {
      await withSink(async (s, session) => {
        await applyBatch(session, s.sink, [
          itemRecord(0, 'c', 1, item(1)),
          itemRecord(1, 'c', 2, item(2)),
          itemRecord(2, 'u', 1, item(11)),
          itemRecord(3, 'd', 2),
          itemRecord(4, 'c', 3, item(3)),
        ]);
        await applyBatch(session, s.sink, [
          itemRecord(5, 'c', 2, item(22)),
          itemRecord(6, 'u', 3, item(33)),
          itemRecord(7, 'd', 3),
          itemRecord(8, 'c', 3, item(34)),
          itemRecord(9, 'u', 3, item(35)),
        ]);
        const rows = await s.rows();
        expect([...rows.keys()].sort()).toEqual(['1', '2', '3']);
        expect(kept(rows.get('1'))).toEqual(
          kept({ name: item(11).name, qty: '11', big: item(11).big, price: '11.10' }),
        );
        expect(kept(rows.get('2'))).toEqual(
          kept({ name: item(22).name, qty: '22', big: item(22).big, price: '22.10' }),
        );
        expect(rows.get('3')?.qty).toBe('35');
        const offsets = await session.offsets(GROUP, [{ topic: TOPIC, partition: 0 }]);
        expect(offsets.get(partitionKey(TOPIC, 0))).toBe(10);
      });
    });

    it('a truncate empties the table and the changes after it in the batch stay', async () => {
      await withSink(async (s, session) => {
        await applyBatch(session, s.sink, [itemRecord(0, 'c', 1, item(1)), itemRecord(1, 'c', 2, item(2))]);
        await applyBatch(session, s.sink, [
          itemRecord(2, 'u', 1, item(3)),
          itemRecord(3, 't', 0),
          itemRecord(4, 'c', 5, item(5)),
          itemRecord(5, 'u', 5, item(6)),
        ]);
        const rows = await s.rows();
        expect([...rows.keys()]).toEqual(['5']);
        expect(rows.get('5')?.qty).toBe('6');
      });
    });

    if (o.truncateFence) {
      it('a truncate read late keeps rows of later changes; changes before it read late are skipped', async () => {
        await withSink(async (s, session) => {
          // Partition 0 carries the truncate (LSN 200); partitions 1 and 2 are read around it.
          await applyBatch(session, s.sink, [itemRecord(0, 'c', 1, item(1), 1, 100)]);
          await applyBatch(session, s.sink, [itemRecord(1, 'c', 2, item(2), 1, 300)]);
          await applyBatch(session, s.sink, [itemRecord(0, 't', 0, undefined, 0, 200)]);
          await applyBatch(session, s.sink, [
            itemRecord(0, 'c', 3, item(3), 2, 150),
            itemRecord(1, 'd', 2, undefined, 2, 190),
            itemRecord(2, 'c', 4, item(4), 2, 180),
          ]);
          expect([...(await s.rows()).keys()].sort()).toEqual(['2']);
          await applyBatch(session, s.sink, [itemRecord(3, 'c', 3, item(33), 2, 350)]);
          const rows = await s.rows();
          expect([...rows.keys()].sort()).toEqual(['2', '3']);
          expect(rows.get('3')?.qty).toBe('33');
        });
      });

      it('a truncate before any row of the table still fences', async () => {
        await withSink(async (s, session) => {
          await applyBatch(session, s.sink, [itemRecord(0, 't', 0, undefined, 0, 200)]);
          await applyBatch(session, s.sink, [
            itemRecord(0, 'c', 1, item(1), 1, 100),
            itemRecord(1, 'c', 2, item(2), 1, 300),
          ]);
          expect([...(await s.rows()).keys()]).toEqual(['2']);
        });
      });
    }

    it('a transaction killed before its commit leaves nothing; its retry applies once', async () => {
      await withSink(async (s, session) => {
        await applyBatch(session, s.sink, [itemRecord(0, 'c', 1, item(1))]);
        const batch = [itemRecord(1, 'u', 1, item(2)), itemRecord(2, 'c', 2, item(7)), itemRecord(3, 'd', 1)];
        await expect(applyBatch(session, s.sink, batch, 'after-write')).rejects.toThrow(/killed/);
        if (!o.atLeastOnce) {
          const rows = await s.rows();
          expect([...rows.keys()]).toEqual(['1']);
          expect(rows.get('1')?.qty).toBe('1');
        }
        const offsets = await session.offsets(GROUP, [{ topic: TOPIC, partition: 0 }]);
        expect(offsets.get(partitionKey(TOPIC, 0))).toBe(1);
        await applyBatch(session, s.sink, batch);
        const rows = await s.rows();
        expect([...rows.keys()]).toEqual(['2']);
        expect(rows.get('2')?.qty).toBe('7');
      });
    });

    it('a batch delivered again after its commit is not applied twice', async () => {
      await withSink(async (s, session) => {
        const first = [itemRecord(0, 'c', 1, item(1)), itemRecord(1, 'c', 2, item(2))];
        await applyBatch(session, s.sink, first);
        await applyBatch(session, s.sink, [itemRecord(2, 'd', 1)]);
        // Redelivered (a replica that died after the commit but before it acknowledged).
        await applyBatch(session, s.sink, first);
        await applyBatch(session, s.sink, [...first, itemRecord(2, 'd', 1), itemRecord(3, 'u', 2, item(9))]);
        const rows = await s.rows();
        expect([...rows.keys()]).toEqual(['2']);
        expect(rows.get('2')?.qty).toBe('9');
        const offsets = await session.offsets(GROUP, [{ topic: TOPIC, partition: 0 }]);
        expect(offsets.get(partitionKey(TOPIC, 0))).toBe(4);
      });
    });

    it('work done ahead for an offered next batch (ctx.upcoming) is used only for that very batch', async () => {
      await withSink(async (s, session) => {
        const a = [itemRecord(0, 'c', 1, item(1)), itemRecord(1, 'c', 2, item(2))];
        const b = [itemRecord(2, 'u', 1, item(3)), itemRecord(3, 'd', 2), itemRecord(4, 'c', 4, item(4))];
        const c = [itemRecord(5, 'u', 4, item(5)), itemRecord(6, 'c', 6, item(6))];
        await applyBatch(session, s.sink, a, undefined, b);
        // B fails before its commit (its work ahead is used up), then runs again.
        await expect(applyBatch(session, s.sink, b, 'after-write', c)).rejects.toThrow(/killed/);
        await applyBatch(session, s.sink, b, undefined, c);
        // C was offered whole, but a revocation dropped its last record: only the first runs.
        await applyBatch(session, s.sink, c.slice(0, 1), undefined, c.slice(1));
        expect([...(await s.rows()).keys()].sort()).toEqual(['1', '4']);
        // The same offset in another partition is another record.
        await applyBatch(session, s.sink, [itemRecord(6, 'c', 8, item(8), 1)]);
        expect([...(await s.rows()).keys()].sort()).toEqual(['1', '4', '8']);
        await applyBatch(session, s.sink, c.slice(1));
        const rows = await s.rows();
        expect([...rows.keys()].sort()).toEqual(['1', '4', '6', '8']);
        expect(rows.get('1')?.qty).toBe('3');
        expect(rows.get('4')?.qty).toBe('5');
        expect(rows.get('6')?.qty).toBe('6');
        const offsets = await session.offsets(GROUP, [{ topic: TOPIC, partition: 0 }]);
        expect(offsets.get(partitionKey(TOPIC, 0))).toBe(7);
      });
    });

    it('keeps the offsets of several partitions apart, written in concurrent transactions', async () => {
      await withSink(async (s, session) => {
        await Promise.all([
          applyBatch(session, s.sink, [itemRecord(0, 'c', 1, item(1), 0), itemRecord(1, 'u', 1, item(4), 0)]),
          applyBatch(session, s.sink, [itemRecord(0, 'c', 2, item(2), 1)]),
        ]);
        const offsets = await session.offsets(GROUP, [
          { topic: TOPIC, partition: 0 },
          { topic: TOPIC, partition: 1 },
        ]);
        expect(offsets.get(partitionKey(TOPIC, 0))).toBe(2);
        expect(offsets.get(partitionKey(TOPIC, 1))).toBe(1);
        const rows = await s.rows();
        expect(rows.get('1')?.qty).toBe('4');
        expect(rows.get('2')?.qty).toBe('2');
      });
    });
  });
}
