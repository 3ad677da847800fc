import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Relation, SourceMessage } from '../core/change-event.ts';
import { LogError } from '../core/errors.ts';
import type { EventLog } from '../core/event-log.ts';
import type { Lsn } from '../core/lsn.ts';
import type { Source, SourceHandler } from '../core/source.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { Capture } from './capture.ts';
import { tempDataDirs } from './capture-test-support.ts';
import type { SnapshotTracker } from './snapshot-tracker.ts';

const items: Relation = {
  id: 16384,
  schema: 'public',
  table: 'items',
  replicaIdentity: 'default',
  columns: [
    { name: 'id', typeOid: 23, typeMod: -1, isKey: true, type: { kind: 'base', oid: 23, name: 'int4' } },
  ],
  keyIndexes: [0],
};

/** Transactions of `sizes[i]` inserts each, ids counting up from 1, at increasing LSNs. */
function transactions(sizes: readonly number[]): SourceMessage[][] {
  let id = 0;
  return sizes.map((size, t) => {
    const finalLsn = BigInt(1000 * (t + 1));
    const changes: SourceMessage[] = Array.from({ length: size }, (_, i) => ({
      kind: 'change',
      event: {
        op: 'c',
        relation: items,
        before: null,
        after: [String(++id)],
        lsn: finalLsn - 500n + BigInt(i),
      },
    }));
    return [
      { kind: 'begin', xid: t + 1, finalLsn, commitTimeUs: 1_700_000_000_000_000n },
      ...changes,
      { kind: 'commit', commitLsn: finalLsn, endLsn: finalLsn + 10n, commitTimeUs: 1_700_000_000_000_000n },
    ];
  });
}

/**
 * As PostgreSQL does after a reconnect: each (re)start delivers whole transactions from the first
 * one not acknowledged, one message per batch; a rejected batch ends the stream, which starts
 * again (as the source does once the disk has space), at most `restarts` times.
 */
class RestartingSource implements Source {
  acknowledged: Lsn = 0n;
  starts = 0;
  constructor(
    private readonly txs: readonly SourceMessage[][],
    private readonly restarts: number,
  ) {}
  async start(handler: SourceHandler): Promise<void> {
    for (;;) {
      this.starts++;
      try {
        for (const tx of this.txs) {
          const commit = tx.at(-1) as { endLsn: Lsn };
          if (commit.endLsn <= this.acknowledged) continue;
          for (const message of tx) await handler([message]);
        }
        return;
      } catch (error) {
        if (this.starts > this.restarts) throw error;
      }
    }
  }
  acknowledge(lsn: Lsn): void {
    if (lsn > this.acknowledged) this.acknowledged = lsn;
  }
  async stop(): Promise<void> {}
}

/**
 * Delivers the transactions once, then stays idle (no heartbeat, no change) until interrupted or
 * `idleMs` have passed; an interrupt starts the stream again from the acknowledged position.
 */
class IdleSource implements Source {
  acknowledged: Lsn = 0n;
  starts = 0;
  #interrupted = false;
  #wake: (() => void) | undefined;
  constructor(
    private readonly txs: readonly SourceMessage[][],
    private readonly idleMs: number,
  ) {}
  async start(handler: SourceHandler): Promise<void> {
    for (;;) {
      this.starts++;
      this.#interrupted = false;
      for (const tx of this.txs) {
        if (this.#interrupted) break;
        const commit = tx.at(-1) as { endLsn: Lsn };
        if (commit.endLsn > this.acknowledged) await handler(tx);
      }
      if (!this.#interrupted) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, this.idleMs);
          this.#wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.#wake = undefined;
      }
      if (!this.#interrupted) return;
    }
  }
  interrupt(): void {
    this.#interrupted = true;
    this.#wake?.();
  }
  acknowledge(lsn: Lsn): void {
    if (lsn > this.acknowledged) this.acknowledged = lsn;
  }
  async stop(): Promise<void> {}
}

/** The log, with its appends number `from` to `to` (1-based) failing as on a full disk. */
function failingAppends(log: EventLog, from: number, to: number): EventLog {
  let appends = 0;
  return new Proxy(log, {
    get(target, prop) {
      if (prop === 'append') {
        return (...args: Parameters<EventLog['append']>) => {
          appends++;
          if (appends >= from && appends <= to)
            return Promise.reject(new LogError('LOG_DISK_FULL', 'disk full', { retryable: true }));
          return target.append(...args);
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

describe('Capture after a failed append (issue 14 item 4: disk full, then space returns)', () => {
  const tempDir = tempDataDirs('tributary-append-failure-');

  it.each([
    ['one failed append between small transactions', [1, 1, 1, 1, 1, 1, 1, 1], 3, 3],
    ['appends failing inside a transaction spread over several appends', [1, 2, 9, 1, 7, 1], 3, 5],
    ['the first append failing', [3, 3, 3], 1, 2],
  ])('resumes in the same run and stores every change once: %s', async (_, sizes, from, to) => {
    const dataDir = tempDir();
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    try {
      const txs = transactions(sizes);
      const source = new RestartingSource(txs, 10);
      const capture = new Capture({
        source,
        log: failingAppends(log, from, to),
        encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
        checkpointName: 'postgres:test',
        serverName: 't',
        database: 'db',
        maxBatchRecords: 2,
        logger: pino({ level: 'silent' }),
      });
      await capture.run();
      const ids = (await log.read('t.public.items', 0, 0, 1000)).map((r) => JSON.parse(r.value!).after.id);
      const total = sizes.reduce((a, b) => a + b, 0);
      expect(ids).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(source.starts).toBeGreaterThan(1);
      expect(source.acknowledged).toBe((txs.at(-1)!.at(-1) as { endLsn: Lsn }).endLsn);
    } finally {
      await log.close();
    }
  });

  it('tells the source at once when the last append before an idle stream fails', async () => {
    const dataDir = tempDir();
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    try {
      const txs = transactions([2, 3]);
      // The second transaction's append is the last one: nothing else comes to find its failure.
      const source = new IdleSource(txs, 1_000);
      const capture = new Capture({
        source,
        log: failingAppends(log, 2, 2),
        encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
        checkpointName: 'postgres:test',
        serverName: 't',
        database: 'db',
        logger: pino({ level: 'silent' }),
      });
      await capture.run();
      const ids = (await log.read('t.public.items', 0, 0, 100)).map((r) => JSON.parse(r.value!).after.id);
      expect(ids).toEqual([1, 2, 3, 4, 5]);
      // Found by the interrupt while idle (else the stream ended first and run failed).
      expect(source.starts).toBe(2);
    } finally {
      await log.close();
    }
  });

  it('rolls the snapshot back to the stored progress when the lost appends carried some', async () => {
    const dataDir = tempDir();
    const log = EmbeddedEventLog.open({ dataDir, durable: false });
    try {
      // A snapshot that moves on with every transaction (as chunks complete at their commits);
      // `restore` sets it back to what the log holds, as SnapshotTracker.restore does.
      let chunks = 0;
      const restored: unknown[] = [];
      const snapshots = {
        signal: () => false,
        observe: () => undefined,
        commit: () => {
          chunks++;
        },
        rollback: () => undefined,
        restore: (stored: { jobs: { chunks: number }[] } | undefined) => {
          restored.push(stored);
          chunks = stored?.jobs[0]?.chunks ?? 0;
        },
        progress: () => ({ jobs: [{ id: 'job', chunks }] }),
      } as unknown as SnapshotTracker;
      const capture = new Capture({
        source: new RestartingSource(transactions([1, 1, 1, 1]), 10),
        log: failingAppends(log, 2, 2),
        encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
        checkpointName: 'postgres:test',
        serverName: 't',
        database: 'db',
        snapshots,
        logger: pino({ level: 'silent' }),
      });
      await capture.run();
      const ids = (await log.read('t.public.items', 0, 0, 100)).map((r) => JSON.parse(r.value!).after.id);
      expect(ids).toEqual([1, 2, 3, 4]);
      // Rolled back to the progress of the last durable append (the first transaction's).
      expect(restored).toEqual([{ jobs: [{ id: 'job', chunks: 1 }] }]);
      // The stored progress counts each transaction once, as a run without the failure would.
      const stored = await Capture.position(log, 'postgres:test');
      expect(stored?.snapshot).toEqual({ jobs: [{ id: 'job', chunks: 4 }] });
    } finally {
      await log.close();
    }
  });
});
