import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsumerStore, DeadLetter as StoredDeadLetter } from '../consumers/consumer-store.ts';
import { natsDeadLetters, resolveNatsDeadLetter } from '../consumers/nats/nats-dead-letters.ts';
import type { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import type { NatsLogRef } from '../log/open-event-log.ts';
import { ApiError } from './api-errors.ts';
import type { DeadLetter, DeadLetterControl } from './control-plane-deps.ts';

const CLI = fileURLToPath(new URL('../../bin/tributary.js', import.meta.url));

export interface DeadLetterAdapterOptions {
  /** Where the dead letters are: the data directory's store, or a NATS log's bucket. */
  readonly letters: DeadLetterSource;
  /** The consumers whose dead letters are shown (the supervisor's). */
  readonly consumers: () => readonly string[];
  readonly dataDir: string;
  readonly consumersDir: string;
  /** Who resolves, recorded with each discard. */
  readonly by?: string;
  readonly replayTimeoutMs?: number;
}

/** The few operations the API needs of a dead-letter store. */
export interface DeadLetterSource {
  pending(
    consumers: readonly string[],
    limit: number,
    offset: number,
  ): Promise<{ total: number; items: StoredDeadLetter[] }>;
  /** A pending dead letter of one of `consumers` by id. */
  find(consumers: readonly string[], id: number): Promise<StoredDeadLetter | undefined>;
  discard(letter: StoredDeadLetter, by: string): Promise<boolean>;
  /** Extra arguments of `tributary dlq replay` to reach this store. */
  readonly replayArgs: readonly string[];
  readonly replayEnv?: NodeJS.ProcessEnv;
}

/** The data directory's consumer store (the embedded log). */
export function storeLetters(store: ConsumerStore): DeadLetterSource {
  return {
    async pending(consumers, limit, offset) {
      const page = store.deadLetterPage(consumers, { status: 'pending', limit, offset });
      return { total: page.total, items: [...page.items] };
    },
    async find(consumers, id) {
      for (const consumer of consumers) {
        const letter = store.deadLetter(consumer, id);
        if (letter?.status === 'pending') return letter;
      }
      return undefined;
    },
    async discard(letter, by) {
      return store.resolve(letter.id, 'discarded', by);
    },
    replayArgs: [],
  };
}

/** A NATS log's bucket (the replicas of `run --log nats://` and `consumers run` keep them there). */
export function natsLetters(bucket: () => Promise<NatsLogBucket>, log: NatsLogRef): DeadLetterSource {
  const pendingOf = async (consumers: readonly string[]) => {
    const kv = (await bucket()).kv;
    const all = [];
    for (const consumer of consumers)
      all.push(...(await natsDeadLetters(kv, consumer, { status: 'pending' })));
    return all.sort((a, b) => b.letter.id - a.letter.id); // newest first, as the store
  };
  return {
    async pending(consumers, limit, offset) {
      const all = await pendingOf(consumers);
      return { total: all.length, items: all.slice(offset, offset + limit).map((d) => d.letter) };
    },
    async find(consumers, id) {
      return (await pendingOf(consumers)).find((d) => d.letter.id === id)?.letter;
    },
    async discard(letter, by) {
      const d = (await pendingOf([letter.consumer])).find((x) => x.letter.id === letter.id);
      return d ? resolveNatsDeadLetter((await bucket()).kv, d, 'discarded', by) : false;
    },
    replayArgs: ['--log', log.url],
    replayEnv: { TRIBUTARY_NATS_LOG_NAME: log.name },
  };
}

/**
 * The pending dead letters of the running consumers. A replay runs `tributary dlq replay` in a
 * child process, the consumer's own handler on the record (as the CLI does), so that user code
 * never runs in the capture's process; a handler that fails again keeps the letter pending with
 * the new error, and the API answers 409 with it.
 */
export function deadLetterControl(options: DeadLetterAdapterOptions): DeadLetterControl {
  const { letters } = options;
  const find = async (id: string): Promise<StoredDeadLetter | undefined> => {
    const n = Number(id);
    if (!Number.isInteger(n) || n < 1) return undefined;
    return letters.find(options.consumers(), n);
  };
  return {
    async list({ consumer, limit, offset }) {
      const names = consumer === undefined ? options.consumers() : [consumer];
      const page = await letters.pending(names, limit, offset);
      return { total: page.total, items: page.items.map(present) };
    },
    async get(id) {
      const letter = await find(id);
      return letter ? present(letter) : undefined;
    },
    async discard(id) {
      const letter = await find(id);
      return letter ? letters.discard(letter, options.by ?? 'api') : false;
    },
    async replay(id) {
      const letter = await find(id);
      if (!letter) return false;
      const args = [
        ...[CLI, 'dlq', 'replay', letter.consumer, '--id', String(letter.id)],
        ...letters.replayArgs,
        ...['--data-dir', resolve(options.dataDir), '--consumers', resolve(options.consumersDir)],
        ...['--by', options.by ?? 'api'],
      ];
      const outcome = await new Promise<{ code: number | null; stderr: string }>((done) => {
        execFile(
          process.execPath,
          args,
          {
            timeout: options.replayTimeoutMs ?? 120_000,
            maxBuffer: 1024 * 1024,
            ...(letters.replayEnv ? { env: { ...process.env, ...letters.replayEnv } } : {}),
          },
          (error, _stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
            done({ code, stderr });
          },
        );
      });
      if (outcome.code === 0) return true;
      const again = await letters.find([letter.consumer], letter.id);
      throw new ApiError(
        409,
        'REPLAY_FAILED',
        again !== undefined && again.attempts > letter.attempts
          ? `the handler of ${letter.consumer} failed again: ${again.error}`
          : `replaying dead letter ${id} failed: ${outcome.stderr.trim().split('\n').slice(-3).join(' ') || `exit ${outcome.code}`}`,
      );
    },
  };
}

function present(l: StoredDeadLetter): DeadLetter {
  return {
    id: String(l.id),
    consumer: l.consumer,
    topic: l.topic,
    partition: l.partition,
    offset: l.offset,
    key: l.key,
    value: l.value,
    error: { message: l.error, ...(l.stack ? { stack: l.stack } : {}) },
    attempts: l.attempts,
    failedAt: new Date(l.failedAt).toISOString(),
  };
}
