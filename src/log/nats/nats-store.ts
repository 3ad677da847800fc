import type { JetStreamManager, MsgRequest, StoredMsg } from '@nats-io/jetstream';
import { isNotFound, unavailable } from './nats-setup.ts';

/**
 * The stream's messages as the log needs them. `next` reads with direct get (any replica answers;
 * one that lags returns less, never a hole), every question whose answer decides what is committed
 * goes to the stream leader.
 */
export class StreamStore {
  readonly #jsm: JetStreamManager;
  readonly stream: string;

  constructor(jsm: JetStreamManager, stream: string) {
    this.#jsm = jsm;
    this.stream = stream;
  }

  /** The first message of `subject` at stream sequence `seq` or later, or null. */
  async next(subject: string, seq: number): Promise<StoredMsg | null> {
    try {
      return await this.#jsm.direct.getMessage(this.stream, { seq: Math.max(1, seq), next_by_subj: subject });
    } catch (error) {
      if (isNotFound(error)) return null;
      throw unavailable(`read ${subject} from stream ${this.stream}`, error);
    }
  }

  /** The message at `seq` as the leader has it (null if deleted or not yet written). */
  async at(seq: number): Promise<StoredMsg | null> {
    return this.#leaderGet({ seq });
  }

  /** The last message of `subject`, from the leader. */
  async last(subject: string): Promise<StoredMsg | null> {
    return this.#leaderGet({ last_by_subj: subject });
  }

  /** The first message of `subject` at `seq` or later, from the leader. */
  async leaderNext(subject: string, seq: number): Promise<StoredMsg | null> {
    return this.#leaderGet({ seq: Math.max(1, seq), next_by_subj: subject } as unknown as MsgRequest);
  }

  /** first_seq and last_seq of the stream (from the leader); null when the stream does not exist. */
  async bounds(): Promise<{ first: number; last: number; messages: number } | null> {
    try {
      const info = await this.#jsm.streams.info(this.stream);
      return { first: info.state.first_seq, last: info.state.last_seq, messages: info.state.messages };
    } catch (error) {
      if (isNotFound(error)) return null;
      throw unavailable(`read the state of stream ${this.stream}`, error);
    }
  }

  /** The stream's stored bytes and messages, and the messages of each subject matching `filter`. */
  async subjects(
    filter: string,
  ): Promise<{ bytes: number; messages: number; subjects: Record<string, number> }> {
    try {
      const info = await this.#jsm.streams.info(this.stream, { subjects_filter: filter });
      return { bytes: info.state.bytes, messages: info.state.messages, subjects: info.state.subjects ?? {} };
    } catch (error) {
      throw unavailable(`read the subjects of stream ${this.stream}`, error);
    }
  }

  async #leaderGet(query: MsgRequest): Promise<StoredMsg | null> {
    try {
      return await this.#jsm.streams.getMessage(this.stream, query);
    } catch (error) {
      if (isNotFound(error)) return null;
      throw unavailable(`read from stream ${this.stream}`, error);
    }
  }
}
