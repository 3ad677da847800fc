import { randomUUID } from 'node:crypto';
import type { ChangeEvent, LogicalMessage, Relation, Tuple } from '../core/change-event.ts';
import { type CopyRows, filterCopyRows } from '../encode/copy-row-batch.ts';
import type { ChunkCursor, SnapshotTable } from '../source/postgres/snapshot-reader.ts';
import { formatTableName, parseTableName, type TableName } from '../source/postgres/table-name.ts';
import { RateMeter } from './rate-meter.ts';
import { parseSnapshotSignal, type SnapshotJobState } from './snapshot-job.ts';

export type { SnapshotJobState } from './snapshot-job.ts';

/** Snapshot part of the capture position: the unfinished jobs; `full` = snapshot every table (not yet planned). */
export interface SnapshotProgress {
  readonly jobs: readonly SnapshotJobState[];
  readonly full?: boolean;
}

/** What `tributary status` shows of one job. */
export interface SnapshotJobStatus {
  readonly table: string;
  readonly kind: 'initial' | 'backfill';
  readonly condition: string | null;
  readonly state: 'queued' | 'running' | 'done' | 'failed';
  readonly rows: number;
  /** `rows` plus the rows read by chunks not yet in the log (absent when none): the progress to show. */
  readonly rowsRead?: number;
  /** Estimated rows of the table (pg_class.reltuples) once started; null when unknown. */
  readonly totalRows: number | null;
  readonly rowsPerSecond: number;
  readonly etaSeconds: number | null;
  readonly error?: string;
}

/** The rows of a chunk to write at its high watermark as read events (`op: r`). */
export interface SnapshotChunkRows {
  readonly relation: Relation;
  /** The rows no streamed change touched, in COPY text format. */
  readonly rows: CopyRows;
  /** `source.snapshot` of the rows: `true` (initial snapshot) or `incremental` (backfill)... */
  readonly snapshot: 'true' | 'incremental';
  /** ...except the last row of an initial snapshot's last chunk: `last`. */
  readonly lastIsFinal: boolean;
}

interface Job {
  state: SnapshotJobState;
  status: 'queued' | 'running' | 'done' | 'failed';
  total: number | null;
  error?: string;
  meter: RateMeter;
  rate: number;
  /** Chunks registered and not yet emitted or discarded. */
  inFlight: number;
  settled: (() => void)[];
  /** Raised by `restore`: chunks opened for an earlier epoch are refused (their cursor is stale). */
  epoch: number;
}

interface Chunk {
  readonly id: string;
  readonly job: Job;
  readonly table: SnapshotTable;
  /** Keys (JSON of their text values) changed by streamed events between the watermarks. */
  readonly changed: Set<string>;
  truncated: boolean;
  rows: CopyRows | undefined;
  next: ChunkCursor | null;
  done: () => void;
}

interface WatermarkContent {
  run: string;
  snapshotId: string;
  chunk: string;
  kind: 'low' | 'high';
}

const tableKey = (schema: string, table: string) => `${schema}\0${table}`;

/** Keys remembered per table for the initial snapshot (about 100 MB at most). */
const MAX_TRACKED_KEYS = 1_000_000;

/**
 * The capture's side of the watermark algorithm (DBLog): a chunk is registered before its low
 * watermark is written; from the low watermark on, the keys of the table's streamed changes are
 * recorded; at the high watermark the chunk's rows whose key changed are dropped and the others
 * become read events, so a snapshot row never overwrites a newer streamed change in the log.
 *
 * Called synchronously by `Capture` in stream order (`observe`, `signal`, `watermark`,
 * `commit`, `rollback`) and by the snapshot workers (`claim`, `open`, `fill`, `discard`). Job
 * progress changes only at the commit of a high watermark's transaction, so `progress()`
 * always matches the position it is stored with.
 */
export class SnapshotTracker {
  /** Watermarks of earlier runs (re-delivered after a restart) carry another id and are ignored. */
  readonly runId = randomUUID();
  private readonly jobs = new Map<string, Job>();
  private readonly chunks = new Map<string, Chunk>();
  private readonly windows = new Map<string, Set<Chunk>>();
  /**
   * Per table with an initial job of this run: keys changed in the stream since it started. The
   * stream has those rows' newest state, so the initial snapshot leaves them out: no read event
   * after a change that the stream already carried (no overlap). Capped; see MAX_TRACKED_KEYS.
   */
  private readonly sinceStart = new Map<string, Set<string> | null>();
  private pending: (() => void)[] = [];
  private sequence = 0;
  private full: boolean;
  private wakeWorkers: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private readonly signalTable: TableName | null;

  constructor(
    options: {
      progress?: SnapshotProgress | null | undefined;
      signalTable?: string | null;
    } = {},
  ) {
    this.signalTable = options.signalTable ? parseTableName(options.signalTable) : null;
    this.full = options.progress?.full ?? false;
    for (const state of options.progress?.jobs ?? []) {
      this.add(state);
      // A resumed initial snapshot leaves out the rows the stream carries from here on.
      if (state.kind === 'initial') this.sinceStart.set(tableKey(state.schema, state.table), new Set());
    }
  }

  /** Adds jobs now (planning at start-up, before streaming). */
  plan(states: readonly SnapshotJobState[]): void {
    for (const state of states) {
      this.add(state);
      if (state.kind === 'initial') this.sinceStart.set(tableKey(state.schema, state.table), new Set());
    }
    this.full = false;
    this.wake();
  }

  /** True when a full snapshot was requested (re-snapshot) but its tables are not listed yet. */
  get wantsFull(): boolean {
    return this.full;
  }

  progress(): SnapshotProgress | undefined {
    const jobs = [...this.jobs.values()]
      .filter((j) => j.status === 'queued' || j.status === 'running')
      .map((j) => j.state);
    if (jobs.length === 0 && !this.full) return undefined;
    return this.full ? { jobs, full: true } : { jobs };
  }

  /** Unfinished jobs (queued or running). */
  get unfinished(): number {
    let n = 0;
    for (const job of this.jobs.values()) if (job.status === 'queued' || job.status === 'running') n++;
    return n;
  }

  /** Resolves once no job is left unfinished (after the commit that finished the last one). */
  whenIdle(): Promise<void> {
    if (this.unfinished === 0 && !this.full) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  status(now = Date.now()): SnapshotJobStatus[] {
    // Rows read into chunks whose window has not closed yet: not in the log, but progress.
    const reading = new Map<Job, number>();
    for (const chunk of this.chunks.values()) {
      if (chunk.rows) reading.set(chunk.job, (reading.get(chunk.job) ?? 0) + chunk.rows.count);
    }
    return [...this.jobs.values()].map((job) => {
      if (job.status === 'running') job.rate = job.meter.sample(now, job.state.rows);
      const left = job.total === null ? null : Math.max(0, job.total - job.state.rows);
      return {
        table: formatTableName({ schema: job.state.schema, table: job.state.table }),
        kind: job.state.kind,
        condition: job.state.condition,
        state: job.status,
        rows: job.state.rows,
        ...(reading.has(job) ? { rowsRead: job.state.rows + reading.get(job)! } : {}),
        totalRows: job.total,
        rowsPerSecond: Math.round(job.status === 'running' ? job.rate : 0),
        etaSeconds:
          job.status === 'running' && left !== null && job.rate > 0 ? Math.round(left / job.rate) : null,
        ...(job.error ? { error: job.error } : {}),
      };
    });
  }

  // ---- worker side ----

  /** Takes a queued job to run, or resolves `undefined` only to let the caller re-check (`changed`). */
  claim(): SnapshotJobState | undefined {
    for (const job of this.jobs.values()) {
      if (job.status === 'queued') {
        job.status = 'running';
        return job.state;
      }
    }
    return undefined;
  }

  /** Resolves when jobs may have been added (or `wake()` was called). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.wakeWorkers.push(resolve));
  }

  wake(): void {
    for (const resolve of this.wakeWorkers.splice(0)) resolve();
  }

  /** The job's epoch, for `open`: a worker reads it with the state it starts from. */
  epoch(jobId: string): number {
    return this.jobs.get(jobId)?.epoch ?? 0;
  }

  /** The committed state of a job (where a retry resumes). */
  committed(jobId: string): SnapshotJobState | undefined {
    return this.jobs.get(jobId)?.state;
  }

  setTotal(jobId: string, total: number | null): void {
    const job = this.jobs.get(jobId);
    if (job) job.total = total;
  }

  fail(jobId: string, error: string): void {
    const job = this.jobs.get(jobId);
    if (!job) return;
    job.status = 'failed';
    job.error = error;
    this.checkIdle();
  }

  /** Gives a job back (the worker stops): it stays in the position and runs again later. */
  release(jobId: string): void {
    const job = this.jobs.get(jobId);
    if (job?.status === 'running') job.status = 'queued';
  }

  /**
   * Registers a chunk before its low watermark is written; returns the watermark contents and
   * a promise settled when the chunk's rows are in the capture's batch (or it was discarded).
   */
  open(
    jobId: string,
    table: SnapshotTable,
    epoch?: number,
  ): { id: string; low: string; high: string; emitted: Promise<void> } {
    const job = this.jobs.get(jobId);
    if (!job) throw new Error(`unknown snapshot job ${jobId}`);
    if (epoch !== undefined && epoch !== job.epoch) throw new SnapshotRolledBack(jobId);
    const id = String(++this.sequence);
    let done!: () => void;
    const emitted = new Promise<void>((resolve) => {
      done = resolve;
    });
    job.inFlight++;
    this.chunks.set(id, {
      id,
      job,
      table,
      changed: new Set(),
      truncated: false,
      rows: undefined,
      next: null,
      done: () => {
        job.inFlight--;
        if (job.inFlight === 0) for (const resolve of job.settled.splice(0)) resolve();
        done();
      },
    });
    const content = (kind: 'low' | 'high') =>
      JSON.stringify({ run: this.runId, snapshotId: jobId, chunk: id, kind } satisfies WatermarkContent);
    return { id, low: content('low'), high: content('high'), emitted };
  }

  /** The chunk's rows, read between the watermarks; `next` null = the job's last chunk. */
  fill(chunkId: string, rows: CopyRows, next: ChunkCursor | null): void {
    const chunk = this.chunks.get(chunkId);
    if (!chunk) return;
    chunk.rows = rows;
    chunk.next = next;
  }

  /** A table without open windows leaves the map, so that `observe` can skip every event. */
  private closeWindow(table: string, chunk: Chunk): void {
    const open = this.windows.get(table);
    if (!open) return;
    open.delete(chunk);
    if (open.size === 0) this.windows.delete(table);
  }

  /** Forgets a chunk whose high watermark may not have been written. */
  discard(chunkId: string): void {
    const chunk = this.chunks.get(chunkId);
    if (!chunk) return;
    this.chunks.delete(chunkId);
    this.closeWindow(tableKey(chunk.table.name.schema, chunk.table.name.table), chunk);
    chunk.done();
  }

  /** Resolves when no chunk of the job is in flight. */
  settled(jobId: string): Promise<void> {
    const job = this.jobs.get(jobId);
    if (!job || job.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => job.settled.push(resolve));
  }

  // ---- capture side (stream order) ----

  /** Records the key of a streamed change of a table with an open chunk window. */
  observe(event: ChangeEvent): void {
    // The usual case, streaming with no snapshot under way, costs nothing per event.
    if (this.sinceStart.size === 0 && this.windows.size === 0) return;
    const table = tableKey(event.relation.schema, event.relation.table);
    const changed = this.sinceStart.get(table);
    if (changed && event.op !== 't' && event.relation.keyIndexes.length > 0) {
      if (event.after) changed.add(keyOf(event.after, event.relation.keyIndexes));
      if (event.before) changed.add(keyOf(event.before, event.relation.keyIndexes));
      // Past the cap, reads may follow changes again (still correct in replay order).
      if (changed.size > MAX_TRACKED_KEYS) this.sinceStart.set(table, null);
    }
    const open = this.windows.get(table);
    if (!open || open.size === 0) return;
    for (const chunk of open) {
      if (event.op === 't') {
        chunk.truncated = true;
        continue;
      }
      const indexes = chunk.table.keyIndexes;
      if (indexes.length === 0) continue;
      if (event.after) chunk.changed.add(keyOf(event.after, indexes));
      if (event.before) chunk.changed.add(keyOf(event.before, indexes));
    }
  }

  /**
   * True for a change of the signal table (never written to the log). An insert of an
   * `execute-snapshot` signal queues backfill jobs at the transaction's commit.
   */
  signal(event: ChangeEvent): boolean {
    const table = this.signalTable;
    if (!table || event.relation.table !== table.table || event.relation.schema !== table.schema)
      return false;
    if (event.op !== 'c' || !event.after) return true;
    const column = (name: string) => {
      const i = event.relation.columns.findIndex((c) => c.name === name);
      return i < 0 ? null : (event.after?.[i] ?? null);
    };
    if (column('type') !== 'execute-snapshot') return true;
    const jobs = parseSnapshotSignal(column('id') ?? randomUUID(), column('data'));
    this.pending.push(() => {
      for (const state of jobs) this.add(state);
      this.wake();
    });
    return true;
  }

  /** Handles a watermark; at a high one, returns the chunk's surviving rows as read events. */
  watermark(message: LogicalMessage): SnapshotChunkRows | null {
    let content: WatermarkContent;
    try {
      content = JSON.parse(message.content.toString('utf8')) as WatermarkContent;
    } catch {
      return null;
    }
    if (content.run !== this.runId) return null;
    const chunk = this.chunks.get(content.chunk);
    if (!chunk) return null;
    const key = tableKey(chunk.table.name.schema, chunk.table.name.table);
    if (content.kind === 'low') {
      const open = this.windows.get(key) ?? new Set<Chunk>();
      this.windows.set(key, open);
      open.add(chunk);
      return null;
    }
    this.closeWindow(key, chunk);
    const rows = chunk.rows ?? { data: Buffer.alloc(0), count: 0 };
    const indexes = chunk.table.keyIndexes;
    const streamed = chunk.job.state.kind === 'initial' ? this.sinceStart.get(key) : undefined;
    const kept = chunk.truncated
      ? { data: Buffer.alloc(0), count: 0 }
      : indexes.length === 0 || (chunk.changed.size === 0 && !streamed?.size)
        ? rows
        : filterCopyRows(rows, (fields) => {
            const k = keyOf(fields, indexes);
            return !chunk.changed.has(k) && !streamed?.has(k);
          });
    const job = chunk.job;
    const final = chunk.next === null;
    this.pending.push(() => {
      if (!this.chunks.has(chunk.id)) return;
      this.chunks.delete(chunk.id);
      job.state = { ...job.state, cursor: chunk.next, rows: job.state.rows + kept.count };
      if (final && job.status === 'running') {
        job.status = 'done';
        this.sinceStart.delete(key);
      }
      chunk.done();
      this.checkIdle();
    });
    const initial = job.state.kind === 'initial';
    return {
      relation: chunk.table.relation,
      rows: kept,
      snapshot: initial ? 'true' : 'incremental',
      lastIsFinal: initial && final,
    };
  }

  /** The transaction whose events were just handed over committed. */
  commit(): void {
    const actions = this.pending;
    this.pending = [];
    for (const action of actions) action();
  }

  /** The stream restarted inside a transaction: it comes again, with its watermarks and signals. */
  rollback(): void {
    this.pending = [];
  }

  /**
   * Appends were lost (a full disk, capture.ts `resync`): back to the progress stored in the log,
   * which is what a restart would load. Every chunk in flight is forgotten (its watermarks, if the
   * stream brings them again, are ignored), and a job whose progress went back or that had chunks
   * in flight is read again from its stored cursor: its epoch rises, so its worker's next chunk is refused (SnapshotRolledBack)
   * and the worker starts again from `committed()`. A job that finished or failed in the lost
   * appends runs again. Jobs not in the stored progress stay as they are: finished ones finished
   * in the log; unfinished ones came from a signal the stream brings again (`add` keeps one per id),
   * or were planned at this start, and start again from their beginning.
   */
  restore(stored: SnapshotProgress | undefined): void {
    this.pending = [];
    // A job with chunks in flight starts again too: its worker's next chunk would follow them.
    const reading = new Set([...this.chunks.values()].map((chunk) => chunk.job));
    for (const chunk of [...this.chunks.values()]) this.discard(chunk.id);
    const states = new Map((stored?.jobs ?? []).map((state) => [state.id, state]));
    for (const [id, job] of this.jobs) {
      const state = states.get(id);
      const unfinished = job.status === 'queued' || job.status === 'running';
      if (!state && !unfinished) continue;
      const target = state ?? { ...job.state, cursor: null, rows: 0 };
      if (JSON.stringify(target) === JSON.stringify(job.state) && unfinished && !reading.has(job)) continue;
      job.state = target;
      job.epoch++;
      if (!unfinished) {
        job.status = 'queued';
        delete job.error;
      }
      const key = tableKey(target.schema, target.table);
      if (target.kind === 'initial' && !this.sinceStart.has(key)) this.sinceStart.set(key, new Set());
    }
    this.wake();
  }

  private add(state: SnapshotJobState): void {
    if (this.jobs.has(state.id)) return;
    this.jobs.set(state.id, {
      state,
      status: 'queued',
      total: null,
      meter: new RateMeter(),
      rate: 0,
      inFlight: 0,
      settled: [],
      epoch: 0,
    });
  }

  private checkIdle(): void {
    if (this.unfinished > 0 || this.full) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }
}

/** A chunk opened for a job whose progress went back (`restore`): its worker starts again from the stored cursor. */
export class SnapshotRolledBack extends Error {
  constructor(jobId: string) {
    super(`snapshot job ${jobId} went back to its stored progress`);
  }
}

function keyOf(tuple: Tuple, indexes: readonly number[]): string {
  return JSON.stringify(indexes.map((i) => tuple[i] ?? null));
}
