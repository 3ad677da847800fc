/**
 * `tributary dlq list|show|replay|discard <consumer>`: the dead letters of a consumer, kept in
 * `<data-dir>/consumers.db`. `replay` runs the consumer's own handler on each dead letter in this
 * process (the module is imported as the worker does), one record per call, in id order; a dead
 * letter becomes `replayed` only once the handler succeeded, otherwise it stays pending with the
 * new error. A transactional consumer's handler runs in a transaction of its target (no offset
 * is written: the record's offset was passed when it was dead-lettered).
 */
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { tsImport } from 'tsx/esm/api';
import { loadConfig } from '../config/config-loader.ts';
import {
  ConsumerStore,
  type DeadLetter,
  type DeadLetterStatus,
  deadLetterRecord,
} from '../consumers/consumer-store.ts';
import type { ConsumerContext, ConsumerRecord } from '../consumers/define-consumer.ts';
import { consumerModulePath, loadConsumer } from '../consumers/worker/load-consumer.ts';
import { ConfigError } from '../core/errors.ts';
import { createLogger, untilSignal } from './cli-output.ts';

interface StoreFlags {
  dataDir?: string;
  config?: string;
}

function configOf(flags: StoreFlags & { consumers?: string }) {
  return loadConfig({
    flags: { dataDir: flags.dataDir, 'consumers.dir': flags.consumers },
    ...(flags.config ? { file: flags.config } : {}),
  });
}

function openStore(flags: StoreFlags): ConsumerStore {
  return ConsumerStore.open({ dataDir: configOf(flags).dataDir });
}

function parseIds(text: string | undefined): number[] | undefined {
  if (text === undefined) return undefined;
  const ids = text.split(',').map((t) => Number(t.trim()));
  if (ids.some((n) => !Number.isInteger(n) || n < 1))
    throw new ConfigError(`--id must be dead-letter ids separated by commas, not ${JSON.stringify(text)}`);
  return ids;
}

function withStore<T extends StoreFlags>(
  fn: (store: ConsumerStore, consumer: string, flags: T, extra: string | undefined) => Promise<void> | void,
) {
  return async (consumer: string, ...rest: unknown[]) => {
    const extra = typeof rest[0] === 'string' ? rest[0] : undefined;
    const flags = (typeof rest[0] === 'string' ? rest[1] : rest[0]) as T;
    const store = openStore(flags);
    try {
      await fn(store, consumer, flags, extra);
    } finally {
      store.close();
    }
  };
}

function age(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}

function prettyJson(text: string | null): string {
  if (text === null) return 'null';
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

export function registerDlq(program: Command): void {
  const dlq = program
    .command('dlq')
    .description('Inspect, replay or discard the dead letters of a consumer.');
  const common = (c: Command) =>
    c
      .option('--data-dir <dir>', 'data directory (default .tributary)')
      .option('--config <file>', 'config file');

  common(dlq.command('list <consumer>').description('List dead letters (default: the pending ones).'))
    .option('--status <status>', 'pending, replayed, discarded or all', 'pending')
    .option('--json', 'print JSON')
    .action(
      withStore<StoreFlags & { status: string; json?: boolean }>((store, consumer, flags) => {
        const status = flags.status === 'all' ? undefined : (flags.status as DeadLetterStatus);
        if (status && !['pending', 'replayed', 'discarded'].includes(status))
          throw new ConfigError(`--status must be pending, replayed, discarded or all, not ${flags.status}`);
        const letters = store.deadLetters(consumer, status ? { status } : {});
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`);
          return;
        }
        if (letters.length === 0) {
          process.stdout.write(`no ${status ?? ''} dead letters for ${consumer}\n`.replace('  ', ' '));
          return;
        }
        const rows = letters.map((l) => [
          String(l.id),
          l.status,
          `${l.topic}/${l.partition}@${l.offset}`,
          String(l.attempts),
          age(l.failedAt),
          l.error.split('\n')[0]!.slice(0, 80),
        ]);
        const head = ['ID', 'STATUS', 'ORIGIN', 'ATTEMPTS', 'FAILED', 'ERROR'];
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
        for (const r of [head, ...rows]) {
          process.stdout.write(
            `${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`,
          );
        }
      }),
    );

  common(
    dlq.command('show <consumer> <id>').description('Print one dead letter: record, error, stack, origin.'),
  )
    .option('--json', 'print JSON')
    .action(
      withStore<StoreFlags & { json?: boolean }>((store, consumer, flags, id) => {
        const letter = store.deadLetter(consumer, parseIds(id)![0]!);
        if (!letter)
          throw new ConfigError(`${consumer} has no dead letter ${id}`, {
            hint: `tributary dlq list ${consumer}`,
          });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(letter, null, 2)}\n`);
          return;
        }
        const lines = [
          `id:        ${letter.id} (${letter.status}${letter.resolvedBy ? ` by ${letter.resolvedBy} ${new Date(letter.resolvedAt ?? 0).toISOString()}` : ''})`,
          `origin:    topic ${letter.topic}, partition ${letter.partition}, offset ${letter.offset} (group ${letter.group})`,
          `timestamp: ${new Date(letter.timestamp).toISOString()}`,
          `attempts:  ${letter.attempts}, first failed ${new Date(letter.firstFailedAt).toISOString()}, last ${new Date(letter.failedAt).toISOString()}`,
          ...(letter.note ? [`note:      ${letter.note}`] : []),
          `error:     ${letter.error}`,
          `key:       ${letter.key ?? 'null'}`,
          `headers:   ${JSON.stringify(letter.headers)}`,
          `value:\n${prettyJson(letter.value)}`,
          `stack:\n${letter.stack ?? '(none)'}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
      }),
    );

  common(
    dlq
      .command('replay <consumer>')
      .description("Run the consumer's handler again on its pending dead letters."),
  )
    .option('--id <ids>', 'only these ids (comma-separated)')
    .option('--rate <n>', 'at most n records per second')
    .option('--consumers <dir>', 'folder of consumer folders (setting consumers.dir, default ./consumers)')
    .option('--by <name>', 'who replays (default the OS user)')
    .action(
      withStore<StoreFlags & { id?: string; rate?: string; consumers?: string; by?: string }>(
        async (store, name, flags) => {
          const rate = flags.rate === undefined ? undefined : Number(flags.rate);
          if (rate !== undefined && !(rate > 0))
            throw new ConfigError(`--rate must be a number > 0, not ${flags.rate}`);
          const dir = resolve(configOf(flags).consumers.dir);
          const module = consumerModulePath(dir, name);
          if (!module)
            throw new ConfigError(`no consumer ${JSON.stringify(name)} in ${dir}`, {
              hint: 'pass --consumers <dir> holding <name>/index.ts',
            });
          const ids = parseIds(flags.id);
          const letters = store.deadLetters(name, { status: 'pending', ...(ids ? { ids } : {}) });
          const replayed = await replay(store, name, module, letters, rate, flags.by ?? userInfo().username);
          process.stdout.write(
            `replayed ${replayed.ok} of ${letters.length}; ${replayed.failed} still failing\n`,
          );
          if (replayed.failed > 0) process.exitCode = 1;
        },
      ),
    );

  common(
    dlq.command('discard <consumer>').description('Mark dead letters discarded, recording who and when.'),
  )
    .option('--id <ids>', 'only these ids (comma-separated)')
    .option('--all', 'every pending dead letter')
    .option('--by <name>', 'who discards (default the OS user)')
    .option('--note <text>', 'why')
    .action(
      withStore<StoreFlags & { id?: string; all?: boolean; by?: string; note?: string }>(
        (store, name, flags) => {
          const ids = parseIds(flags.id);
          if (!ids && !flags.all) throw new ConfigError('discard needs --id <ids> or --all');
          const letters = store.deadLetters(name, { status: 'pending', ...(ids ? { ids } : {}) });
          const by = flags.by ?? userInfo().username;
          let n = 0;
          for (const l of letters) if (store.resolve(l.id, 'discarded', by, flags.note)) n++;
          process.stdout.write(`discarded ${n} dead letter${n === 1 ? '' : 's'} of ${name} (by ${by})\n`);
        },
      ),
    );
}

async function replay(
  store: ConsumerStore,
  name: string,
  module: string,
  letters: readonly DeadLetter[],
  rate: number | undefined,
  by: string,
): Promise<{ ok: number; failed: number }> {
  const consumer = await loadConsumer(name, module, (url) => tsImport(url, import.meta.url));
  const logger = createLogger(process.env.TRIBUTARY_LOG_LEVEL ?? 'warn').child({
    consumer: name,
    replay: true,
  });
  const abort = new AbortController();
  void untilSignal().then(() => abort.abort());
  const target = await consumer.transactional?.open({ connections: 1 });
  const result = { ok: 0, failed: 0 };
  const started = Date.now();
  try {
    for (const [i, letter] of letters.entries()) {
      if (abort.signal.aborted) break;
      if (rate !== undefined) {
        const due = started + (i * 1000) / rate;
        if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
      }
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
        store.resolve(letter.id, 'replayed', by);
        result.ok++;
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        store.recordFailure(letter.id, err.message, err.stack);
        process.stderr.write(`dead letter ${letter.id} failed again: ${err.message}\n`);
        result.failed++;
      }
    }
  } finally {
    await target?.close();
  }
  return result;
}
