import {
  DiscardPolicy,
  type JetStreamManager,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { LogError } from '../../core/errors.ts';
import type { LogNames } from './nats-names.ts';

/** Stream settings of a NATS log (docs/nats.md, "Settings"). */
export interface NatsStreamSettings {
  /** Copies of every message (1, 3 or 5; 3 survives the loss of one node). Default 3. */
  readonly replicas: number;
  readonly storage: 'file' | 'memory';
  /** Messages older than this are removed (0 = keep forever). */
  readonly maxAgeMs: number;
  /** The oldest messages are removed beyond this size (0 = no limit). */
  readonly maxBytes: number;
}

/** How long dedupe by message id lasts; a retry later than this is matched by sequence instead. */
const DUPLICATE_WINDOW_NS = 2 * 60 * 1e9;

export async function connectNats(servers: readonly string[], timeoutMs: number): Promise<NatsConnection> {
  try {
    return await connect({
      servers: [...servers],
      name: 'tributary',
      timeout: timeoutMs,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5_000,
    });
  } catch (cause) {
    throw new LogError(
      'LOG_UNAVAILABLE',
      `Cannot reach the NATS log at ${servers.join(', ')}: ${(cause as Error).message}`,
      {
        cause,
        retryable: true,
        hint: 'Check that nats-server runs there with JetStream (`nats-server -js`) and that log.url names it.',
      },
    );
  }
}

export async function openManager(nc: NatsConnection, servers: readonly string[]): Promise<JetStreamManager> {
  try {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    await jsm.getAccountInfo();
    return jsm;
  } catch (cause) {
    const text = `${(cause as Error).name} ${(cause as Error).message}`.toLowerCase();
    const noJetStream =
      text.includes('jetstreamnotenabled') || text.includes('not enabled') || text.includes('no responders');
    throw new LogError(
      noJetStream ? 'LOG_NO_JETSTREAM' : 'LOG_UNAVAILABLE',
      noJetStream
        ? `The NATS server at ${servers.join(', ')} has no JetStream: the log needs it to store messages`
        : `JetStream at ${servers.join(', ')} does not answer: ${(cause as Error).message}`,
      {
        cause,
        retryable: !noJetStream,
        hint: noJetStream
          ? 'Start nats-server with JetStream (`-js`, or a `jetstream { store_dir: ... }` block in its config).'
          : 'Check that the cluster has a JetStream meta leader (a majority of its nodes up).',
      },
    );
  }
}

function wanted(names: LogNames, settings: NatsStreamSettings): Partial<StreamConfig> & { name: string } {
  return {
    name: names.stream,
    subjects: [names.subjects],
    num_replicas: settings.replicas,
    storage: settings.storage === 'memory' ? StorageType.Memory : StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    max_age: settings.maxAgeMs * 1e6,
    max_bytes: settings.maxBytes > 0 ? settings.maxBytes : -1,
    duplicate_window: DUPLICATE_WINDOW_NS,
    allow_direct: true,
  };
}

/**
 * Creates the stream with the settings, or checks an existing one against them: settings NATS
 * cannot change in place (storage, replicas, subjects, retention) must match, or the log refuses to
 * open (LOG_CONFIG_CONFLICT) naming both values; limits (age, size) are updated to the settings.
 */
export async function ensureStream(
  jsm: JetStreamManager,
  names: LogNames,
  settings: NatsStreamSettings,
): Promise<void> {
  const config = wanted(names, settings);
  const existing = await jsm.streams.info(names.stream).catch((error: unknown) => {
    if (isNotFound(error)) return undefined;
    throw unavailable(`read stream ${names.stream}`, error);
  });
  if (existing === undefined) {
    await jsm.streams.add(config).catch((error: unknown) => {
      throw new LogError(
        'LOG_CONFIG_CONFLICT',
        `Cannot create stream ${names.stream}: ${(error as Error).message}`,
        {
          cause: error,
          hint:
            settings.replicas > 1
              ? `log.nats.replicas=${settings.replicas} needs a cluster of at least ${settings.replicas} JetStream nodes (and their storage limits must allow the stream).`
              : 'Check the JetStream limits of the server (max_file_store / max_memory_store).',
        },
      );
    });
    return;
  }
  const have = existing.config;
  const conflicts: string[] = [];
  if (have.num_replicas !== config.num_replicas)
    conflicts.push(`replicas ${have.num_replicas} (configured ${config.num_replicas})`);
  if (have.storage !== config.storage)
    conflicts.push(`storage ${have.storage} (configured ${config.storage})`);
  if (have.retention !== RetentionPolicy.Limits) conflicts.push(`retention ${have.retention} (needs limits)`);
  if (have.discard !== DiscardPolicy.Old) conflicts.push(`discard ${have.discard} (needs old)`);
  if (JSON.stringify(have.subjects) !== JSON.stringify(config.subjects))
    conflicts.push(`subjects ${JSON.stringify(have.subjects)} (needs ${JSON.stringify(config.subjects)})`);
  if (have.max_msgs_per_subject > 0 || have.max_msgs > 0)
    conflicts.push('a message count limit (would drop records of a partition)');
  if (conflicts.length > 0) {
    throw new LogError(
      'LOG_CONFIG_CONFLICT',
      `Stream ${names.stream} exists with settings the log cannot use: ${conflicts.join('; ')}`,
      {
        hint: `Set log.nats.* to match the stream, change the stream with \`nats stream edit ${names.stream}\`, or use another log.nats.name.`,
      },
    );
  }
  if (have.max_age !== config.max_age || have.max_bytes !== config.max_bytes || !have.allow_direct) {
    await jsm.streams.update(names.stream, { ...have, ...config }).catch((error: unknown) => {
      throw unavailable(`update the limits of stream ${names.stream}`, error);
    });
  }
}

export async function openBucket(
  nc: NatsConnection,
  names: LogNames,
  settings: NatsStreamSettings,
  create: boolean,
): Promise<KV | undefined> {
  const kvm = new Kvm(nc);
  try {
    if (!create) {
      const exists = await kvm.open(names.bucket).then(
        async (kv) => ((await kv.status()) ? kv : undefined),
        () => undefined,
      );
      return exists;
    }
    return await kvm.create(names.bucket, {
      replicas: settings.replicas,
      storage: settings.storage === 'memory' ? StorageType.Memory : StorageType.File,
      history: 1,
    });
  } catch (error) {
    throw unavailable(`open KV bucket ${names.bucket}`, error);
  }
}

export function isNotFound(error: unknown): boolean {
  const text = String((error as Error)?.message ?? error).toLowerCase();
  return text.includes('not found');
}

export function unavailable(action: string, cause: unknown): LogError {
  return new LogError('LOG_UNAVAILABLE', `Cannot ${action} in NATS: ${(cause as Error)?.message ?? cause}`, {
    cause,
    retryable: true,
    hint: 'Check that a majority of the NATS cluster is up (JetStream needs a quorum of the stream replicas).',
  });
}
