/**
 * `tributary dlq list|show|replay|discard <consumer>`: the dead letters of a consumer, kept in
 * `<data-dir>/consumers.db`, or with `--log nats://...` in the NATS log's bucket (those of
 * `consumers run` processes, dlq-nats.ts). `replay` runs the consumer's own handler on each dead
 * letter in this process (dlq-replay.ts); a dead letter becomes `replayed` only once the handler
 * succeeded, otherwise it stays pending with the new error.
 */
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConsumerStore, type DeadLetterStatus } from '../consumers/consumer-store.ts';
import { ControlStore } from '../consumers/control-store.ts';
import { scanConsumers } from '../consumers/discovery.ts';
import { listNatsDeadLetters } from '../consumers/nats/nats-consumer-state.ts';
import { ConsumerNotFoundError } from '../consumers/supervisor.ts';
import { ConfigError } from '../core/errors.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import { discardFromNats, replayFromNats, showFromNats } from './dlq-nats.ts';
import { parseRate, replay, replayModule } from './dlq-replay.ts';
import { printLetter } from './dlq-show.ts';
import { wholeNumber } from './flag-numbers.ts';
import { LOG_FLAG } from './log-commands.ts';
import { output } from './stdout-writer.ts';

interface StoreFlags {
  dataDir?: string;
  config?: string;
}

type ListFlags = StoreFlags & { status: string; json?: boolean; limit: string; offset: string; log?: string };

type DeadLetterPages = Pick<ConsumerStore, 'countDeadLetters' | 'deadLetters'>;

/** `dlq list --log nats://...`: the dead letters kept in the NATS log's bucket (`consumers run`). */
async function listFromNats(consumer: string, flags: ListFlags): Promise<void> {
  const config = loadConfig({
    flags: { dataDir: flags.dataDir, 'log.url': flags.log },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const bucket = await NatsLogBucket.open(natsLogRef(config)!);
  try {
    const all = (await listNatsDeadLetters(bucket.kv)).filter((l) => l.consumer === consumer);
    const pick = (o: { status?: DeadLetterStatus }) => all.filter((l) => !o.status || l.status === o.status);
    printList(
      {
        countDeadLetters: (_c, o = {}) => pick(o).length,
        deadLetters: (_c, o = {}) => pick(o).slice(o.offset ?? 0, (o.offset ?? 0) + (o.limit ?? all.length)),
      },
      consumer,
      flags,
    );
  } finally {
    await bucket.close();
  }
}

function configOf(flags: StoreFlags & { consumers?: string; log?: string }) {
  return loadConfig({
    flags: { dataDir: flags.dataDir, 'consumers.dir': flags.consumers, 'log.url': flags.log },
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

/**
 * The action of a `dlq` subcommand on the SQLite store of `--data-dir`, or, with `--log nats://...`
 * (or the setting log.url), `nats`: the dead letters of `consumers run` processes (dlq-nats.ts).
 */
function withStore<T extends StoreFlags & { log?: string }>(
  fn: (store: ConsumerStore, consumer: string, flags: T, extra: string | undefined) => Promise<void> | void,
  nats?: (consumer: string, flags: T, extra: string | undefined) => Promise<void>,
) {
  return async (consumer: string, ...rest: unknown[]) => {
    const extra = typeof rest[0] === 'string' ? rest[0] : undefined;
    const flags = (typeof rest[0] === 'string' ? rest[1] : rest[0]) as T;
    if (nats && (flags.log ?? configOf(flags).log.url)) return nats(consumer, flags, extra);
    const store = openStore(flags);
    try {
      checkConsumer(store, consumer, flags);
      await fn(store, consumer, flags, extra);
    } finally {
      store.close();
    }
  };
}

/**
 * A name no supervisor reported, with no consumer folder and no dead letters, is a typo: fail as
 * `consumers scale|pause...` do, naming the consumers that exist (not "no dead letters").
 */
function checkConsumer(store: ConsumerStore, name: string, flags: StoreFlags): void {
  if (store.hasDeadLetters(name)) return;
  const config = configOf(flags);
  const control = ControlStore.open(config.dataDir);
  const known = new Set<string>();
  try {
    for (const s of control.statuses()) known.add(s.name);
  } finally {
    control.close();
  }
  for (const c of scanConsumers(config.consumers.dir).found) known.add(c.name);
  if (!known.has(name)) throw new ConsumerNotFoundError(name, [...known].sort());
}

function age(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
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
    .option('--limit <n>', 'at most n dead letters (a page)', '50')
    .option('--offset <n>', 'skip the first n (the next page: --offset 50)', '0')
    .option('--json', 'print JSON (the page)')
    .option(...LOG_FLAG)
    .action(async (consumer: string, flags: ListFlags) => {
      if (flags.log ?? configOf(flags).log.url) return listFromNats(consumer, flags);
      await withStore<ListFlags>(printList)(consumer, flags);
    });

  common(
    dlq.command('show <consumer> <id>').description('Print one dead letter: record, error, stack, origin.'),
  )
    .option('--json', 'print JSON')
    .option(...LOG_FLAG)
    .action(
      withStore<StoreFlags & { json?: boolean; log?: string }>(
        (store, consumer, flags, id) => {
          const letter = store.deadLetter(consumer, parseIds(id)![0]!);
          printLetter(consumer, id, letter, flags.json === true);
        },
        (consumer, flags, id) => showFromNats(configOf(flags), consumer, parseIds(id)![0]!, flags),
      ),
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
    .option(...LOG_FLAG)
    .action(
      withStore<StoreFlags & { id?: string; rate?: string; consumers?: string; by?: string; log?: string }>(
        async (store, name, flags) => {
          const rate = parseRate(flags.rate);
          const module = replayModule(configOf(flags), name);
          const ids = parseIds(flags.id);
          const letters = store.deadLetters(name, { status: 'pending', ...(ids ? { ids } : {}) });
          const by = flags.by ?? userInfo().username;
          const replayed = await replay(name, module, letters, (l) => l, rate, {
            replayed: (l) => {
              store.resolve(l.id, 'replayed', by);
            },
            failed: (l, err) => store.recordFailure(l.id, err.message, err.stack),
          });
          void output.write(
            `replayed ${replayed.ok} of ${letters.length}; ${replayed.failed} still failing\n`,
          );
          if (replayed.failed > 0) process.exitCode = 1;
        },
        (name, flags) =>
          replayFromNats(configOf(flags), name, {
            ids: parseIds(flags.id),
            rate: parseRate(flags.rate),
            by: flags.by ?? userInfo().username,
          }),
      ),
    );

  common(
    dlq.command('discard <consumer>').description('Mark dead letters discarded, recording who and when.'),
  )
    .option('--id <ids>', 'only these ids (comma-separated)')
    .option('--all', 'every pending dead letter')
    .option('--by <name>', 'who discards (default the OS user)')
    .option('--note <text>', 'why')
    .option(...LOG_FLAG)
    .action(
      withStore<StoreFlags & { id?: string; all?: boolean; by?: string; note?: string; log?: string }>(
        (store, name, flags) => {
          const ids = parseIds(flags.id);
          if (!ids && !flags.all) throw new ConfigError('discard needs --id <ids> or --all');
          const letters = store.deadLetters(name, { status: 'pending', ...(ids ? { ids } : {}) });
          const by = flags.by ?? userInfo().username;
          let n = 0;
          for (const l of letters) if (store.resolve(l.id, 'discarded', by, flags.note)) n++;
          void output.write(`discarded ${n} dead letter${n === 1 ? '' : 's'} of ${name} (by ${by})\n`);
        },
        async (name, flags) => {
          const ids = parseIds(flags.id);
          if (!ids && !flags.all) throw new ConfigError('discard needs --id <ids> or --all');
          await discardFromNats(configOf(flags), name, {
            ids,
            by: flags.by ?? userInfo().username,
            note: flags.note,
          });
        },
      ),
    );
}

/** Prints a page of dead letters (the SQLite store, or those read from a NATS log). */
function printList(store: DeadLetterPages, consumer: string, flags: ListFlags): void {
  const status = flags.status === 'all' ? undefined : (flags.status as DeadLetterStatus);
  if (status && !['pending', 'replayed', 'discarded'].includes(status))
    throw new ConfigError(`--status must be pending, replayed, discarded or all, not ${flags.status}`);
  const limit = wholeNumber('--limit', flags.limit, 1);
  const offset = wholeNumber('--offset', flags.offset, 0);
  const filter = status ? { status } : {};
  const total = store.countDeadLetters(consumer, filter);
  const letters = store.deadLetters(consumer, { ...filter, limit, offset });
  if (flags.json) {
    void output.write(`${JSON.stringify(letters, null, 2)}\n`);
    return;
  }
  if (letters.length === 0) {
    void output.write(`no ${status ?? ''} dead letters for ${consumer}\n`.replace('  ', ' '));
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
    void output.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
  }
  const more = offset + letters.length < total;
  void output.write(
    `${offset + 1}-${offset + letters.length} of ${total}${more ? `; next page: --offset ${offset + letters.length}` : ''}\n`,
  );
}
