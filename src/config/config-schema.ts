import { z } from 'zod';

/**
 * Every setting, declared once: its path in the config file, environment variable, flag,
 * type, default and description. The loader, the CLI help and docs/configuration.md are all
 * built from this table.
 */
export interface SettingSpec {
  /** Path in the config file, e.g. `source.slot`. */
  readonly path: string;
  readonly env?: string;
  /** The CLI flag (without value placeholder), e.g. `--slot`. */
  readonly flag?: string;
  readonly schema: z.ZodType;
  readonly default?: unknown;
  readonly description: string;
  readonly example?: string;
  /** Never shown in messages or logs (passwords, salts). */
  readonly secret?: boolean;
}

const identifier = z.string().min(1).max(63);
const tableList = z.union([z.array(z.string().min(1)), z.string()]).transform((v) =>
  typeof v === 'string'
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : v,
);
/** A list, or comma-separated text whose commas inside double quotes belong to a name. */
const nameList = z.union([z.array(z.string().min(1)), z.string()]).transform((v) => {
  if (typeof v !== 'string') return v;
  const items: string[] = [];
  let current = '';
  let quoted = false;
  for (const ch of v) {
    if (ch === '"') quoted = !quoted;
    if (ch === ',' && !quoted) {
      items.push(current.trim());
      current = '';
    } else current += ch;
  }
  items.push(current.trim());
  return items.filter(Boolean);
});
const operationList = tableList.pipe(z.array(z.enum(['c', 'u', 'd', 't'])));
const positiveInt = z.coerce.number().int().positive();
const bool = z
  .union([z.boolean(), z.enum(['true', 'false', '1', '0'])])
  .transform((v) => v === true || v === 'true' || v === '1');

export const SETTINGS: readonly SettingSpec[] = [
  {
    path: 'source.url',
    env: 'DATABASE_URL',
    flag: '--source',
    schema: z.string().min(1),
    description:
      'PostgreSQL connection URL of the database to capture. Without it, `tributary up` starts an embedded PostgreSQL.',
    example: 'postgres://user:secret@db:5432/shop',
  },
  {
    path: 'source.slot',
    env: 'TRIBUTARY_SLOT',
    flag: '--slot',
    schema: identifier.regex(/^[a-z0-9_]+$/, 'lower-case letters, digits and underscores only'),
    default: 'tributary',
    description: 'Logical replication slot; created if missing. One slot per capture.',
  },
  {
    path: 'source.publication',
    env: 'TRIBUTARY_PUBLICATION',
    flag: '--publication',
    schema: identifier,
    default: 'tributary',
    description:
      'Publication that selects the captured tables; created if missing (FOR ALL TABLES, or for `source.tables`).',
  },
  {
    path: 'source.tables',
    env: 'TRIBUTARY_TABLES',
    flag: '--tables',
    schema: tableList,
    default: [],
    description:
      'Tables to capture, as `schema.table` (quote mixed case: `"Shop"."Order"`). Empty = all tables.',
    example: 'public.orders,public.order_items',
  },
  {
    path: 'source.statusIntervalMs',
    env: 'TRIBUTARY_STATUS_INTERVAL_MS',
    schema: positiveInt,
    default: 1000,
    description: 'How often the confirmed position is reported to PostgreSQL (milliseconds).',
  },
  {
    path: 'source.heartbeatIntervalMs',
    env: 'TRIBUTARY_HEARTBEAT_INTERVAL_MS',
    schema: z.coerce.number().int().min(0),
    default: 10_000,
    description:
      "How often a heartbeat (`pg_logical_emit_message(true, 'tributary.heartbeat', <time>)`) is written into the captured database, in milliseconds, so that its slot keeps advancing while no captured table changes and other databases of the server fill the WAL. 0 disables heartbeats.",
  },
  {
    path: 'source.lagWarningBytes',
    env: 'TRIBUTARY_LAG_WARNING_BYTES',
    schema: z.coerce.number().int().min(0),
    default: 1024 ** 3,
    description:
      'Log a warning when the slot lags the server by more than this many bytes of WAL (and an info line when it is back under). 0 disables the warning.',
  },
  {
    path: 'source.onSlotLost',
    env: 'TRIBUTARY_ON_SLOT_LOST',
    schema: z.enum(['fail']),
    default: 'fail',
    description:
      'What to do when the replication slot disappears or is invalidated while a stored position exists (changes may have been lost): `fail` stops with SLOT_LOST and says how to recover. `resnapshot` (recreate the slot and reload the tables) comes with snapshots.',
  },
  {
    path: 'dataDir',
    env: 'TRIBUTARY_DATA_DIR',
    flag: '--data-dir',
    schema: z.string().min(1),
    default: '.tributary',
    description: 'Directory holding the event log, consumer offsets and state.',
  },
  {
    path: 'topicPrefix',
    env: 'TRIBUTARY_TOPIC_PREFIX',
    flag: '--topic-prefix',
    schema: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, dots, underscores and dashes only'),
    default: 'tributary',
    description: "Topic names are `<topicPrefix>.<schema>.<table>` (Debezium's `topic.prefix`).",
  },
  {
    path: 'format',
    env: 'TRIBUTARY_FORMAT',
    flag: '--format',
    schema: z.enum(['debezium', 'unwrap']),
    default: 'debezium',
    description:
      "Record value format: the Debezium envelope, or the flattened row (as Debezium's ExtractNewRecordState).",
  },
  {
    path: 'tombstones',
    env: 'TRIBUTARY_TOMBSTONES',
    schema: bool,
    default: true,
    description: 'Write a tombstone (null value) after each delete, for log compaction.',
  },
  {
    path: 'log.partitions',
    env: 'TRIBUTARY_PARTITIONS',
    flag: '--partitions',
    schema: positiveInt.max(1024),
    default: 1,
    description: 'Partitions of a new topic. Records of one key always go to the same partition.',
  },
  {
    path: 'log.durable',
    env: 'TRIBUTARY_DURABLE',
    schema: bool,
    default: true,
    description: 'fsync every append before acknowledging to PostgreSQL. Turn off only for throwaway data.',
  },
  {
    path: 'log.retention.maxAgeHours',
    env: 'TRIBUTARY_RETENTION_HOURS',
    schema: z.coerce.number().positive(),
    description: 'Delete records older than this many hours. Unset = keep forever.',
  },
  {
    path: 'log.retention.maxBytes',
    env: 'TRIBUTARY_RETENTION_BYTES',
    schema: positiveInt,
    description: 'Delete the oldest records of a topic beyond this size. Unset = no limit.',
  },
  {
    path: 'capture.maxBatchRecords',
    env: 'TRIBUTARY_MAX_BATCH_RECORDS',
    schema: positiveInt,
    default: 500,
    description: 'Records buffered before an append; bounds memory for transactions of any size.',
  },
  {
    path: 'filter.excludeTables',
    env: 'TRIBUTARY_EXCLUDE_TABLES',
    schema: nameList,
    default: [],
    description:
      'Tables whose changes are dropped before they reach the log, as `schema.table`. They stay in a FOR ALL TABLES publication (PostgreSQL still sends their changes to Tributary); to keep them out of the replication stream too, list the wanted tables in `source.tables` instead.',
    example: 'public.sessions,audit.events',
  },
  {
    path: 'filter.includeColumns',
    env: 'TRIBUTARY_INCLUDE_COLUMNS',
    schema: nameList,
    default: [],
    description:
      'Columns to keep, as `schema.table.column` (quote mixed case: `"Shop"."Order"."Total"`). A table named here keeps only its listed columns (the key columns must be listed); other tables keep all of theirs.',
    example: 'public.customers.id,public.customers.country',
  },
  {
    path: 'filter.excludeColumns',
    env: 'TRIBUTARY_EXCLUDE_COLUMNS',
    schema: nameList,
    default: [],
    description:
      'Columns left out of `before`, `after` and the unwrapped row, as `schema.table.column`. A key column cannot be excluded.',
    example: 'public.customers.password_hash',
  },
  {
    path: 'filter.skipOperations',
    env: 'TRIBUTARY_SKIP_OPERATIONS',
    schema: operationList,
    default: [],
    description:
      "Operations not written to the log (Debezium's `skipped.operations`): `c` insert, `u` update, `d` delete (and its tombstone), `t` truncate.",
    example: 'd,t',
  },
  {
    path: 'mask.columns',
    env: 'TRIBUTARY_MASK_COLUMNS',
    schema: nameList,
    default: [],
    description:
      'Columns whose non-null values are replaced by `mask.with`, as `schema.table.column`; the field becomes a JSON string. A key column cannot be masked this way (every key would be equal): hash it.',
    example: 'public.customers.phone',
  },
  {
    path: 'mask.with',
    env: 'TRIBUTARY_MASK_WITH',
    schema: z.string(),
    default: '****',
    description: 'The fixed string that replaces the values of `mask.columns`.',
  },
  {
    path: 'mask.hashColumns',
    env: 'TRIBUTARY_MASK_HASH_COLUMNS',
    schema: nameList,
    default: [],
    description:
      "Columns whose non-null values are replaced by the hex SHA-256 of `mask.hashSalt` followed by the value's PostgreSQL text form, as `schema.table.column`; equal values give equal hashes. Key columns may be hashed: the record key and partition then use the hash.",
    example: 'public.customers.email',
  },
  {
    path: 'mask.hashSalt',
    env: 'TRIBUTARY_MASK_SALT',
    schema: z.string().min(1),
    secret: true,
    description:
      'Salt of `mask.hashColumns`, required when they are set. Keep it secret (prefer the environment variable): anyone with it can test guesses against the hashes. Never logged.',
  },
  {
    path: 'logLevel',
    env: 'TRIBUTARY_LOG_LEVEL',
    flag: '--log-level',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']),
    default: 'info',
    description: 'Log level of the structured (JSON) log on stderr.',
  },
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
    onSlotLost: 'fail';
  };
  dataDir: string;
  topicPrefix: string;
  format: 'debezium' | 'unwrap';
  tombstones: boolean;
  log: { partitions: number; durable: boolean; retention: { maxAgeHours?: number; maxBytes?: number } };
  capture: { maxBatchRecords: number };
  filter: {
    excludeTables: string[];
    includeColumns: string[];
    excludeColumns: string[];
    skipOperations: ('c' | 'u' | 'd' | 't')[];
  };
  mask: { columns: string[]; with: string; hashColumns: string[]; hashSalt?: string };
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
}
