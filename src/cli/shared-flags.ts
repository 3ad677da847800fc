import type { Command } from 'commander';
import { SETTINGS } from '../config/config-schema.ts';

export interface CaptureFlagValues {
  source?: string;
  dataDir?: string;
  slot?: string;
  publication?: string;
  tables?: string;
  topicPrefix?: string;
  format?: string;
  partitions?: string;
  logLevel?: string;
  config?: string;
  snapshotMode?: string;
  onSlotLost?: string;
  httpPort?: string;
  httpHost?: string;
  token?: string;
  sourceFile?: string;
  tokenFile?: string;
  excludeTables?: string;
  includeColumns?: string;
  excludeColumns?: string;
  skipOperations?: string;
  excludeMessagePrefixes?: string;
  maskColumns?: string;
  maskWith?: string;
  maskHashColumns?: string;
  toastFetch?: boolean;
  consumers?: string;
}

/**
 * Filter, mask and TOAST settings that also take a flag (declared in SETTINGS), with their help.
 * The salt of `--mask-hash-columns` has no flag (it would show in the process list): use the
 * environment variable TRIBUTARY_MASK_SALT.
 */
const MORE_FLAGS: { readonly [path: string]: string } = {
  'filter.excludeTables': 'tables whose changes are dropped, e.g. public.sessions',
  'filter.includeColumns': 'columns kept of the tables named, as schema.table.column',
  'filter.excludeColumns': 'columns left out, as schema.table.column',
  'filter.skipOperations': 'operations not written: c, u, d, t (e.g. d,t)',
  'filter.excludeMessagePrefixes': 'logical message prefixes not written (prefix* = all starting with it)',
  'mask.columns': 'columns whose values are replaced by --mask-with',
  'mask.with': 'the fixed string of --mask-columns (default ****)',
  'mask.hashColumns': 'columns replaced by a salted SHA-256 (salt: env TRIBUTARY_MASK_SALT)',
  'toast.fetch': 'read unchanged TOASTed values of updates from the table (value at fetch time)',
  'consumers.dir': 'folder of consumer folders to run (default ./consumers)',
  'log.url': 'the event log: nats://host:port,... for NATS JetStream (default: embedded in --data-dir)',
};

/** Each of MORE_FLAGS as [commander option, its key in the parsed flags, setting path, help]. */
function moreFlags(): [string, string, string, string][] {
  return Object.entries(MORE_FLAGS).map(([path, help]) => {
    const spec = SETTINGS.find((s) => s.path === path);
    if (!spec?.flag) throw new Error(`setting ${path} has no flag in SETTINGS`);
    const key = spec.flag.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const value = spec.default === false ? '' : path === 'mask.with' ? ' <text>' : ' <list>';
    return [`${spec.flag}${value}`, key, path, help];
  });
}

/** The flags of every command that captures (`run`, `up`); each maps to a setting path. */
export function captureFlags(command: Command): Command {
  for (const [option, , , help] of moreFlags()) command.option(option, help);
  return command
    .option(
      '--source-file <file>',
      'file holding the PostgreSQL URL (env TRIBUTARY_SOURCE_FILE; keeps the password out of ps)',
    )
    .option(
      '--source <url>',
      'PostgreSQL URL to capture (env DATABASE_URL; a password here shows in ps: prefer --source-file)',
    )
    .option('--data-dir <dir>', 'directory of the event log (default .tributary)')
    .option('--slot <name>', 'replication slot (default tributary)')
    .option('--publication <name>', 'publication (default tributary)')
    .option('--tables <list>', 'tables to capture, e.g. public.orders,public.order_items (default all)')
    .option('--topic-prefix <prefix>', 'topic prefix (default tributary)')
    .option('--format <format>', 'record format: debezium or unwrap (default debezium)')
    .option('--partitions <n>', 'partitions of new topics (default 1)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (default info)')
    .option('--config <file>', 'config file (default ./tributary.config.json if present)')
    .option('--snapshot-mode <mode>', 'initial, never, always or initial_only (default initial)')
    .option('--on-slot-lost <policy>', 'fail or resnapshot (default fail)')
    .option('--http-port <port>', 'port of the dashboard, API and /metrics (default 7070, 0 = off)')
    .option('--http-host <host>', 'address the HTTP server binds to (default 127.0.0.1)')
    .option('--token-file <file>', 'file holding the bearer token of the HTTP API (env TRIBUTARY_TOKEN_FILE)')
    .option(
      '--token <token>',
      'bearer token of the HTTP API (env TRIBUTARY_TOKEN; shows in ps: prefer --token-file)',
    );
}

export function flagsToSettings(flags: CaptureFlagValues): Record<string, unknown> {
  return {
    ...Object.fromEntries(moreFlags().map(([, key, path]) => [path, flags[key as keyof CaptureFlagValues]])),
    'source.url': flags.source,
    dataDir: flags.dataDir,
    'source.slot': flags.slot,
    'source.publication': flags.publication,
    'source.tables': flags.tables,
    topicPrefix: flags.topicPrefix,
    format: flags.format,
    'log.partitions': flags.partitions,
    logLevel: flags.logLevel,
    'snapshot.mode': flags.snapshotMode,
    'source.onSlotLost': flags.onSlotLost,
    'server.port': flags.httpPort,
    'server.host': flags.httpHost,
    'server.token': flags.token,
    'source.urlFile': flags.sourceFile,
    'server.tokenFile': flags.tokenFile,
  };
}
