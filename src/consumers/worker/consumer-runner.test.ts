import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredRecord } from '../../core/record.ts';
import { EmbeddedEventLog } from '../../log/embedded/sqlite-event-log.ts';
import { ConsumerStore } from '../consumer-store.ts';
import type { ConsumerContext, ConsumerRecord } from '../define-consumer.ts';
import { sqliteTarget } from '../transactional.ts';
import { ConsumerRunner } from './consumer-runner.ts';
import { type ResolvedConsumer, validateDefinition } from './load-consumer.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(records: { key: string; value: unknown }[], definition: Record<string, unknown>) {
  const dataDir = mkdtempSync(join(tmpdir(), 'tributary-runner-'));
  cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
  const writer = EmbeddedEventLog.open({ dataDir, durable: false });
  cleanups.push(() => writer.close());
  await writer.append(
    records.map((r) => ({
      topic: 't',
      key: r.key,
      value: JSON.stringify(r.value),
      headers: {},
      timestamp: 0,
    })),
  );
  const log = EmbeddedEventLog.open({ dataDir, readonly: true });
  cleanups.push(() => log.close());
  const store = ConsumerStore.open({ dataDir });
  cleanups.push(() => store.close());
  const consumer = validateDefinition('c', join(dataDir, 'index.ts'), { topics: ['t'], ...definition });
  const runner = new ConsumerRunner({ consumer, replica: 0, log, store, logger: pino({ level: 'silent' }) });
  cleanups.push(() => runner.stop());
  await runner.start();
  return { runner, store, writer, consumer };
}

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in 10 s');
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('ConsumerRunner', () => {
  it('batches at most maxRecords of one lane, runs lanes in parallel and one key strictly in order', async () => {
    const records = Array.from({ length: 400 }, (_, i) => ({
      key: `k${i % 8}`,
      value: { seq: Math.floor(i / 8) },
    }));
    let running = 0;
    let maxRunning = 0;
    const runningKeys = new Set<string>();
    const seen = new Map<string, number>();
    const sizes: number[] = [];
    const { runner, store } = await setup(records, {
      batch: { maxRecords: 7 },
      concurrency: 4,
      async handle(batch: ConsumerRecord<{ seq: number }>[]) {
        sizes.push(batch.length);
        const keys = new Set(batch.map((r) => r.key!));
        for (const k of keys) {
          expect(runningKeys.has(k), `key ${k} handled twice at once`).toBe(false);
          runningKeys.add(k);
        }
        running++;
        maxRunning = Math.max(maxRunning, running);
        await new Promise((r) => setTimeout(r, 2));
        for (const r of batch) {
          expect(r.value!.seq).toBe((seen.get(r.key!) ?? -1) + 1);
          seen.set(r.key!, r.value!.seq);
        }
        running--;
        for (const k of keys) runningKeys.delete(k);
      },
    });
    await runner.assign([{ topic: 't', partition: 0 }]);
    await until(() => store.committed('c')[0]?.offset === 400);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(7);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(400);
    expect(maxRunning).toBeGreaterThan(1);
    expect(maxRunning).toBeLessThanOrEqual(4);
    expect(runner.takeCounters().counters.processed).toBe(400);
    expect(runner.takeCounters().counters.processed).toBe(0);
  });

  it("offers the lane's next batch, when it waits in full, as ctx.upcoming", async () => {
    const records = Array.from({ length: 400 }, (_, i) => ({ key: `k${i % 8}`, value: { n: i } }));
    const batches: number[][] = [];
    const upcoming: number[][] = [];
    const ran: ConsumerRecord<{ n: number }>[][] = [];
    const offered: (readonly ConsumerRecord<unknown>[])[] = [];
    const { runner, store } = await setup(records, {
      batch: { maxRecords: 50 },
      concurrency: 1,
      async handle(batch: ConsumerRecord<{ n: number }>[], ctx: ConsumerContext<undefined>) {
        batches.push(batch.map((r) => r.offset));
        ran.push(batch);
        const next = ctx.upcoming?.() ?? [];
        // Asked again, the same records (wrapped once).
        if (next.length > 0) expect(ctx.upcoming?.()).toBe(next);
        offered.push(next);
        upcoming.push(next.map((r) => r.offset));
        // The records are parsed as the batch's own would be.
        for (const r of next) expect(r.value).toEqual({ n: r.offset });
        await new Promise((r) => setTimeout(r, 2));
      },
    });
    await runner.assign([{ topic: 't', partition: 0 }]);
    await until(() => store.committed('c')[0]?.offset === 400);
    expect(batches.flat()).toEqual(records.map((_, i) => i));
    // Given while a full batch waited (the log was read ahead), never for the last batch...
    expect(upcoming.filter((u) => u.length > 0).length).toBeGreaterThan(0);
    expect(upcoming.at(-1)).toEqual([]);
    // ...and then exactly the batch that ran next.
    for (let i = 0; i < upcoming.length; i++) {
      if (upcoming[i]!.length === 0) continue;
      expect(upcoming[i]).toEqual(batches[i + 1]);
      // The very records offered run (with what reading them ahead parsed), not copies.
      expect(ran[i + 1]!.every((r, j) => r === offered[i]![j])).toBe(true);
    }
  });

  it('reads far enough ahead to fill a transactional batch larger than 20,000 records', async () => {
    const records = Array.from({ length: 50_000 }, (_, i) => ({ key: `k${i % 8}`, value: i }));
    const sizes: number[] = [];
    const file = join(mkdtempSync(join(tmpdir(), 'tributary-runner-target-')), 'target.db');
    const { runner } = await setup(records, {
      // A batch that could not fill would wait the full minute (the test's timeout is shorter).
      batch: { maxRecords: 25_000, maxWaitMs: 60_000 },
      transactional: sqliteTarget(file),
      handle(batch: unknown[]) {
        sizes.push(batch.length);
      },
    });
    await runner.assign([{ topic: 't', partition: 0 }]);
    await until(() => sizes.reduce((a, b) => a + b, 0) === 50_000);
    expect(sizes).toEqual([25_000, 25_000]);
  });

  it('reads three batches ahead for a transactional consumer: the next one waits in full from the start', async () => {
    const records = Array.from({ length: 50_000 }, (_, i) => ({ key: `k${i % 8}`, value: i }));
    const file = join(mkdtempSync(join(tmpdir(), 'tributary-runner-target-')), 'target.db');
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const firstOffered: number[] = [];
    let handled = 0;
    const { runner } = await setup(records, {
      batch: { maxRecords: 10_000, maxWaitMs: 60_000 },
      transactional: sqliteTarget(file),
      async handle(batch: ConsumerRecord<unknown>[], ctx: ConsumerContext<unknown>) {
        // What is offered as the batch begins: read while the batch before it ran.
        firstOffered.push(ctx.upcoming?.().length ?? 0);
        if (handled === 0) await released;
        handled += batch.length;
      },
    });
    await runner.assign([{ topic: 't', partition: 0 }]);
    // The running batch, the next one and the one after it; no more.
    await until(() => runner.buffered === 30_000);
    release();
    await until(() => handled === 50_000);
    expect(runner.buffered).toBe(0);
    // The second batch began with the third waiting in full (read while the first ran).
    expect(firstOffered[1]).toBe(10_000);
  });

  it('waits up to maxWaitMs to fill a batch', async () => {
    const sizes: number[] = [];
    const { runner, store, writer } = await setup([{ key: 'a', value: { n: 0 } }], {
      batch: { maxRecords: 50, maxWaitMs: 300 },
      concurrency: 1,
      handle(batch: unknown[]) {
        sizes.push(batch.length);
      },
    });
    await runner.assign([{ topic: 't', partition: 0 }]);
    await new Promise((r) => setTimeout(r, 50));
    await writer.append(
      Array.from({ length: 9 }, (_, i) => ({
        topic: 't',
        key: 'a',
        value: `{"n":${i + 1}}`,
        headers: {},
        timestamp: 0,
      })),
    );
    await until(() => store.committed('c')[0]?.offset === 10);
    expect(sizes).toEqual([10]);
  });

  it('does not commit past a record still in flight, and revoke drains it first', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const { runner, store } = await setup(
      [
        { key: 'slow', value: {} },
        { key: 'fast', value: {} },
        { key: 'fast', value: {} },
      ],
      {
        batch: { maxRecords: 1 },
        concurrency: 8,
        async handle(batch: StoredRecord[]) {
          if (batch[0]!.key === 'slow') await gate;
        },
      },
    );
    await runner.assign([{ topic: 't', partition: 0 }]);
    let processed = 0;
    await until(() => {
      processed += runner.takeCounters().counters.processed;
      return processed === 2;
    });
    await new Promise((r) => setTimeout(r, 60));
    expect(store.committed('c')).toEqual([]);
    const revoked = runner.revoke([{ topic: 't', partition: 0 }]);
    setTimeout(release, 20);
    await revoked;
    expect(store.committed('c')).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
    expect(runner.assigned).toEqual([]);
  });

  it('commits per partition when batches mix partitions, and a revoked one stops while the other goes on', async () => {
    const seen: string[] = [];
    const { runner, store, writer } = await setup(
      Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 5}`, value: { i } })),
      {
        topics: ['t', 'u'],
        batch: { maxRecords: 50 },
        concurrency: 2,
        handle(batch: StoredRecord[]) {
          for (const r of batch) seen.push(`${r.topic}/${r.offset}`);
        },
      },
    );
    const more = (topic: string, n: number) =>
      writer.append(
        Array.from({ length: n }, (_, i) => ({
          topic,
          key: `k${i % 5}`,
          value: '{}',
          headers: {},
          timestamp: 0,
        })),
      );
    await more('u', 200);
    await runner.assign([
      { topic: 't', partition: 0 },
      { topic: 'u', partition: 0 },
    ]);
    const offsets = () => Object.fromEntries(store.committed('c').map((p) => [p.topic, p.offset]));
    await until(() => offsets().t === 300 && offsets().u === 200);
    expect(new Set(seen).size).toBe(500);
    await runner.revoke([{ topic: 't', partition: 0 }]);
    await more('t', 30);
    await more('u', 40);
    await until(() => offsets().u === 240);
    expect(offsets().t).toBe(300);
    expect(runner.assigned).toEqual([{ topic: 'u', partition: 0 }]);
    expect(seen).toHaveLength(540);
  });

  it('a revoke handles the records already read, so none finished lies above the committed offset', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const handled: number[] = [];
    const { runner, store } = await setup(
      [
        { key: 'slow', value: {} },
        { key: 'slow', value: {} },
        { key: 'fast', value: {} },
      ],
      {
        batch: { maxRecords: 1 },
        concurrency: 8,
        async handle(batch: StoredRecord[]) {
          if (batch[0]!.offset === 0) await gate;
          handled.push(batch[0]!.offset);
        },
      },
    );
    await runner.assign([{ topic: 't', partition: 0 }]);
    // Offset 2 (another key) is handled while 0 holds its lane and 1 waits behind it.
    await until(() => handled.includes(2));
    const revoked = runner.revoke([{ topic: 't', partition: 0 }]);
    release();
    await revoked;
    expect(handled.sort()).toEqual([0, 1, 2]);
    expect(store.committed('c')).toEqual([{ topic: 't', partition: 0, offset: 3 }]);
  });

  it('a revoke sent right after an assignment waits for it: the partition is not kept', async () => {
    const handled: number[] = [];
    const { runner } = await setup([{ key: 'a', value: {} }], {
      async handle(batch: StoredRecord[]) {
        for (const r of batch) handled.push(r.offset);
      },
    });
    // The supervisor may move a partition on while its assignment still reads the start offset.
    const assigned = runner.assign([{ topic: 't', partition: 0 }]);
    const revoked = runner.revoke([{ topic: 't', partition: 0 }]);
    await Promise.all([assigned, revoked]);
    expect(runner.assigned).toEqual([]);
  });
});

describe('ConsumerRunner read failures', () => {
  it('gives up (fatal, to be restarted) when the log stays unreadable for 30 s', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-runner-'));
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const writer = EmbeddedEventLog.open({ dataDir, durable: false });
    cleanups.push(() => writer.close());
    await writer.append([{ topic: 't', key: 'k', value: '{}', headers: {}, timestamp: 0 }]);
    const log = EmbeddedEventLog.open({ dataDir, readonly: true });
    const store = ConsumerStore.open({ dataDir });
    cleanups.push(() => store.close());
    let now = 1_000_000;
    const fatal: Error[] = [];
    const warnings: string[] = [];
    const failures = () => warnings.filter((l) => l.includes('cannot read the log')).length;
    const runner = new ConsumerRunner({
      consumer: validateDefinition('c', join(dataDir, 'index.ts'), { topics: ['t'], handle() {} }),
      replica: 0,
      log,
      store,
      logger: pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) }),
      clock: () => now,
      onFatal: (e) => fatal.push(e),
    });
    cleanups.push(() => runner.stop());
    await runner.start();
    await runner.assign([{ topic: 't', partition: 0 }]);
    await until(() => store.committed('c').some((p) => p.offset === 1));
    await log.close(); // every read throws from now on
    await until(() => failures() === 1);
    now += 29_000;
    await until(() => failures() === 2); // retried a second later
    expect(fatal).toEqual([]); // failing, but not for 30 s yet
    now += 2_000;
    await until(() => fatal.length === 1);
    expect(fatal[0]!.message).toMatch(/cannot read t\/0 from the log for 30 s/);
  });
});

describe('validateDefinition', () => {
  const ok = { topics: ['t'], handle() {} };
  it('applies defaults', () => {
    const c: ResolvedConsumer = validateDefinition('orders', '/x/index.ts', ok);
    expect(c).toMatchObject({ group: 'orders', maxRecords: 100, concurrency: 4, attempts: 3, memoryMb: 512 });
    expect(c.replicas).toEqual({ min: 1, max: 1, initial: 1 });
    expect(validateDefinition('o', '/x', { ...ok, replicas: { min: 2, max: 5 } }).replicas).toEqual({
      min: 2,
      max: 5,
      initial: 2,
    });
  });
  it.each([
    [{ topics: [] }, /topics must be a non-empty array/],
    [{ handle: 3 }, /handle must be a function/],
    [{ replicas: { min: 3, max: 2 } }, /replicas\.max must be at least replicas\.min \(3\), got 2/],
    [{ retry: { attempts: 0 } }, /retry\.attempts must be an integer from 1/],
    [{ concurrency: 1.5 }, /concurrency must be an integer/],
    [{ transactional: 'pg://' }, /transactional must be a target/],
  ])('names the bad field: %j', (patch, message) => {
    expect(() => validateDefinition('orders', '/x/index.ts', { ...ok, ...patch })).toThrow(message);
  });
});
