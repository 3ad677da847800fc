import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { readYieldLease } from '../consumers/capture-yield.ts';
import { type ConsumerStatus, ControlStore } from '../consumers/control-store.ts';
import { validateConsumerName } from '../consumers/discovery.ts';
import { ConsumerNotFoundError, validateReplicas } from '../consumers/supervisor.ts';
import { ConfigError } from '../core/errors.ts';

interface StoreFlags {
  dataDir?: string;
  config?: string;
}

/** A status older than this means no supervisor is writing it (it writes every reconcile). */
const STALE_MS = 5_000;

function dataDirOf(flags: StoreFlags): string {
  return loadConfig({ flags: { dataDir: flags.dataDir }, ...(flags.config ? { file: flags.config } : {}) })
    .dataDir;
}

function withStore<T>(flags: StoreFlags, mustExist: boolean, fn: (store: ControlStore) => T): T {
  const store = ControlStore.open(dataDirOf(flags), { mustExist });
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

function dataDirOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory of the running `tributary run`/`up` (default .tributary)')
    .option('--config <file>', 'config file');
}

/**
 * `tributary consumers` (list) and its subcommands `scale|pause|resume|restart <name>`. They
 * write desired state into `<dataDir>/consumers.db`; the running supervisor applies it within
 * its reconcile interval. Returns the `consumers` command so that other subcommands (`new`) can
 * be added to it.
 */
export function registerConsumers(program: Command): Command {
  const consumers = dataDirOptions(
    program
      .command('consumers')
      .description(
        'List the consumers of a running `tributary run`/`up`: state, replicas, restarts, lag, last error. Subcommands change them at runtime.',
      ),
  )
    .option('--json', 'print JSON')
    .action((flags: StoreFlags & { json?: boolean }) => {
      const statuses = withStore(flags, true, (store) => store.statuses());
      const now = Date.now();
      const rows = statuses.map((s) => ({
        ...s,
        running: s.state !== 'stopped' && now - s.updatedAt < STALE_MS,
      }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) {
        process.stdout.write('no consumers\n');
        return;
      }
      process.stdout.write(formatTable(rows));
      if (readYieldLease(dataDirOf(flags)) > now) {
        process.stdout.write(
          'held back: the capture is catching up with its source; consumers read again once it has (consumers.yieldToCapture)\n',
        );
      }
    });

  // `--data-dir` is an option of `consumers` too, which takes it wherever it is written: read the
  // merged options.
  dataDirOptions(
    consumers
      .command('scale <name> <replicas>')
      .description(
        'Run this many replicas (0-64), or `auto` to return to the consumer’s own `replicas` setting.',
      ),
  ).action((name: string, replicas: string, _flags: StoreFlags, command: Command) => {
    const count = replicas === 'auto' ? null : Number(replicas);
    if (count !== null && !Number.isInteger(count)) {
      throw new ConfigError(`replicas must be a whole number or auto, not ${JSON.stringify(replicas)}`);
    }
    validateReplicas(count);
    change(
      command.optsWithGlobals(),
      name,
      (store) => store.setReplicas(name, count),
      count === null ? 'auto' : `${count} replicas`,
    );
  });
  const verbs = {
    pause: ['Drain and stop every replica of the consumer (its offsets stay; capture continues).', 'paused'],
    resume: ['Start a paused consumer again; it continues from its committed offsets.', 'resumed'],
    restart: [
      'Replace the replicas one by one (drained first, nothing lost); also retries a failed consumer.',
      'restarting',
    ],
  } as const;
  for (const [verb, [description, done]] of Object.entries(verbs)) {
    dataDirOptions(consumers.command(`${verb} <name>`).description(description)).action(
      (name: string, _flags: StoreFlags, command: Command) => {
        change(
          command.optsWithGlobals(),
          name,
          (store) => {
            if (verb === 'pause') store.setPaused(name, true);
            else if (verb === 'resume') store.setPaused(name, false);
            else store.requestRestart(name);
          },
          done,
        );
      },
    );
  }
  return consumers;
}

function change(flags: StoreFlags, name: string, apply: (store: ControlStore) => void, what: string): void {
  validateConsumerName(name);
  withStore(flags, false, (store) => {
    const statuses = store.statuses();
    if (statuses.length > 0 && !statuses.some((s) => s.name === name)) {
      throw new ConsumerNotFoundError(
        name,
        statuses.map((s) => s.name),
      );
    }
    apply(store);
    const running = statuses.some(
      (s) => s.name === name && s.state !== 'stopped' && Date.now() - s.updatedAt < STALE_MS,
    );
    process.stdout.write(
      `${name}: ${what}${running ? '' : ' (no running supervisor seen: applied when `tributary run`/`up` starts)'}\n`,
    );
  });
}

function formatTable(rows: readonly (ConsumerStatus & { running: boolean })[]): string {
  const header = ['NAME', 'STATE', 'REPLICAS', 'RESTARTS', 'LAG', 'LAG_S', 'PROCESSED', 'LAST ERROR'];
  const lines = rows.map((s) => [
    s.name,
    s.running ? s.state : `${s.state} (not running)`,
    `${s.replicas.ready}/${s.replicas.desired}${s.autoscale ? ` (${s.autoscale.min}-${s.autoscale.max})` : ''}`,
    String(s.restarts),
    String(s.lag.records),
    s.lag.seconds.toFixed(1),
    String(s.processed),
    s.lastError ? s.lastError.message.split('\n')[0]!.slice(0, 80) : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines]
    .map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n')
    .concat('\n');
}
