/**
 * The lake's transactional target. A session owns the lake's catalog connection and an in-memory
 * DuckDB that writes the Parquet files. Each `transaction`: `BEGIN IMMEDIATE` on the catalog
 * (fences any other writer, reads the stored offsets), the batch's changes go into the `LakeTx`
 * and are staged in DuckDB (`LakeStage`; staged ahead already when the sink read the batch
 * ahead), its tables' columns are typed (`LakeTx.type`, nothing written when it throws), the
 * files are written and fsynced (`LakeWriter`), then the snapshot, its files, new column
 * versions, truncates and the offsets commit in that one SQLite transaction.
 *
 * Beside the batches, each on a DuckDB connection of its own, with only their catalog reads and
 * commits on the batches' queue (never inside a batch):
 * - gold models refresh after `modelsRefreshChanges` changes or `modelsRefreshSeconds`, then
 *   snapshots past their retention expire (once a minute): a slow model holds up no batch;
 * - compaction (size-tiered, `compactFiles` files of a size class).
 * Their failures are logged and retried later; they never fail a batch. `close` stops a model
 * running (it keeps its previous file) and waits for both.
 */

import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Logger } from 'pino';
import pino from 'pino';
import {
  OFFSETS_TABLE,
  partitionKey,
  type TargetSession,
  type TransactionalTarget,
} from '../../consumers/transactional.ts';
import type { NatsLogRef } from '../../log/open-event-log.ts';
import { type Columns, LakeCatalog } from './lake-catalog.ts';
import { lakeTableName } from './lake-columns.ts';
import { applyBronzeRetention, compact, expire, removeOrphans } from './lake-maintenance.ts';
import { loadModels, refreshModels } from './lake-models.ts';
import type { LakeOptions } from './lake-options.ts';
import { ShapeHistory } from './lake-shapes.ts';
import { LakeStage } from './lake-stage.ts';
import { LakeTx } from './lake-tx.ts';
import { LakeWriter, type LakeWritten } from './lake-writer.ts';

export { lakeTableName };

/** How often snapshots expire and bronze retention applies. */
const EXPIRY_EVERY_MS = 60_000;

export class LakeTarget implements TransactionalTarget<LakeTx> {
  readonly kind = 'lake';
  readonly description: string;
  logger: Logger = pino({ level: 'silent' });
  /** Maintenance and compaction running beside the batches. */
  readonly #running = new Set<Promise<void>>();

  constructor(
    readonly root: string,
    private readonly options: LakeOptions,
    /** Where the capture's schema history is (types by PostgreSQL type); unset: types by value. */
    private readonly history?: {
      readonly dataDir: string;
      readonly topicPrefix: string;
      readonly log?: NatsLogRef;
    },
  ) {
    this.description = `lake:${root}`;
  }

  async open(): Promise<TargetSession<LakeTx>> {
    const catalog = new LakeCatalog(join(this.root, 'catalog.db'));
    // Bounded whatever the backlog: a batch is staged and written at once; larger sorts spill.
    // One thread per query: the work runs on three connections at once (the next batch staged,
    // bronze, silver); a second thread per query only waited for work (bench/lake.ts: same wall
    // time, 20 % more CPU on two cores).
    const instance = await DuckDBInstance.create(':memory:', {
      threads: '1',
      memory_limit: '256MB',
      temp_directory: join(this.root, '.tmp'),
    });
    const connection = await instance.connect();
    const other = await instance.connect();
    const early = await instance.connect();
    const compactor = await instance.connect();
    const modeler = await instance.connect();
    const orphans = removeOrphans(catalog, this.root);
    if (orphans.length)
      this.logger.info({ orphans: orphans.length }, 'removed files no snapshot named (crash leftovers)');
    const stage = new LakeStage(connection, other, early, this.root);
    const writer = new LakeWriter(connection, other, this.root);
    const shapes = this.history
      ? new ShapeHistory(this.history.dataDir, this.history.topicPrefix, this.history.log)
      : undefined;
    const upsert = catalog.db.prepare(
      `insert into ${OFFSETS_TABLE} values (?, ?, ?, ?, ?) on conflict do update set
         next_offset = excluded.next_offset, updated_at = excluded.updated_at`,
    );
    const current = catalog.db.prepare(
      `select next_offset as offset from ${OFFSETS_TABLE} where group_name = ? and topic = ? and partition = ?`,
    );
    // At open, the models and expiry are due with the first changes (their last run is unknown).
    const state = { changes: 0, lastRefresh: 0, lastExpiry: 0 };
    let queue: Promise<unknown> = Promise.resolve();
    const enqueue = <T>(run: () => Promise<T>): Promise<T> => {
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    };
    const stopping = new AbortController();
    // One compaction at a time, beside the batches; it goes on while it finds merges to make.
    let compacting: Promise<void> | undefined;
    const compactLater = () => {
      compacting ??= this.#beside(async () => {
        try {
          const options = { fanout: this.options.compactFiles, serialize: enqueue };
          while (
            !stopping.signal.aborted &&
            (await compact(compactor, catalog, this.root, options)).length > 0
          );
        } catch (error) {
          this.logger.error({ err: error }, 'lake compaction failed; it runs again after the next batch');
        } finally {
          compacting = undefined;
        }
      });
    };
    // Models are due after `modelsRefreshChanges` changes, or `modelsRefreshSeconds` after the last
    // refresh when there were changes; expiry and retention once a minute, idle or not. One
    // maintenance at a time, beside the batches.
    let maintaining: Promise<void> | undefined;
    const due = () => this.#modelsDue(state) || Date.now() - state.lastExpiry >= EXPIRY_EVERY_MS;
    const maintainLater = () => {
      if (stopping.signal.aborted || !due()) return;
      maintaining ??= this.#beside(async () => {
        try {
          await this.#maintain(modeler, catalog, state, enqueue, stopping.signal);
        } catch (error) {
          this.logger.error({ err: error }, 'lake maintenance failed; it runs again after the next batch');
        } finally {
          maintaining = undefined;
        }
      });
    };
    const timer = setInterval(
      maintainLater,
      Math.min(this.options.modelsRefreshSeconds * 1000, EXPIRY_EVERY_MS),
    );
    timer.unref();
    return {
      offsets: async (group, partitions) => {
        const rows = catalog.db
          .prepare(
            `select topic, partition, next_offset as offset from ${OFFSETS_TABLE} where group_name = ?`,
          )
          .all(group) as { topic: string; partition: number; offset: number }[];
        const wanted = new Set(partitions.map((p) => partitionKey(p.topic, p.partition)));
        return new Map(
          rows
            .filter((r) => wanted.has(partitionKey(r.topic, r.partition)))
            .map((r) => [partitionKey(r.topic, r.partition), r.offset]),
        );
      },
      transaction: (group, offsets, work) =>
        enqueue(async () => {
          await catalog.write(async () => {
            const stored = new Map<string, number>();
            for (const o of offsets) {
              const row = current.get(group, o.topic, o.partition) as { offset: number } | undefined;
              if (row !== undefined) stored.set(partitionKey(o.topic, o.partition), row.offset);
            }
            await shapes?.refresh();
            const tx = new LakeTx(catalog, shapes);
            tx.preload = (batch) => stage.preload(batch);
            await work(tx, stored);
            // The next batch is read (and staged) while DuckDB stages, types and writes this one.
            const loading = tx.batch.length > 0 ? stage.load(tx.batch) : undefined;
            tx.whileWriting?.();
            const staged = await loading;
            // Again: the lane offers the next batch once it waits in full, which may be only now.
            tx.whileWriting?.();
            let written: LakeWritten = { files: [], truncates: [], changes: 0 };
            if (staged) {
              try {
                written = await writer.write(staged, tx.type(stage, staged), (t) =>
                  tx.columns.get(t)!.columns(),
                );
              } finally {
                await stage.release(staged);
              }
            }
            tx.whileWriting?.();
            const { files, truncates, changes } = written;

            const columns = new Map<string, Columns>();
            for (const [t, c] of tx.columns) if (c.changed) columns.set(t, c.columns());
            if (files.length || truncates.length || columns.size) {
              catalog.addSnapshot({ kind: 'append', added: files, columns, truncates, now: Date.now() });
            }
            const now = Date.now();
            for (const o of offsets) {
              const next = Math.max(o.offset, stored.get(partitionKey(o.topic, o.partition)) ?? 0);
              upsert.run(group, o.topic, o.partition, next, now);
            }
            state.changes += changes;
          });
          maintainLater();
          compactLater();
        }),
      close: async () => {
        clearInterval(timer);
        stopping.abort();
        await maintaining;
        await compacting;
        await queue;
        await stage.settle();
        await shapes?.close();
        connection.closeSync();
        other.closeSync();
        early.closeSync();
        compactor.closeSync();
        modeler.closeSync();
        instance.closeSync();
        catalog.close();
      },
    };
  }

  #modelsDue(state: { changes: number; lastRefresh: number }): boolean {
    return (
      state.changes >= this.options.modelsRefreshChanges ||
      (state.changes > 0 && Date.now() - state.lastRefresh >= this.options.modelsRefreshSeconds * 1000)
    );
  }

  /** Runs `work` beside the batches; `idle` waits for it. */
  #beside(work: () => Promise<void>): Promise<void> {
    const running = work();
    this.#running.add(running);
    void running.finally(() => this.#running.delete(running));
    return running;
  }

  /**
   * Waits until no maintenance or compaction runs beside the batches (started by the batches
   * committed so far; for tests and benches that read what they made).
   */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running]);
  }

  /** Models, then expiry and retention (after the models: never beside a model reading files). */
  async #maintain(
    connection: DuckDBConnection,
    catalog: LakeCatalog,
    state: { changes: number; lastRefresh: number; lastExpiry: number },
    serialize: <T>(run: () => Promise<T>) => Promise<T>,
    signal: AbortSignal,
  ): Promise<void> {
    if (this.#modelsDue(state)) {
      state.changes = 0;
      state.lastRefresh = Date.now();
      const results = await refreshModels(
        connection,
        catalog,
        this.root,
        loadModels(join(this.root, 'models')),
        { timeoutMs: this.options.modelsTimeoutSeconds * 1000, serialize, signal },
      );
      for (const r of results) if (r.error) this.logger.error({ model: r.name }, r.error);
    }
    if (!signal.aborted && Date.now() - state.lastExpiry >= EXPIRY_EVERY_MS) {
      state.lastExpiry = Date.now();
      await serialize(async () => {
        if (this.options.bronzeRetentionDays !== undefined) {
          await applyBronzeRetention(catalog, this.options.bronzeRetentionDays);
        }
        await expire(catalog, this.root, this.options.snapshotRetentionHours * 3_600_000);
      });
    }
  }
}
