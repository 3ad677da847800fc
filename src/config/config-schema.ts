/**
 * Every setting, declared once: the tables in `capture-settings.ts`, `filter-settings.ts` and
 * `runtime-settings.ts` (each entry: its path in the config file, environment variable, flag, type,
 * default and description). The loader, the CLI help and docs/configuration.md are all built from
 * `SETTINGS`, in this order.
 */
import { CAPTURE_SETTINGS } from './capture-settings.ts';
import { FILTER_SETTINGS } from './filter-settings.ts';
import { RUNTIME_SETTINGS } from './runtime-settings.ts';
import type { SettingSpec } from './setting-spec.ts';

export type { SettingSpec } from './setting-spec.ts';

export const SETTINGS: readonly SettingSpec[] = [
  ...CAPTURE_SETTINGS,
  ...FILTER_SETTINGS,
  ...RUNTIME_SETTINGS,
];

export interface TributaryConfig {
  source: {
    url?: string;
    slot: string;
    publication: string;
    tables: string[];
    statusIntervalMs: number;
    heartbeatIntervalMs: number;
    lagWarningBytes: number;
    onSlotLost: 'fail' | 'resnapshot';
  };
  snapshot: {
    mode: 'initial' | 'never' | 'always' | 'initial_only';
    chunkRows: number;
    maxParallelChunks: number;
    initialChunks: 'blocks' | 'key';
    signalTable: string;
  };
  dataDir: string;
  topicPrefix: string;
  format: 'debezium' | 'unwrap';
  tombstones: boolean;
  log: {
    partitions: number;
    url?: string;
    nats: { name: string; replicas: number; storage: 'file' | 'memory' };
    durable: boolean;
    walLimitMb: number;
    retention: { maxAgeHours?: number; maxBytes?: number };
  };
  capture: { maxBatchRecords: number; standby: boolean };
  toast: { fetch: boolean };
  filter: {
    excludeTables: string[];
    includeColumns: string[];
    excludeColumns: string[];
    skipOperations: ('c' | 'u' | 'd' | 't')[];
    excludeMessagePrefixes: string[];
  };
  mask: { columns: string[]; with: string; hashColumns: string[]; hashSalt?: string };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
  /** Raw per-sink settings; validated by `sinks/sink-setup.ts` against each kind's schema. */
  sinks: Record<string, unknown>;
  server: { port: number; host: string; token?: string; allowedHosts: string[] };
  consumers: {
    dir: string;
    heartbeatMs: number;
    niceness: number;
    yieldToCapture: 'auto' | 'always' | 'never';
    heartbeatTimeoutMs: number;
    hangTimeoutMs: number;
    startTimeoutMs: number;
    crashLoopRestarts: number;
    crashLoopWindowMs: number;
    failureThreshold: number;
    failureAction: 'pause' | 'continue';
    offsetReset: 'fail' | 'earliest' | 'latest';
    backoffMaxMs: number;
    scaleUpLagSeconds: number;
    scaleDownLagSeconds: number;
    scaleCooldownMs: number;
    logMaxBytes: number;
    logFiles: number;
  };
  alerts: {
    webhookUrl?: string;
    slotLagBytes: number;
    consumerLagSeconds: number;
    crashLoop: boolean;
    disconnectedSeconds: number;
    eventLoopStallMs: number;
    intervalMs: number;
  };
}
