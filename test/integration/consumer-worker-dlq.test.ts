import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { FakeParent, keyedRecords, launch, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('tributary-dlq-');
afterAll(() => dirs.removeAll());

function withStore<T>(dataDir: string, fn: (s: ConsumerStore) => T): T {
  const store = ConsumerStore.open({ dataDir });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

describe('consumer worker: poison records and dead letters', () => {
  it('retries, isolates and dead-letters a poison record with its origin; the partition continues; dlq replay and discard', async () => {
    const dataDir = dirs.make();
    const consumers = join(dataDir, 'consumers');
    const out = join(dataDir, 'handled.txt');
    const fixed = join(dataDir, 'fixed.flag');
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    const records = keyedRecords('t', 300, 10);
    // Two poison records (offsets 57 and 201) in the middle of batches.
    records[57] = { ...records[57]!, value: JSON.stringify({ id: 7, seq: 5, poison: 'bad price' }) };
    records[201] = { ...records[201]!, value: JSON.stringify({ id: 1, seq: 20, poison: 'bad sku' }) };
    await log.append(records);
    const module = writeConsumer(
      consumers,
      'billing',
      `export default defineConsumer<{ id: number; seq: number; poison?: string }>({
  topics: ['t'],
  batch: { maxRecords: 25 },
  retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 20 },
  async handle(batch) {
    for (const r of batch) {
      if (r.value!.poison && !existsSync(${JSON.stringify(fixed)})) throw new Error('cannot bill: ' + r.value!.poison);
    }
    appendFileSync(${JSON.stringify(out)}, batch.map((r) => r.offset + '\\n').join(''));
  },
});`,
    );
    const parent = new FakeParent(launch('billing', module, dataDir));
    try {
      await parent.ready();
      parent.assign([{ topic: 't', partition: 0 }]);
      await waitFor(
        () => withStore(dataDir, (s) => s.committed('billing')[0]?.offset === 300),
        'the partition passes the poison records',
      );
      const letters = withStore(dataDir, (s) => s.deadLetters('billing'));
      expect(letters.map((l) => [l.topic, l.partition, l.offset, l.status, l.attempts])).toEqual([
        ['t', 0, 57, 'pending', 2],
        ['t', 0, 201, 'pending', 2],
      ]);
      expect(letters[0]!.error).toBe('cannot bill: bad price');
      expect(letters[0]!.stack).toContain('billing/index.ts');
      expect(JSON.parse(letters[0]!.value!)).toMatchObject({ poison: 'bad price' });
      const handledOffsets = new Set(readFileSync(out, 'utf8').split('\n').filter(Boolean).map(Number));
      expect(handledOffsets.size).toBe(298);
      expect(handledOffsets.has(57) || handledOffsets.has(201)).toBe(false);
      await waitFor(() => parent.totals.deadLettered === 2, 'dead letters counted');
      expect(parent.totals.retried).toBeGreaterThan(0);
      expect(parent.totals.failed).toBeGreaterThan(0);
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
      await log.close();
    }

    // The test CLI's default consumers folder is an empty one: name this test's.
    const base = ['--data-dir', dataDir];
    const from = ['--consumers', consumers];
    const list = await cli(['dlq', 'list', 'billing', ...base], { cwd: dataDir });
    expect(list.stderr).toBe('');
    expect(list.stdout).toMatch(/ID\s+STATUS\s+ORIGIN/);
    expect(list.stdout).toContain('t/0@57');
    const show = await cli(['dlq', 'show', 'billing', String(1), ...base], { cwd: dataDir });
    expect(show.stdout).toContain('offset 57');
    expect(show.stdout).toContain('"poison": "bad price"');
    expect(show.stdout).toContain('cannot bill: bad price');

    // Still broken: replay keeps it pending with exit code 1.
    const failing = await cli(['dlq', 'replay', 'billing', '--id', '1', ...base, ...from], {
      cwd: dataDir,
    });
    expect(failing.code).toBe(1);
    expect(withStore(dataDir, (s) => s.deadLetter('billing', 1)?.status)).toBe('pending');

    writeFileSync(fixed, '');
    const replay = await cli(['dlq', 'replay', 'billing', '--id', '1', '--rate', '50', ...base, ...from], {
      cwd: dataDir,
    });
    expect(replay.stdout).toContain('replayed 1 of 1');
    expect(replay.code).toBe(0);
    expect(readFileSync(out, 'utf8').split('\n')).toContain('57');
    const discard = await cli(
      ['dlq', 'discard', 'billing', '--all', '--by', 'alice', '--note', 'refunded', ...base],
      {
        cwd: dataDir,
      },
    );
    expect(discard.stdout).toContain('discarded 1 dead letter of billing (by alice)');
    const [first, second] = withStore(dataDir, (s) => s.deadLetters('billing'));
    expect(first).toMatchObject({ status: 'replayed' });
    expect(second).toMatchObject({ status: 'discarded', resolvedBy: 'alice', note: 'refunded' });
    expect(second!.resolvedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(existsSync(fixed)).toBe(true);
    const json = await cli(['dlq', 'list', 'billing', '--status', 'all', '--json', ...base], {
      cwd: dataDir,
    });
    expect(JSON.parse(json.stdout)).toHaveLength(2);
  });

  it('transactional consumer: a dead letter passes its offset in the target, and replay writes through ctx.tx', async () => {
    const dataDir = dirs.make();
    const consumers = join(dataDir, 'consumers');
    const fixed = join(dataDir, 'fixed.flag');
    const sinkFile = join(dataDir, 'sink.db');
    const sink = new Database(sinkFile);
    sink.exec('create table applied (off integer primary key)');
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    const records = keyedRecords('t', 40, 4);
    records[13] = { ...records[13]!, value: JSON.stringify({ id: 1, seq: 3, poison: 'x' }) };
    await log.append(records);
    const module = writeConsumer(
      consumers,
      'ledger',
      `export default defineConsumer({
  topics: ['t'],
  batch: { maxRecords: 10 },
  retry: { attempts: 2, initialDelayMs: 1 },
  transactional: sqliteTarget(${JSON.stringify(sinkFile)}),
  handle(batch, ctx) {
    for (const r of batch) {
      ctx.tx.prepare('insert into applied values (?)').run(r.offset);
      if (r.value.poison && !existsSync(${JSON.stringify(fixed)})) throw new Error('poison');
    }
  },
});`,
    );
    const parent = new FakeParent(launch('ledger', module, dataDir));
    try {
      await parent.ready();
      parent.assign([{ topic: 't', partition: 0 }]);
      // The worker creates its offsets table in the target when it opens it, after `ready`.
      const hasOffsets = () =>
        sink.prepare(`select 1 from sqlite_master where name = 'tributary_consumer_offsets'`).get() !==
        undefined;
      await waitFor(
        () =>
          hasOffsets() &&
          (
            sink.prepare('select next_offset from tributary_consumer_offsets').get() as
              | { next_offset: number }
              | undefined
          )?.next_offset === 40,
        'the target offset passes the poison record',
      );
      expect(await parent.stop()).toBe(0);
    } finally {
      parent.child.kill('SIGKILL');
      await log.close();
    }
    // The failed attempts rolled back: every record but the poison one, once.
    const applied = () =>
      (sink.prepare('select off from applied order by off').all() as { off: number }[]).map((r) => r.off);
    expect(applied()).toEqual([...Array(40).keys()].filter((o) => o !== 13));
    expect(withStore(dataDir, (s) => s.deadLetters('ledger').map((l) => l.offset))).toEqual([13]);
    writeFileSync(fixed, '');
    const replay = await cli(['dlq', 'replay', 'ledger', '--data-dir', dataDir, '--consumers', consumers], {
      cwd: dataDir,
    });
    expect(replay.stdout).toContain('replayed 1 of 1');
    expect(applied()).toEqual([...Array(40).keys()]);
    sink.close();
  });
});
