import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { LogError } from '../../core/errors.ts';
import type { Checkpoint, EventLog, PartitionInfo, PartitionLag, TopicInfo } from '../../core/event-log.ts';
import type { AppendItem, PartitionOffset, StoredRecord } from '../../core/record.ts';
import { checkReadArguments } from '../append-items.ts';
import { NatsAppender } from './nats-appender.ts';
import { listEntries } from './nats-kv-keys.ts';
import { currentTerm, type LeaderTerm } from './nats-leadership.ts';
import { LogNames, unescapeToken } from './nats-names.ts';
import { NatsReader } from './nats-reader.ts';
import {
  connectNats,
  ensureStream,
  type NatsStreamSettings,
  openBucket,
  openManager,
  unavailable,
} from './nats-setup.ts';
import { StreamStore } from './nats-store.ts';
import { type NatsTopicStats, TopicStatsCache } from './nats-topic-stats.ts';

export interface NatsEventLogOptions {
  /** Servers to connect to, e.g. from `parseNatsUrl('nats://a:4222,b:4222,c:4222')`. */
  readonly servers: readonly string[];
  /** Names the stream (TRIBUTARY_<NAME>) and the KV bucket; one log per name. Default `tributary`. */
  readonly name?: string;
  /** Partitions given to a topic when its first record is appended. Default 1. */
  readonly defaultPartitions?: number;
  /** Stream settings; only the writer creates the stream or checks them. Default R3, file storage. */
  readonly stream?: Partial<NatsStreamSettings>;
  /** Open for reading only (consumers, the API, the CLI): creates nothing. */
  readonly readonly?: boolean;
  readonly connectTimeoutMs?: number;
  /**
   * How long opening waits for JetStream to answer (a cluster electing its leaders after a
   * restart). Default 60 s for a writer, 15 s for a reader.
   */
  readonly startWaitMs?: number;
  /** How long an append keeps retrying while the cluster does not answer. Default: forever. */
  readonly retryForMs?: number;
  /** Told of each append attempt that failed and will be retried (e.g. quorum lost). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

/** How long a listing of the bucket's keys retries while JetStream has no meta leader. */
const KEYS_WAIT_MS = 15_000;

const DEFAULT_SETTINGS: NatsStreamSettings = { replicas: 3, storage: 'file', maxAgeMs: 0, maxBytes: 0 };

/**
 * The event log on a NATS JetStream stream (docs/nats.md), for logs that outgrow one machine.
 *
 * Guarantees, beyond those of `EventLog`:
 * - An append resolves once the stream leader stored every message of it and (R3) a majority of the
 *   replicas did; with `sync_interval: always` on the servers, once they are on disk (docs/nats.md).
 * - Records are grouped into messages per partition (up to 10,000 or the payload limit each); an append
 *   is all-or-nothing for readers: its messages name the sequence of its last message, and nothing is
 *   read of an append whose last message does not exist. The checkpoint is that last message.
 * - Per-partition order survives leader changes and retries: every message expects the sequence of the
 *   previous one; a writer that lost its place is fenced (LOG_FENCED) instead of appending.
 * - While the cluster cannot store (no quorum), an append retries the same messages (idempotently,
 *   by message id) and calls `onRetry`; the caller just waits (capture pauses; its slot is kept).
 * - Consumer group offsets live in the KV bucket beside the stream, one key per partition.
 */
export class NatsEventLog implements EventLog {
  readonly url: string;
  readonly #nc: NatsConnection;
  readonly #names: LogNames;
  readonly #store: StreamStore | undefined;
  readonly #kvStream: StreamStore | undefined;
  readonly #reader: NatsReader | undefined;
  readonly #kv: KV | undefined;
  readonly #appender: NatsAppender | undefined;
  readonly #stats: TopicStatsCache | undefined;
  #closed = false;

  private constructor(
    nc: NatsConnection,
    names: LogNames,
    url: string,
    parts: {
      store?: StreamStore;
      kvStream?: StreamStore;
      reader?: NatsReader;
      kv?: KV;
      appender?: NatsAppender;
    },
  ) {
    this.#nc = nc;
    this.#names = names;
    this.url = url;
    this.#store = parts.store;
    this.#kvStream = parts.kvStream;
    this.#reader = parts.reader;
    this.#kv = parts.kv;
    this.#appender = parts.appender;
    this.#stats = parts.store ? new TopicStatsCache(parts.store, names, () => this.topics()) : undefined;
  }

  static async open(options: NatsEventLogOptions): Promise<NatsEventLog> {
    const partitions = options.defaultPartitions ?? 1;
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > 10_000) {
      throw new LogError(
        'LOG_INVALID_ARGUMENT',
        `defaultPartitions must be an integer from 1 to 10000, got ${partitions}`,
      );
    }
    const names = new LogNames(options.name ?? 'tributary');
    const settings = { ...DEFAULT_SETTINGS, ...options.stream };
    const url = `nats://${options.servers.map((s) => s.replace(/^nats:\/\//, '')).join(',')}`;
    const nc = await connectNats(options.servers, options.connectTimeoutMs ?? 5_000);
    try {
      const writable = options.readonly !== true;
      // Right after a node restart the cluster may have no meta or stream leader for a few
      // seconds ("temporarily unavailable"): the writer (the capture) waits up to a minute for
      // one, a reader (consumers, the CLI) 15 s. An unreachable server still fails at once.
      const waitUntil = Date.now() + (options.startWaitMs ?? (writable ? 60_000 : 15_000));
      let attempt = 0;
      const { jsm, kv, exists } = await (async function prepare(): Promise<{
        jsm: Awaited<ReturnType<typeof openManager>>;
        kv: KV | undefined;
        exists: boolean;
      }> {
        for (;;) {
          try {
            const jsm = await openManager(nc, options.servers);
            if (writable) await ensureStream(jsm, names, settings);
            const exists =
              writable ||
              (await jsm.streams.info(names.stream).then(
                () => true,
                () => false,
              ));
            const kv = exists ? await openBucket(nc, names, settings, writable) : undefined;
            return { jsm, kv, exists };
          } catch (error) {
            const retryable = error instanceof LogError && error.retryable;
            if (!retryable || Date.now() >= waitUntil) throw error;
            options.onRetry?.(error, ++attempt);
            await new Promise((resolve) => setTimeout(resolve, 500));
          }
        }
      })();
      if (!exists) return new NatsEventLog(nc, names, url, {});
      const store = new StreamStore(jsm, names.stream);
      const kvStream = new StreamStore(jsm, names.kvStream);
      const reader = new NatsReader(store);
      const js: JetStreamClient = jetstream(nc, { timeout: 5_000 });
      const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
      const appender =
        writable && kv !== undefined
          ? new NatsAppender(
              js,
              kv,
              store,
              reader,
              names,
              {
                defaultPartitions: partitions,
                maxMessageBytes: Math.max(4_096, maxPayload - 4_096),
                retryForMs: options.retryForMs ?? Number.POSITIVE_INFINITY,
                ...(options.onRetry ? { onRetry: options.onRetry } : {}),
              },
              kvStream,
            )
          : undefined;
      return new NatsEventLog(nc, names, url, {
        store,
        kvStream,
        reader,
        ...(kv ? { kv } : {}),
        ...(appender ? { appender } : {}),
      });
    } catch (error) {
      await nc.close().catch(() => undefined);
      throw error;
    }
  }

  /** False for a read-only open that found no stream (no capture has created the log yet). */
  get exists(): boolean {
    return this.#store !== undefined;
  }

  async append(items: readonly AppendItem[], checkpoint?: Checkpoint): Promise<readonly StoredRecord[]> {
    this.#open('append to');
    if (this.#appender === undefined) {
      throw new LogError('LOG_READONLY', `Cannot append to ${this.url}: it was opened read-only`, {
        hint: 'Open the log without readonly in the process that writes (only one process should append).',
      });
    }
    if (items.length === 0 && checkpoint === undefined) return [];
    return this.#appender.append(items, checkpoint);
  }

  /**
   * Makes this writer the only one that may append for `source` from now on: takes the next
   * leadership term, which fences every writer that took an earlier one (LOG_FENCED on its next
   * append). The capture calls it once it is active, before it reads its position.
   */
  async takeLeadership(
    source: string,
    holder: string,
  ): Promise<{ term: LeaderTerm; previous: LeaderTerm | null }> {
    this.#open('take the leadership of');
    if (this.#appender === undefined) {
      throw new LogError(
        'LOG_READONLY',
        `Cannot take the leadership of ${this.url}: it was opened read-only`,
      );
    }
    return this.#appender.takeLeadership(source, holder);
  }

  /** The current leadership term for `source` (null before any capture took one). */
  async leadership(source: string): Promise<LeaderTerm | null> {
    this.#open('read the leadership of');
    const kv = this.#kv;
    const kvStream = this.#kvStream;
    if (kv === undefined || kvStream === undefined) return null;
    const key = LogNames.leaderKey(source);
    return currentTerm({ kv, kvStream, key, kvSubject: this.#names.kvSubject(key) }).catch((e: unknown) => {
      throw unavailable('read the leadership term', e);
    });
  }

  async checkpoint(source: string): Promise<Checkpoint | null> {
    this.#open('read a checkpoint from');
    if (this.#store === undefined) return null;
    const last = await this.#store.last(this.#names.checkpoint(source));
    return last === null ? null : { source, position: new TextDecoder().decode(last.data) };
  }

  async read(
    topic: string,
    partition: number,
    offset: number,
    max: number,
  ): Promise<readonly StoredRecord[]> {
    checkReadArguments(offset, max);
    this.#open('read');
    if (this.#reader === undefined || max === 0 || !Number.isInteger(partition) || partition < 0) return [];
    return this.#reader.read(this.#names.records(topic, partition), topic, partition, offset, max);
  }

  /** Records and (approximate) bytes per topic as last computed; see TopicStatsCache. */
  topicStats(): readonly NatsTopicStats[] {
    return this.#closed ? [] : (this.#stats?.current() ?? []);
  }

  /** Computes `topicStats()` now. */
  async refreshTopicStats(): Promise<readonly NatsTopicStats[]> {
    this.#open('read statistics of');
    return this.#stats?.refresh() ?? [];
  }

  async topics(): Promise<readonly TopicInfo[]> {
    this.#open('list the topics of');
    const reader = this.#reader;
    if (reader === undefined || this.#kv === undefined) return [];
    const names: { topic: string; partitions: number }[] = [];
    for (const entry of await this.#entries('t.*')) {
      names.push({
        topic: unescapeToken(entry.key.slice(2)),
        partitions: (entry.json() as { partitions: number }).partitions,
      });
    }
    names.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0));
    return Promise.all(
      names.map(async ({ topic, partitions }) => ({
        topic,
        partitions: await Promise.all(
          Array.from(
            { length: partitions },
            async (_, partition): Promise<PartitionInfo> => ({
              partition,
              ...(await reader.bounds(this.#names.records(topic, partition))),
            }),
          ),
        ),
      })),
    );
  }

  async commit(group: string, positions: readonly PartitionOffset[]): Promise<void> {
    this.#open('commit offsets to');
    for (const { offset } of positions) {
      if (!Number.isInteger(offset) || offset < 0) {
        throw new LogError('LOG_INVALID_ARGUMENT', `Group ${group} tried to commit offset ${offset}`);
      }
    }
    const kv = this.#kv;
    if (kv === undefined) {
      throw new LogError('LOG_FAILED', `Cannot commit offsets to ${this.url}: the log does not exist yet`, {
        hint: 'Start the capture (which creates the stream) before its consumers.',
      });
    }
    await Promise.all(
      positions.map((p) => kv.put(LogNames.offsetKey(group, p.topic, p.partition), String(p.offset))),
    ).catch((e: unknown) => {
      throw unavailable(`commit offsets of group ${group}`, e);
    });
  }

  async committed(group: string): Promise<readonly PartitionOffset[]> {
    this.#open('read committed offsets from');
    const kv = this.#kv;
    if (kv === undefined) return [];
    const out: PartitionOffset[] = [];
    for (const entry of await this.#entries(LogNames.groupKeys(group))) {
      const [, , topic, partition] = entry.key.split('.');
      out.push({
        topic: unescapeToken(topic!),
        partition: Number(partition),
        offset: offsetOf(entry.string()),
      });
    }
    return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
  }

  /**
   * Every partition of every topic the group has committed on; a partition it never committed on
   * counts from 0, and records already removed by retention are not counted as lag.
   */
  async lag(group: string): Promise<readonly PartitionLag[]> {
    const committed = await this.committed(group);
    if (committed.length === 0) return [];
    const topics = new Set(committed.map((c) => c.topic));
    const at = new Map(committed.map((c) => [`${c.topic}\0${c.partition}`, c.offset]));
    const out: PartitionLag[] = [];
    for (const info of await this.topics()) {
      if (!topics.has(info.topic)) continue;
      for (const p of info.partitions) {
        const position = at.get(`${info.topic}\0${p.partition}`) ?? 0;
        out.push({
          topic: info.topic,
          partition: p.partition,
          committed: position,
          endOffset: p.endOffset,
          records: Math.max(0, p.endOffset - Math.max(position, p.startOffset)),
        });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#nc.close().catch(() => undefined);
  }

  /**
   * `read`, retried for up to 15 s while JetStream answers "temporarily unavailable": right after
   * nodes restart (appends already go through) listing keys needs a consumer, which needs the
   * cluster's meta leader, and reads can fail for a few seconds.
   */
  async #patiently<T>(read: () => Promise<T>, action: string): Promise<T> {
    const giveUpAt = Date.now() + KEYS_WAIT_MS;
    for (;;) {
      try {
        return await read();
      } catch (e) {
        const error = unavailable(action, e);
        if (this.#closed || Date.now() >= giveUpAt) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }

  async #entries(filter: string): Promise<KvEntry[]> {
    const kv = this.#kv!;
    return this.#patiently(() => listEntries(kv, filter), 'list keys of the log bucket');
  }

  #open(action: string): void {
    if (this.#closed) throw new LogError('LOG_CLOSED', `Cannot ${action} ${this.url}: the log is closed`);
  }
}

/**
 * A committed offset as stored: a number (`commit`), or the JSON of a partition owned by a
 * `tributary consumers run` replica (`{"offset":n,"owner":...}`, consumers/nats/group-keys.ts).
 */
function offsetOf(text: string): number {
  if (text.startsWith('{')) return Number((JSON.parse(text) as { offset?: unknown }).offset ?? 0);
  return Number(text);
}
