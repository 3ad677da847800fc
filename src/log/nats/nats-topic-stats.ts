import type { TopicInfo } from '../../core/event-log.ts';
import type { LogNames } from './nats-names.ts';
import type { StreamStore } from './nats-store.ts';

export interface NatsTopicStats {
  readonly topic: string;
  /** Records held (offsets from the first kept to the end, over all partitions). */
  readonly records: number;
  /**
   * Approximate: JetStream counts bytes per stream, not per subject, so the stream's bytes are
   * shared out by each topic's number of messages.
   */
  readonly bytes: number;
}

/**
 * Records and bytes per topic of a NATS log, for the status page, `/api/topics` and the metrics,
 * which ask synchronously: `current()` answers with the last figures computed (none before the
 * first) and starts a refresh when they are older than `maxAgeMs`. A refresh that fails keeps the
 * previous figures (the cluster may be electing a leader); the next call tries again.
 */
export class TopicStatsCache {
  #stats: readonly NatsTopicStats[] = [];
  #at = 0;
  #refreshing: Promise<readonly NatsTopicStats[]> | undefined;

  constructor(
    private readonly store: StreamStore,
    private readonly names: LogNames,
    private readonly topics: () => Promise<readonly TopicInfo[]>,
    private readonly maxAgeMs = 5_000,
  ) {}

  current(): readonly NatsTopicStats[] {
    if (Date.now() - this.#at > this.maxAgeMs) this.refresh().catch(() => undefined);
    return this.#stats;
  }

  /** Computes the figures now (one refresh at a time) and returns them. */
  refresh(): Promise<readonly NatsTopicStats[]> {
    this.#refreshing ??= this.#compute().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #compute(): Promise<readonly NatsTopicStats[]> {
    const [topics, stream] = await Promise.all([
      this.topics(),
      this.store.subjects(this.names.recordSubjects),
    ]);
    const messages = new Map<string, number>();
    for (const [subject, count] of Object.entries(stream.subjects)) {
      const topic = this.names.topicOf(subject);
      if (topic !== undefined) messages.set(topic, (messages.get(topic) ?? 0) + count);
    }
    const bytesPerMessage = stream.messages > 0 ? stream.bytes / stream.messages : 0;
    this.#stats = topics.map((t) => ({
      topic: t.topic,
      records: t.partitions.reduce((n, p) => n + (p.endOffset - p.startOffset), 0),
      bytes: Math.round((messages.get(t.topic) ?? 0) * bytesPerMessage),
    }));
    this.#at = Date.now();
    return this.#stats;
  }
}
