import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConsumerStore, DeadLetter as StoredDeadLetter } from '../consumers/consumer-store.ts';
import { ApiError } from './api-errors.ts';
import type { DeadLetter, DeadLetterControl } from './control-plane-deps.ts';

const CLI = fileURLToPath(new URL('../../bin/tributary.js', import.meta.url));

export interface DeadLetterAdapterOptions {
  readonly store: ConsumerStore;
  /** The consumers whose dead letters are shown (the supervisor's). */
  readonly consumers: () => readonly string[];
  readonly dataDir: string;
  readonly consumersDir: string;
  /** Who resolves, recorded with each discard. */
  readonly by?: string;
  readonly replayTimeoutMs?: number;
}

/**
 * The pending dead letters of the running consumers. A replay runs `tributary dlq replay` in a
 * child process, the consumer's own handler on the record (as the CLI does), so that user code
 * never runs in the capture's process; a handler that fails again keeps the letter pending with
 * the new error, and the API answers 409 with it.
 */
export function deadLetterControl(options: DeadLetterAdapterOptions): DeadLetterControl {
  const { store } = options;
  const find = (id: string): StoredDeadLetter | undefined => {
    const n = Number(id);
    if (!Number.isInteger(n) || n < 1) return undefined;
    for (const consumer of options.consumers()) {
      const letter = store.deadLetter(consumer, n);
      if (letter?.status === 'pending') return letter;
    }
    return undefined;
  };
  return {
    async list({ consumer, limit, offset }) {
      const names = consumer === undefined ? options.consumers() : [consumer];
      const all = names
        .flatMap((name) => store.deadLetters(name, { status: 'pending' }))
        .sort((a, b) => b.id - a.id);
      return { total: all.length, items: all.slice(offset, offset + limit).map(present) };
    },
    async get(id) {
      const letter = find(id);
      return letter ? present(letter) : undefined;
    },
    async discard(id) {
      const letter = find(id);
      return letter ? store.resolve(letter.id, 'discarded', options.by ?? 'api') : false;
    },
    async replay(id) {
      const letter = find(id);
      if (!letter) return false;
      const args = [
        CLI,
        'dlq',
        'replay',
        letter.consumer,
        '--id',
        String(letter.id),
        '--data-dir',
        resolve(options.dataDir),
        '--consumers',
        resolve(options.consumersDir),
        '--by',
        options.by ?? 'api',
      ];
      const outcome = await new Promise<{ code: number | null; stderr: string }>((done) => {
        execFile(
          process.execPath,
          args,
          { timeout: options.replayTimeoutMs ?? 120_000, maxBuffer: 1024 * 1024 },
          (error, _stdout, stderr) => {
            const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
            done({ code, stderr });
          },
        );
      });
      if (outcome.code === 0) return true;
      const again = store.deadLetter(letter.consumer, letter.id);
      throw new ApiError(
        409,
        'REPLAY_FAILED',
        again?.status === 'pending' && again.attempts > letter.attempts
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
