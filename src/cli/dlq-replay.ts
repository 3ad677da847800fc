/**
 * `tributary dlq replay`: runs the consumer's own handler on each dead letter in this process (the
 * module is imported as the worker does), one record per call, in id order. Where the dead letters
 * live (the SQLite store, the NATS bucket) is the caller's: `replayed` is called only once the
 * handler succeeded, `failed` with the new error otherwise. A transactional consumer's handler runs
 * in a transaction of its target (no offset is written: the record's offset was passed when it was
 * dead-lettered).
 */
import { resolve } from 'node:path';
import { tsImport } from 'tsx/esm/api';
import type { TributaryConfig } from '../config/config-schema.ts';
import { type DeadLetter, deadLetterRecord } from '../consumers/consumer-store.ts';
import type { ConsumerContext, ConsumerRecord } from '../consumers/define-consumer.ts';
import { consumerModulePath, loadConsumer } from '../consumers/worker/load-consumer.ts';
import { ConfigError } from '../core/errors.ts';
import { sinksDir } from '../sinks/sink-setup.ts';
import { createLogger, untilSignal } from './cli-output.ts';

export interface ReplayOutcome<L> {
  /** Before the handler: the letter to replay (claimed), or why this replay leaves it. */
  claim?(letter: L): Promise<L | string>;
  replayed(letter: L): Promise<void> | void;
  failed(letter: L, error: Error): Promise<void> | void;
}

/** The module of a consumer (its folder) or of a sink (generated under the data directory). */
export function replayModule(config: Pick<TributaryConfig, 'consumers' | 'dataDir'>, name: string): string {
  const dir = resolve(config.consumers.dir);
  const module = consumerModulePath(dir, name) ?? consumerModulePath(sinksDir(config.dataDir), name);
  if (!module)
    throw new ConfigError(`no consumer or sink ${JSON.stringify(name)} in ${dir}`, {
      hint: 'pass --consumers <dir> holding <name>/index.ts, or the --data-dir of the sink (run `tributary run` once to write it)',
    });
  return module;
}

export function parseRate(text: string | undefined): number | undefined {
  const rate = text === undefined ? undefined : Number(text);
  if (rate !== undefined && !(rate > 0)) throw new ConfigError(`--rate must be a number > 0, not ${text}`);
  return rate;
}

export async function replay<L>(
  name: string,
  module: string,
  letters: readonly L[],
  deadLetter: (l: L) => DeadLetter,
  rate: number | undefined,
  outcome: ReplayOutcome<L>,
): Promise<{ ok: number; failed: number; skipped: number }> {
  const consumer = await loadConsumer(name, module, (url) => tsImport(url, import.meta.url));
  const logger = createLogger(process.env.TRIBUTARY_LOG_LEVEL ?? 'warn').child({
    consumer: name,
    replay: true,
  });
  const abort = new AbortController();
  void untilSignal().then(() => abort.abort());
  const target = await consumer.transactional?.open({ connections: 1 });
  const result = { ok: 0, failed: 0, skipped: 0 };
  const started = Date.now();
  try {
    for (const [i, listed] of letters.entries()) {
      if (abort.signal.aborted) break;
      if (rate !== undefined) {
        const due = started + (i * 1000) / rate;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
      const claimed = outcome.claim ? await outcome.claim(listed) : listed;
      if (typeof claimed === 'string') {
        process.stderr.write(`dead letter ${deadLetter(listed).id} skipped: ${claimed}\n`);
        result.skipped++;
        continue;
      }
      const l = claimed;
      const letter = deadLetter(l);
      const stored = deadLetterRecord(letter);
      try {
        const record: ConsumerRecord<unknown> = {
          ...stored,
          value: stored.value === null ? null : (JSON.parse(stored.value) as unknown),
        };
        const ctx = (tx: unknown): ConsumerContext<unknown> => ({
          logger,
          metrics: { increment: () => {} },
          signal: abort.signal,
          attempt: letter.attempts + 1,
          tx,
          consumer: name,
          replica: -1,
        });
        if (target)
          await target.transaction(consumer.group, [], async (tx) => consumer.handle([record], ctx(tx)));
        else await consumer.handle([record], ctx(undefined));
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        await outcome.failed(l, err);
        process.stderr.write(`dead letter ${letter.id} failed again: ${err.message}\n`);
        result.failed++;
        continue;
      }
      await outcome.replayed(l);
      result.ok++;
    }
  } finally {
    await target?.close();
  }
  return result;
}
