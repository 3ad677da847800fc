import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { readYieldLease } from '../consumers/capture-yield.ts';
import { type ConsumerStatus, ControlStore } from '../consumers/control-store.ts';
import { scanConsumers, skippedLine, validateConsumerName } from '../consumers/discovery.ts';
import { formatNatsStatuses, natsConsumerStatuses } from '../consumers/nats/nats-consumer-status.ts';
import { idleReplicasNote } from '../consumers/partition-assignment.ts';
import { ConsumerNotFoundError, validateReplicas } from '../consumers/supervisor.ts';
import { ConfigError } from '../core/errors.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import { natsLogRef, openEventLog } from '../log/open-event-log.ts';
import { controlOnNats } from './consumers-nats-control.ts';
import { LOG_FLAG } from './log-commands.ts';
import { output } from './stdout-writer.ts';

interface StoreFlags {
  dataDir?: string;
  config?: string;
}

/** A status older than this means no supervisor is writing it (it writes every reconcile). */
const STALE_MS = 5_000;

function configOf(flags: StoreFlags) {
  return loadConfig({ flags: { dataDir: flags.dataDir }, ...(flags.config ? { file: flags.config } : {}) });
}

/** `consumers --log nats://...`: the groups of `consumers run` processes, as NATS knows them. */
async function listFromNats(flags: StoreFlags & { json?: boolean; log?: string }): Promise<void> {
  const config = loadConfig({
    flags: { dataDir: flags.dataDir, 'log.url': flags.log },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const [bucket, log] = await Promise.all([
    NatsLogBucket.open(natsLogRef(config)!),
    openEventLog(config, { readonly: true }),
  ]);
  try {
    const rows = await natsConsumerStatuses(bucket.kv, log);
    void output.write(flags.json ? `${JSON.stringify(rows, null, 2)}\n` : formatNatsStatuses(rows));
  } finally {
    await Promise.all([bucket.close(), log.close()]);
  }
}

function dataDirOf(flags: StoreFlags): string {
  return configOf(flags).dataDir;
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
    .option(...LOG_FLAG)
    .action(async (flags: StoreFlags & { json?: boolean; log?: string }) => {
      if (flags.log ?? configOf(flags).log.url) return listFromNats(flags);
      const statuses = withStore(flags, true, (store) => store.statuses());
      // Folders of the consumers directory that are not run, and why (JSON keeps stdout an array).
      const skipped = scanConsumers(configOf(flags).consumers.dir).skipped.map(skippedLine);
      for (const line of flags.json ? skipped : []) process.stderr.write(`${line}\n`);
      const now = Date.now();
      const rows = statuses.map((s) => ({
        ...s,
        running: s.state !== 'stopped' && now - s.updatedAt < STALE_MS,
      }));
      if (flags.json) {
        void output.write(`${JSON.stringify(rows, null, 2)}\n`);
        return;
      }
      if (rows.length === 0) void output.write('no consumers\n');
      else void output.write(formatTable(rows));
      for (const s of rows) for (const w of s.warnings ?? []) void output.line(`warning: ${s.name}: ${w}`);
      for (const line of skipped) void output.line(line);
      if (readYieldLease(dataDirOf(flags)) > now) {
        void output.write(
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
        'Run this many replicas (0-64), or `auto` to return to the consumer’s own `replicas` setting. With --log: this many in each `consumers run` process.',
      ),
  )
    .option(...LOG_FLAG)
    .option('--wait-ms <ms>', 'with --log: wait this long for every process to acknowledge', '30000')
    .action(async (name: string, replicas: string, _flags: StoreFlags, command: Command) => {
      const count = replicas === 'auto' ? null : Number(replicas);
      if (count !== null && !Number.isInteger(count)) {
        throw new ConfigError(`replicas must be a whole number or auto, not ${JSON.stringify(replicas)}`);
      }
      validateReplicas(count);
      const flags = command.optsWithGlobals();
      if (flags.log ?? configOf(flags).log.url)
        return controlOnNats(name, { verb: 'scale', replicas: count }, flags);
      change(
        flags,
        name,
        (store) => store.setReplicas(name, count),
        count === null ? 'auto' : `${count} replicas`,
      );
      const status = withStore(flags, false, (store) => store.statuses().find((s) => s.name === name));
      const idle = idleReplicasNote(name, count, status?.partitions ?? 0);
      if (idle) void output.write(`note: ${idle}\n`);
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
    const sub = dataDirOptions(consumers.command(`${verb} <name>`).description(description)).option(
      ...LOG_FLAG,
    );
    sub.option('--wait-ms <ms>', 'with --log: wait this long for every process to acknowledge', '30000');
    sub.action(async (name: string, _flags: StoreFlags, command: Command) => {
      const flags = command.optsWithGlobals();
      if (flags.log ?? configOf(flags).log.url) {
        return controlOnNats(name, { verb: verb as 'pause' | 'resume' | 'restart' }, flags);
      }
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
    });
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
    void output.write(
      `${name}: ${what}${running ? '' : ' (no running supervisor seen: applied when `tributary run`/`up` starts)'}\n`,
    );
  });
}

function stateText(s: ConsumerStatus & { running: boolean }): string {
  // Statuses written before `failure` existed lack it.
  const state = s.failure?.paused && s.state === 'failing' ? 'failing (paused)' : s.state;
  return s.running ? state : `${state} (not running)`;
}

function formatTable(rows: readonly (ConsumerStatus & { running: boolean })[]): string {
  const header = ['NAME', 'STATE', 'REPLICAS', 'RESTARTS', 'LAG', 'LAG_S', 'PROCESSED', 'LAST ERROR'];
  const lines = rows.map((s) => [
    s.name,
    stateText(s),
    `${s.replicas.ready}/${s.replicas.desired}${s.autoscale ? ` (${s.autoscale.min}-${s.autoscale.max})` : ''}`,
    String(s.restarts),
    String(s.lag.records),
    s.lag.seconds.toFixed(1),
    String(s.processed),
    (s.failure?.message ?? s.lastError?.message ?? '-').split('\n')[0]!.slice(0, 160),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  return [header, ...lines]
    .map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n')
    .concat('\n');
}
