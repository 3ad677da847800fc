import type { Command } from 'commander';

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
}

/** The flags of every command that captures (`run`, `up`); each maps to a setting path. */
export function captureFlags(command: Command): Command {
  return command
    .option('--source <url>', 'PostgreSQL URL to capture (env DATABASE_URL)')
    .option('--data-dir <dir>', 'directory of the event log (default .tributary)')
    .option('--slot <name>', 'replication slot (default tributary)')
    .option('--publication <name>', 'publication (default tributary)')
    .option('--tables <list>', 'tables to capture, e.g. public.orders,public.order_items (default all)')
    .option('--topic-prefix <prefix>', 'topic prefix (default tributary)')
    .option('--format <format>', 'record format: debezium or unwrap (default debezium)')
    .option('--partitions <n>', 'partitions of new topics (default 1)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (default info)')
    .option('--config <file>', 'config file (default ./tributary.config.json if present)');
}

export function flagsToSettings(flags: CaptureFlagValues): Record<string, unknown> {
  return {
    'source.url': flags.source,
    dataDir: flags.dataDir,
    'source.slot': flags.slot,
    'source.publication': flags.publication,
    'source.tables': flags.tables,
    topicPrefix: flags.topicPrefix,
    format: flags.format,
    'log.partitions': flags.partitions,
    logLevel: flags.logLevel,
  };
}
