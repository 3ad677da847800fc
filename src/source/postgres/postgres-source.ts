import pg from 'pg';
import type { SchemaMessage, SourceMessage } from '../../core/change-event.ts';
import { DecodeError, DiskFullError, type TributaryError } from '../../core/errors.ts';
import { formatLsn, type Lsn, parseLsn } from '../../core/lsn.ts';
import type { Source, SourceHandler } from '../../core/source.ts';
import { CopyDataQueue } from './copy-data-queue.ts';
import { LazyClient } from './lazy-client.ts';
import { type DecodedMessage, PgOutputDecoder } from './pgoutput-decoder.ts';
import { checkSourceUrl, classifyPgError } from './postgres-errors.ts';
import type { PostgresSourceOptions, SourceStats } from './postgres-source-options.ts';
import { readColumnDetails } from './relation-catalog.ts';
import {
  quoteIdent,
  quoteLiteral,
  readKeepalive,
  readXLogDataStart,
  standbyStatusUpdate,
  XLOG_DATA_HEADER,
} from './replication-protocol.ts';
import { ReplicationStream } from './replication-stream.ts';
import { querySlotState, type SlotState, withPrimaryKey } from './source-catalog.ts';
import { Heartbeat } from './source-heartbeat.ts';
import { ensurePublication, ensureSlot, preflight, type SlotInfo, slotLostError } from './source-setup.ts';
import { checkPublicationName, checkSlotName } from './table-name.ts';
import { ToastFetcher } from './toast-fetcher.ts';
import { TypeRegistry } from './type-registry.ts';

const SESSION_SETTINGS = '-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1 -c TimeZone=UTC';

/**
 * Streams committed transactions from a PostgreSQL logical replication slot (pgoutput).
 * See `Source` for the delivery contract. Reconnects with exponential backoff when an
 * established stream drops; problems of setup (privileges, wal_level...) fail at once.
 */
export class PostgresSource implements Source {
  readonly stats: SourceStats = {
    connected: false,
    bytesReceived: 0,
    messagesReceived: 0,
    lastReceivedLsn: 0n,
    streamedLsn: 0n,
    confirmedLsn: 0n,
    reconnects: 0,
    diskFull: null,
    heartbeats: 0,
    lastHeartbeatLsn: 0n,
  };
  private readonly types: TypeRegistry;
  private readonly catalog: LazyClient;
  private stream: ReplicationStream | undefined;
  private replication: pg.Client | undefined;
  private acknowledged: Lsn;
  /** Ends the running stream with an error (see `interrupt`); unset between streams. */
  private interruptStream: ((error: unknown) => void) | undefined;
  /** A keepalive position that may be confirmed once every commit received before it is durable. */
  private idle: { walEnd: Lsn; commitEnd: Lsn } | undefined;
  private lastStatusAt = 0;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private draining: Promise<void> | undefined;
  private slotInfo: SlotInfo | undefined;
  private readonly clock: () => bigint;
  private readonly heartbeat: Heartbeat;
  /** Table shapes (for the schema history) waiting for the change they precede. */
  private heldSchemas: SchemaMessage[] = [];
  private readonly toast: ToastFetcher | undefined;
  /** The last call of `onSlotHeld`, awaited before any message is handled. */
  private slotHeld: Promise<void> | undefined;
  private slotHeldDone = false;

  constructor(private readonly options: PostgresSourceOptions) {
    checkSourceUrl(options.url);
    checkSlotName(options.slot);
    checkPublicationName(options.publication);
    this.acknowledged = options.startLsn ?? 0n;
    this.catalog = new LazyClient({ connectionString: options.url, application_name: 'tributary' });
    this.clock = options.clock ?? (() => BigInt(Date.now()) * 1000n);
    this.types = new TypeRegistry((sql, params) => this.catalog.query(sql, params));
    this.toast = options.toastFetch ? new ToastFetcher(options.url, SESSION_SETTINGS) : undefined;
    this.heartbeat = new Heartbeat({
      intervalMs: options.heartbeatIntervalMs ?? 0,
      query: (sql, params) => this.catalog.query<{ lsn: string }>(sql, params),
      logger: options.logger,
      onBeat: (lsn) => {
        this.stats.heartbeats++;
        this.stats.lastHeartbeatLsn = lsn;
      },
    });
  }

  /** Checks the database and creates the publication and slot if needed. Idempotent. */
  async prepare(): Promise<SlotInfo> {
    if (this.slotInfo) return this.slotInfo;
    try {
      this.slotInfo = await this.catalog.use(async (client) => {
        await preflight(client, this.options);
        await ensurePublication(client, this.options);
        return ensureSlot(client, {
          ...this.options,
          ...(this.options.startLsn !== undefined ? { resumeFrom: this.options.startLsn } : {}),
        });
      });
    } catch (error) {
      throw classifyPgError(error, this.options.url);
    }
    if (this.slotInfo.created) {
      this.options.logger.info(
        { slot: this.options.slot, lsn: formatLsn(this.slotInfo.lsn) },
        'created replication slot',
      );
    }
    return this.slotInfo;
  }

  /** The server's current WAL position (on a standby, what it has replayed). */
  async serverLsn(): Promise<Lsn> {
    const result = await this.catalog.query<{ lsn: string }>(
      'select (case when pg_is_in_recovery() then pg_last_wal_replay_lsn() else pg_current_wal_lsn() end)::text as lsn',
    );
    return parseLsn(result.rows[0]!.lsn);
  }

  /** The slot as the server sees it: what it retains and how far behind we are, in bytes. */
  async slotState(): Promise<SlotState | null> {
    return this.catalog.use((client) => querySlotState(client, this.options.slot));
  }

  /** The database name, for the records' `source.db`. */
  async database(): Promise<string> {
    return (await this.catalog.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
  }

  acknowledge(lsn: Lsn): void {
    if (lsn > this.acknowledged) this.acknowledged = lsn;
  }

  interrupt(error: unknown): void {
    this.interruptStream?.(error);
  }

  async start(handler: SourceHandler, signal?: AbortSignal): Promise<void> {
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    await this.prepare();
    const {
      initialDelayMs = 200,
      maxDelayMs = 30_000,
      maxAttempts = Number.POSITIVE_INFINITY,
    } = this.options.reconnect ?? {};
    if (!this.stopping) this.heartbeat.start();
    try {
      await this.streamWithRetries(handler, { initialDelayMs, maxDelayMs, maxAttempts });
    } finally {
      this.heartbeat.stop();
    }
  }

  private async streamWithRetries(
    handler: SourceHandler,
    retry: { initialDelayMs: number; maxDelayMs: number; maxAttempts: number },
  ): Promise<void> {
    const { initialDelayMs, maxDelayMs, maxAttempts } = retry;
    let attempt = 0;
    while (!this.stopping) {
      // Whether the server accepted START_REPLICATION: a stream that dropped after that is a
      // network fault to retry, even on the first attempt and before any data arrived.
      let started = false;
      try {
        await this.streamOnce(
          handler,
          () => {
            started = true;
          },
          () => {
            attempt = 0;
          },
        );
      } catch (raw) {
        if (raw instanceof DiskFullError) {
          if (this.stopping) break;
          await this.waitForDiskSpace(raw);
          attempt = 0;
          continue;
        }
        const error = classifyPgError(raw, this.options.url);
        if (this.stopping) break;
        // A dropped or invalidated slot also ends the stream: name it rather than retry forever.
        const lost = await this.slotLost();
        if (lost) throw lost;
        if (
          !error.retryable ||
          (!started && this.stats.reconnects === 0 && attempt === 0 && !this.isTransient(error))
        ) {
          throw error;
        }
        attempt++;
        if (attempt > maxAttempts) throw error;
        const delay =
          Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5);
        this.options.logger.warn(
          { err: error, attempt, delayMs: Math.round(delay) },
          'replication connection lost; reconnecting',
        );
        this.stats.reconnects++;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
      } finally {
        await this.closeConnections();
      }
    }
  }

  /**
   * A full disk is not a lost connection: the stream is closed (the slot keeps every change from
   * the last acknowledged position), no reconnect is tried until the log's disk has space again,
   * then streaming resumes from the durable position, as after a restart.
   */
  private async waitForDiskSpace(error: DiskFullError): Promise<void> {
    this.stats.diskFull = {
      since: new Date().toISOString(),
      freeBytes: error.freeBytes,
      neededBytes: error.neededBytes,
    };
    this.options.logger.error(
      { err: error, freeBytes: error.freeBytes, neededBytes: error.neededBytes },
      'event log disk full: appending stopped, waiting for free space',
    );
    await this.closeConnections();
    const abort = new AbortController();
    this.wake = () => abort.abort();
    try {
      await error.spaceReturned(abort.signal);
      this.options.logger.warn('event log disk has space again: resuming capture');
    } catch {
      // stopping
    } finally {
      this.wake = undefined;
      this.stats.diskFull = null;
    }
  }

  /** SLOT_LOST when the slot is gone or invalidated; undefined when it is fine or unknowable. */
  private async slotLost(): Promise<TributaryError | undefined> {
    try {
      const state = await this.slotState();
      if (state === null) return slotLostError(this.options.slot, 'missing');
      if (state.walStatus === 'lost') return slotLostError(this.options.slot, 'invalidated');
    } catch {
      // The server is unreachable: the reconnect loop handles that.
    }
    return undefined;
  }

  private isTransient(error: TributaryError): boolean {
    // A slot held by a previous run that was killed is released within moments by the server.
    return error.code === 'SOURCE_CONNECTION' && /in use|active for PID/i.test(error.message);
  }

  private async streamOnce(
    handler: SourceHandler,
    onStarted: () => void,
    onFirstData: () => void,
  ): Promise<void> {
    const decoder = new PgOutputDecoder(this.types);
    this.heldSchemas = [];
    const client = new pg.Client({
      connectionString: this.options.url,
      replication: 'database',
      options:
        this.options.walSenderTimeoutMs === undefined
          ? SESSION_SETTINGS
          : `${SESSION_SETTINGS} -c wal_sender_timeout=${Math.round(this.options.walSenderTimeoutMs)}`,
    } as pg.ClientConfig);
    this.replication = client;
    let stream: ReplicationStream | undefined;
    client.on('error', (error) => stream?.abort(error));
    // `stop()` may end the client while it connects; pg then never settles `connect()`.
    await new Promise<void>((resolve, reject) => {
      client.once('end', () => reject(new Error('Connection terminated while connecting')));
      client.connect().then(() => resolve(), reject);
    });
    const queue = new CopyDataQueue(() => stream?.socket);
    let failure: unknown;
    let first = true;
    this.interruptStream = (error) => {
      if (failure) return;
      failure = error;
      stream?.abort(error as Error);
    };

    const process = async (chunks: Buffer[], messages: SourceMessage[]) => {
      for (const chunk of chunks) {
        this.stats.bytesReceived += chunk.length;
        const type = chunk[0];
        if (type === 0x77) {
          // 'w' XLogData
          const start = readXLogDataStart(chunk);
          if (start > this.stats.streamedLsn) this.stats.streamedLsn = start;
          const decoded = decoder.decode(chunk, XLOG_DATA_HEADER, chunk.length, start);
          if (Array.isArray(decoded)) for (const m of decoded) await this.accept(m, decoder, messages);
          else await this.accept(decoded, decoder, messages);
          const last = messages[messages.length - 1];
          if (last?.kind === 'commit') this.stats.lastReceivedLsn = last.endLsn;
          // A non-transactional message is confirmed at its (end) LSN once durable (see Capture).
          else if (last?.kind === 'message' && !last.transactional) this.stats.lastReceivedLsn = last.lsn;
        } else if (type === 0x6b) {
          // 'k' keepalive
          const keepalive = readKeepalive(chunk);
          if (keepalive.walEnd > this.stats.streamedLsn) this.stats.streamedLsn = keepalive.walEnd;
          this.idle = { walEnd: keepalive.walEnd, commitEnd: this.stats.lastReceivedLsn };
          if (keepalive.replyRequested) this.lastStatusAt = 0;
        } else {
          throw new DecodeError(`unexpected replication message type 0x${(type ?? 0).toString(16)}`);
        }
      }
      this.stats.messagesReceived += messages.length;
      if (this.toast && messages.length > 0) await this.toast.fill(messages);
      if (messages.length > 0) await handler(messages);
      this.sendStatus(false);
    };

    const drain = async () => {
      const socket = stream?.socket;
      socket?.pause();
      try {
        await this.slotHeld;
        while (queue.length > 0 && !failure) {
          await process(queue.take(), []);
        }
      } catch (error) {
        failure = error;
        stream?.abort(error as Error);
      } finally {
        this.draining = undefined;
        if (!this.stopping) socket?.resume();
      }
    };

    stream = new ReplicationStream(
      `START_REPLICATION SLOT ${quoteIdent(this.options.slot)} LOGICAL ${formatLsn(this.acknowledged)} (proto_version '1', publication_names ${quoteLiteral(quoteIdent(this.options.publication))}, messages 'true')`,
      (chunk) => {
        if (first) {
          first = false;
          onFirstData();
        }
        queue.push(chunk);
        if (!this.draining && !failure) this.draining = Promise.resolve().then(drain);
      },
    );
    this.stream = stream;
    // `pg` has no handler for CopyBothResponse; its connection still emits it.
    // `connected` means streaming: the server accepted START_REPLICATION.
    (client as unknown as { connection: NodeJS.EventEmitter }).connection.once('replicationStart', () => {
      this.stats.connected = true;
      if (this.options.onSlotHeld && !this.slotHeldDone) {
        // Until it succeeds, every stream calls it again; its failure ends this stream.
        this.slotHeld = this.options.onSlotHeld().then(() => {
          this.slotHeldDone = true;
        });
        this.slotHeld.catch((error: unknown) => stream?.abort(error as Error));
      }
      onStarted();
    });
    client.query(stream as unknown as pg.QueryConfig);
    this.options.logger.info(
      { slot: this.options.slot, from: formatLsn(this.acknowledged) },
      'replication started',
    );
    const timer = setInterval(
      () => this.sendStatus(false),
      Math.max(50, Math.min(this.options.statusIntervalMs ?? 1000, 10_000)),
    );
    try {
      await stream.done;
      await this.draining;
      if (failure) throw failure;
    } catch (error) {
      await this.draining;
      throw failure ?? error;
    } finally {
      clearInterval(timer);
      this.interruptStream = undefined;
      this.stats.connected = false;
    }
  }

  private async accept(
    message: DecodedMessage,
    decoder: PgOutputDecoder,
    out: SourceMessage[],
  ): Promise<void> {
    if (message.kind === 'relation') {
      await this.types.resolve(message.relation.columns.map((c) => c.typeOid));
      const relation = decoder.addRelation(
        await this.catalog.use((client) => withPrimaryKey(client, message.relation)),
      );
      const details = await this.catalog.use((client) => readColumnDetails(client, relation));
      this.heldSchemas.push({ kind: 'schema', relation, lsn: 0n, details });
    } else if (message.kind !== 'ignored') {
      // A Relation message has no LSN of its own: it takes that of the change it precedes.
      if (this.heldSchemas.length > 0) {
        const lsn = message.kind === 'change' ? message.event.lsn : 0n;
        for (const held of this.heldSchemas) out.push({ ...held, lsn });
        this.heldSchemas = [];
      }
      out.push(message);
    }
  }

  /** The position it is safe to confirm: acknowledged commits, or an idle keepalive's position. */
  private confirmable(): Lsn {
    let lsn = this.acknowledged;
    if (this.idle && this.acknowledged >= this.idle.commitEnd && this.idle.walEnd > lsn)
      lsn = this.idle.walEnd;
    return lsn;
  }

  private sendStatus(force: boolean): void {
    const now = Date.now();
    const lsn = this.confirmable();
    const interval = this.options.statusIntervalMs ?? 1000;
    // Unchanged positions are still reported, well within a wal_sender_timeout we set: a capture
    // waiting on its log (socket paused, keepalive requests unread) must not lose its slot.
    const idleMs = Math.min(10_000, (this.options.walSenderTimeoutMs ?? Number.POSITIVE_INFINITY) / 4);
    if (!force && lsn === this.stats.confirmedLsn && now - this.lastStatusAt < idleMs) return;
    if (!force && now - this.lastStatusAt < interval && this.lastStatusAt !== 0) return;
    if (!this.stream) return;
    this.stream.send(standbyStatusUpdate(lsn, this.clock()));
    this.stats.confirmedLsn = lsn;
    this.lastStatusAt = now;
  }

  /**
   * Idempotent. Stops delivering, waits for the batch in the handler, then for `beforeFinalStatus`
   * (the caller makes the last batches durable and acknowledges them), then reports the final
   * position to the server and closes the connections.
   */
  async stop(beforeFinalStatus?: () => Promise<void>): Promise<void> {
    if (this.stopped) return this.stopped;
    this.stopping = true;
    this.heartbeat.stop();
    this.wake?.();
    this.stopped = (async () => {
      await this.draining;
      await beforeFinalStatus?.().catch(() => undefined);
      const stream = this.stream;
      if (stream && this.stats.connected) {
        this.sendStatus(true);
        stream.end();
        await Promise.race([
          stream.done.catch(() => undefined),
          new Promise((r) => setTimeout(r, 5000).unref()),
        ]);
      }
      await this.closeConnections();
      await this.catalog.close();
      await this.toast?.close();
    })();
    return this.stopped;
  }

  private async closeConnections(): Promise<void> {
    const client = this.replication;
    this.replication = undefined;
    this.stream = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
