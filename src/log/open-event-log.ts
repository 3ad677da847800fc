import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConfigError } from '../core/errors.ts';
import type { EventLog } from '../core/event-log.ts';
import { EmbeddedEventLog, type TopicStats } from './embedded/sqlite-event-log.ts';
import { NatsEventLog } from './nats/nats-event-log.ts';
import type { LeaderTerm } from './nats/nats-leadership.ts';
import { parseNatsUrl } from './nats/nats-names.ts';

/**
 * The one place that knows which engine holds the log: everything above `log/` opens it here, from
 * the configuration (`log.url` unset = the embedded log in the data directory; `nats://...` = a NATS
 * JetStream stream, docs/nats.md), and sees an `EventLog` plus the optional capabilities below.
 */
export interface OpenedEventLog extends EventLog {
  /** Where the log is: a file of the embedded log, or the NATS URL. */
  readonly location?: string;
  /** Records and bytes per topic, where the engine knows them without a scan (embedded only). */
  topicStats?(): readonly TopicStats[];
  /** Applies the retention settings now (embedded; NATS applies them itself, server-side). */
  enforceRetention?(now: number): Promise<unknown>;
  /**
   * NATS: takes the next leadership term for a source, fencing every earlier writer of it
   * (nats-leadership.ts). The embedded log has one writer by construction (the data-dir lock).
   */
  takeLeadership?(source: string, holder: string): Promise<{ term: LeaderTerm; previous: LeaderTerm | null }>;
  /** NATS: the current leadership term of a source. */
  leadership?(source: string): Promise<LeaderTerm | null>;
}

export type LogConfig = Pick<TributaryConfig, 'dataDir' | 'log'>;

export interface OpenEventLogOptions {
  /** For processes that only read (consumers, the API, the CLI). */
  readonly readonly?: boolean;
  /** NATS: told of each append retried while the cluster cannot store (the capture logs it). */
  readonly onRetry?: (error: unknown, attempt: number) => void;
}

export function isNatsLog(config: LogConfig): boolean {
  return config.log.url !== undefined && config.log.url !== '';
}

/** Whether a log exists to read: the embedded log's file, or (NATS) always, since it is remote. */
export function logExists(config: LogConfig): boolean {
  return isNatsLog(config) || existsSync(join(config.dataDir, 'log.sqlite'));
}

/** A short description for messages: the log file or the NATS URL and stream. */
export function describeLog(config: LogConfig): string {
  return isNatsLog(config)
    ? `${config.log.url} (stream of log ${config.log.nats.name})`
    : join(config.dataDir, 'log.sqlite');
}

export async function openEventLog(
  config: LogConfig,
  options: OpenEventLogOptions = {},
): Promise<OpenedEventLog> {
  const retention = config.log.retention;
  if (isNatsLog(config)) {
    const log = await NatsEventLog.open({
      servers: parseNatsUrl(config.log.url!),
      name: config.log.nats.name,
      defaultPartitions: config.log.partitions,
      stream: {
        replicas: config.log.nats.replicas,
        storage: config.log.nats.storage,
        maxAgeMs: retention.maxAgeHours ? Math.round(retention.maxAgeHours * 3_600_000) : 0,
        maxBytes: retention.maxBytes ?? 0,
      },
      ...(options.readonly ? { readonly: true } : {}),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    });
    return Object.assign(log, { location: log.url });
  }
  if (options.readonly && !existsSync(join(config.dataDir, 'log.sqlite'))) {
    throw new ConfigError(`no event log in ${config.dataDir}`, {
      hint: 'pass the --data-dir that `tributary run` or `tributary up` wrote to, or --log nats://... for a NATS log',
    });
  }
  if (!options.readonly) mkdirSync(config.dataDir, { recursive: true });
  const log = EmbeddedEventLog.open({
    dataDir: config.dataDir,
    defaultPartitions: config.log.partitions,
    durable: config.log.durable,
    walLimitBytes: config.log.walLimitMb * 1024 * 1024,
    ...(options.readonly ? { readonly: true } : {}),
    retention: {
      ...(retention.maxAgeHours ? { maxAgeMs: retention.maxAgeHours * 3_600_000 } : {}),
      ...(retention.maxBytes ? { maxBytes: retention.maxBytes } : {}),
    },
  });
  return Object.assign(log, { location: log.file });
}

/** What a reading process needs to find a NATS log (passed to consumer replicas). */
export interface NatsLogRef {
  readonly url: string;
  readonly name: string;
}

export function natsLogRef(config: LogConfig): NatsLogRef | undefined {
  return isNatsLog(config) ? { url: config.log.url!, name: config.log.nats.name } : undefined;
}

/**
 * Opens a log for reading from where it is: the NATS log named by `nats`, else the embedded log of
 * `dataDir` (undefined while its file does not exist yet, i.e. before the capture's first append).
 */
export async function openLogReader(
  dataDir: string,
  nats: NatsLogRef | undefined,
): Promise<OpenedEventLog | undefined> {
  if (nats !== undefined) {
    const log = await NatsEventLog.open({ servers: parseNatsUrl(nats.url), name: nats.name, readonly: true });
    if (!log.exists) {
      await log.close();
      return undefined;
    }
    return Object.assign(log, { location: log.url });
  }
  if (!existsSync(join(dataDir, 'log.sqlite'))) return undefined;
  const log = EmbeddedEventLog.open({ dataDir, readonly: true });
  return Object.assign(log, { location: log.file });
}
