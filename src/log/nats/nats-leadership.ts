import type { JetStreamClient } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { nuid } from '@nats-io/nats-core';
import { LogError } from '../../core/errors.ts';
import { checkpointHeaders } from './nats-messages.ts';
import type { StreamStore } from './nats-store.ts';

/**
 * Leadership terms of the captures that write one source into a NATS log (docs/nats.md, "Capture
 * active/standby"). The replication slot decides which capture is active (PostgreSQL lets one
 * walsender stream a slot); the term decides which one may append, so that a former leader whose
 * connections have not noticed yet (a partition, a long pause) can never append after its
 * successor started:
 *
 * - The term lives in the KV bucket (`leader.<source>`, no expiry, unlike stream messages under a
 *   retention age), taken by compare-and-set on its revision, so each term number has one holder.
 *   It is read from the KV stream's leader, never from a replica that may lag.
 * - Then the new leader publishes a marker `trib.<name>.l.<source>` chained to the stream's last
 *   sequence (expected last sequence), like every append, and only then reads the position to
 *   resume from. Every later message of the former leader expects a sequence at or before the
 *   marker's, so it is refused, and the former leader is fenced.
 * - A writer that lost its place (after any failed append) finds the stream's end again, and then
 *   checks that the term in the KV is still its own: the end is read first, so a marker published
 *   after that read breaks the chain, and a term taken before it is seen.
 */
export interface LeaderTerm {
  /** 1 for the first leader of a source, then one more for each take-over. */
  readonly term: number;
  /** Who took it: host, pid and data directory of the capture (for status and errors). */
  readonly holder: string;
  /** ISO time the term was taken. */
  readonly since: string;
}

export function decodeTerm(data: Uint8Array): LeaderTerm | null {
  try {
    const value = JSON.parse(new TextDecoder().decode(data)) as LeaderTerm;
    return Number.isSafeInteger(value.term) ? value : null;
  } catch {
    return null;
  }
}

/** Where the terms of one source live: the KV key, and the KV stream read at its leader. */
export interface TermStore {
  readonly kv: KV;
  /** The bucket's stream (`KV_<bucket>`), for reads from its leader. */
  readonly kvStream: StreamStore;
  readonly key: string;
  /** The key's subject in the bucket's stream (`$KV.<bucket>.<key>`). */
  readonly kvSubject: string;
}

/** The current term as the KV stream's leader has it, with its revision; null before the first. */
export async function currentTerm(terms: TermStore): Promise<LeaderTerm | null> {
  return (await readTerm(terms)).term;
}

async function readTerm(terms: TermStore): Promise<{ term: LeaderTerm | null; revision: number }> {
  const last = await terms.kvStream.last(terms.kvSubject);
  if (last === null) return { term: null, revision: 0 };
  const operation = last.header?.get('KV-Operation') ?? '';
  return { term: operation === '' ? decodeTerm(last.data) : null, revision: last.seq };
}

type RetryOptions = { retryForMs: number; onRetry?: (error: unknown, attempt: number) => void };

/**
 * Takes the next term (KV compare-and-set), then publishes its marker chained to the stream's
 * end. Both retry when another writer got in between (a standby racing, the former leader's last
 * append) or the cluster does not answer, until `retryForMs`. Returns the term and the stream
 * sequence of its marker.
 */
export async function takeNextTerm(
  js: JetStreamClient,
  store: StreamStore,
  terms: TermStore,
  markerSubject: string,
  holder: string,
  options: RetryOptions,
): Promise<{ term: LeaderTerm; previous: LeaderTerm | null; seq: number }> {
  const started = Date.now();
  const { term, previous } = await retrying(started, options, async () => {
    const { term: previous, revision } = await readTerm(terms);
    const term: LeaderTerm = { term: (previous?.term ?? 0) + 1, holder, since: new Date().toISOString() };
    const json = JSON.stringify(term);
    if (revision === 0) await terms.kv.create(terms.key, json);
    else await terms.kv.update(terms.key, json, revision);
    return { term, previous };
  });
  const seq = await retrying(started, options, async () => {
    const bounds = await store.bounds();
    if (bounds === null) throw new LogError('LOG_FAILED', `Stream ${store.stream} disappeared`);
    const id = `term.${nuid.next()}`;
    const ack = await js.publish(markerSubject, new TextEncoder().encode(JSON.stringify(term)), {
      // An id of its own: the pipelined messages of a former leader expect their predecessor's id.
      msgID: id,
      // An append of one message, as readers see it: it may sit at the sequence an unfinished
      // append named as its last, which readers then know to be another append's.
      headers: checkpointHeaders({ append: id, commit: bounds.last + 1 }),
      expect: { lastSequence: bounds.last },
      timeout: 5_000,
      retries: 0,
    });
    return ack.seq;
  });
  return { term, previous, seq };
}

async function retrying<T>(started: number, options: RetryOptions, attempt: () => Promise<T>): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      // Another writer got in first (compare-and-set or expected sequence): read again at once.
      const moved = String((error as Error)?.message).includes('wrong last sequence');
      const retryable = moved || (error as { retryable?: boolean }).retryable === true || isTimeout(error);
      if (!retryable || Date.now() - started >= options.retryForMs) {
        throw error instanceof LogError
          ? error
          : new LogError(
              'LOG_UNAVAILABLE',
              `Cannot take the capture leadership in NATS: ${(error as Error)?.message}`,
              {
                cause: error,
                retryable: true,
                hint: 'Check that a majority of the NATS cluster is up (JetStream needs a quorum of the stream replicas).',
              },
            );
      }
      if (!moved) options.onRetry?.(error, n);
      await new Promise((r) => setTimeout(r, moved ? 20 : Math.min(2_000, 50 * 2 ** Math.min(n, 6))));
    }
  }
}

/** LOG_FENCED for a writer whose term was superseded. */
export function supersededError(stream: string, own: LeaderTerm, now: LeaderTerm | null): LogError {
  return new LogError(
    'LOG_FENCED',
    `Another capture took over the writing to stream ${stream}: this one held term ${own.term}, ` +
      (now ? `term ${now.term} is held by ${now.holder} since ${now.since}` : 'and its term is gone'),
    {
      hint: 'This capture stops appending: the one holding the replication slot now writes the log. Restart this one (with --standby) to make it the standby again.',
    },
  );
}

function isTimeout(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error).toLowerCase();
  return text.includes('timeout') || text.includes('no responders') || text.includes('unavailable');
}
