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
    flag: '--on-slot-lost',
    schema: z.enum(['fail', 'resnapshot']),
    default: 'fail',
    description:
      'What to do when the replication slot disappears or is invalidated while a stored position exists (changes may have been lost): `fail` stops with SLOT_LOST and says how to recover; `resnapshot` logs a warning, drops the stale position, recreates the slot and snapshots every captured table again (checked at start-up; when the slot is lost while streaming, `run` and `up` restart capture, which then does the same).',
  },
  {
    path: 'snapshot.mode',
    env: 'TRIBUTARY_SNAPSHOT_MODE',
    flag: '--snapshot-mode',
    schema: z.enum(['initial', 'never', 'always', 'initial_only']),
    default: 'initial',
    description:
      "When to snapshot the captured tables' existing rows (read events, `op: r`): `initial` when capture starts with no stored position (a new slot), `never`, `always` at every start, `initial_only` snapshot then stop. An unfinished snapshot always resumes from its last chunk.",
  },
  {
    path: 'snapshot.chunkRows',
    env: 'TRIBUTARY_SNAPSHOT_CHUNK_ROWS',
    schema: positiveInt,
    default: 20_000,
    description:
      "Rows per snapshot chunk (for a block range, estimated from the table's statistics): one `COPY (SELECT ...) TO STDOUT` between a low and a high watermark, stored as one row batch (the chunk's COPY text, rendered into records when read) in one append. Memory is bounded by chunkRows × 2 × maxParallelChunks rows of COPY text (a bounded chunk holds at most 4 × chunkRows when rows are inserted into its key range while it is read). In bench/snapshot.ts, 20,000 and 50,000 were fastest; 2,500 was half as fast.",
  },
  {
    path: 'snapshot.maxParallelChunks',
    env: 'TRIBUTARY_SNAPSHOT_MAX_PARALLEL_CHUNKS',
    schema: positiveInt.max(64),
    default: 2,
    description:
      "Snapshot readers (one connection and one thread each), shared by the tables being snapshotted; also the number of tables snapshotted at once. Up to twice as many chunks are held in memory: read, and waiting for their high watermark (written on one more connection, in chunk order) and the log. From 2 on, the chunks of one table are read in parallel: block ranges are known ahead; for keyset chunks, each chunk's last key is found first by an index scan, so the next chunk can start. Chunks still reach the log in order.",
  },
  {
    path: 'snapshot.initialChunks',
    env: 'TRIBUTARY_SNAPSHOT_INITIAL_CHUNKS',
    schema: z.enum(['blocks', 'key']),
    default: 'blocks',
    description:
      "How the initial snapshot (modes `initial`, `always`, `initial_only`, and the reload of `source.onSlotLost: resnapshot`) splits a table with a key into chunks: `blocks` reads ranges of heap blocks (CTID ranges, in the table's physical order, as PostgreSQL's own COPY and Debezium's initial snapshot read it): no index scan and no search for each chunk's end, about 1.4× faster in bench/snapshot.ts; `key` reads keyset chunks in key order. Both are read between watermarks and drop rows the stream changed meanwhile, and both resume from the last chunk in the log. Backfills (`tributary snapshot`, the signal table) always read keyset chunks; tables without a key always read block ranges.",
  },
  {
    path: 'snapshot.signalTable',
    env: 'TRIBUTARY_SIGNAL_TABLE',
    schema: z.string().min(1),
    default: 'public.tributary_signal',
    description:
      'Table whose inserts start backfills while streaming (the signal table of Debezium: `id text, type text, data jsonb`; type `execute-snapshot`, data `{"data-collections": ["public.orders"], "additional-condition": "..."}`). It must be in the publication: `tributary snapshot` creates it and adds it when missing, and with `source.tables` capture adds it to the list when it exists. Its changes are not written to the log.',
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
    path: 'log.walLimitMb',
    env: 'TRIBUTARY_WAL_LIMIT_MB',
    schema: z.coerce.number().int().min(0).max(1_048_576),
    default: 64,
    description:
      "Size the capture brings the log's write-ahead log (`log.sqlite-wal`) back to once it pauses (no append for 25 ms), waiting up to 50 ms for readers (consumer replicas) to finish the read they are in. During a burst the file may grow to 8 times this size; past that, the capture waits for the readers after its appends. Without it, replicas that read all the time keep SQLite's automatic checkpoints from ever resetting the file, which then grows by the whole of a burst (486-883 MB for a million changes read by five replicas). 0 leaves it to SQLite's automatic checkpoints.",
  },
  {
    path: 'log.retention.maxAgeHours',
    env: 'TRIBUTARY_RETENTION_HOURS',
    schema: z.coerce.number().positive(),
    description:
      "Delete records older than this many hours (the embedded log removes an append's records of a partition together, once the newest is that old). Unset = keep forever.",
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
    path: 'toast.fetch',
    env: 'TRIBUTARY_TOAST_FETCH',
    flag: '--toast-fetch',
    schema: bool,
    default: false,
    description:
      "When an update leaves a TOASTed column unchanged (and the table is not REPLICA IDENTITY FULL), PostgreSQL does not send its value: the record then shows Debezium's placeholder `__debezium_unavailable_value` and names the column in the header `tributary.unchanged_toast`. With `toast.fetch`, Tributary reads the row's current value by primary key instead (one query per table per batch) and names the column in `tributary.fetched_toast`: that value is the one at fetch time, possibly newer than the change. A row deleted since keeps the placeholder.",
  },
  {
    path: 'filter.excludeTables',
    env: 'TRIBUTARY_EXCLUDE_TABLES',
    flag: '--exclude-tables',
    schema: nameList,
    default: [],
    description:
      'Tables whose changes are dropped before they reach the log, as `schema.table`. They stay in a FOR ALL TABLES publication (PostgreSQL still sends their changes to Tributary); to keep them out of the replication stream too, list the wanted tables in `source.tables` instead.',
    example: 'public.sessions,audit.events',
  },
  {
    path: 'filter.includeColumns',
    env: 'TRIBUTARY_INCLUDE_COLUMNS',
    flag: '--include-columns',
    schema: nameList,
    default: [],
    description:
      'Columns to keep, as `schema.table.column` (quote mixed case: `"Shop"."Order"."Total"`). A table named here keeps only its listed columns (the key columns must be listed); other tables keep all of theirs.',
    example: 'public.customers.id,public.customers.country',
  },
  {
    path: 'filter.excludeColumns',
    env: 'TRIBUTARY_EXCLUDE_COLUMNS',
    flag: '--exclude-columns',
    schema: nameList,
    default: [],
    description:
      'Columns left out of `before`, `after` and the unwrapped row, as `schema.table.column`. A key column cannot be excluded.',
    example: 'public.customers.password_hash',
  },
  {
    path: 'filter.skipOperations',
    env: 'TRIBUTARY_SKIP_OPERATIONS',
    flag: '--skip-operations',
    schema: operationList,
    default: [],
    description:
      "Operations not written to the log (Debezium's `skipped.operations`): `c` insert, `u` update, `d` delete (and its tombstone), `t` truncate.",
    example: 'd,t',
  },
  {
    path: 'filter.excludeMessagePrefixes',
    env: 'TRIBUTARY_EXCLUDE_MESSAGE_PREFIXES',
    flag: '--exclude-message-prefixes',
    schema: tableList,
    default: [],
    description:
      'Logical messages (`pg_logical_emit_message`) not written to the log, by prefix: an entry matches that prefix exactly, or every prefix starting with it when it ends with `*`. Their position still advances.',
    example: 'debug,internal.*',
  },
  {
    path: 'mask.columns',
    env: 'TRIBUTARY_MASK_COLUMNS',
    flag: '--mask-columns',
    schema: nameList,
    default: [],
    description:
      'Columns whose non-null values are replaced by `mask.with`, as `schema.table.column`; the field becomes a JSON string. A key column cannot be masked this way (every key would be equal): hash it.',
    example: 'public.customers.phone',
  },
  {
    path: 'mask.with',
    env: 'TRIBUTARY_MASK_WITH',
    flag: '--mask-with',
    schema: z.string(),
    default: '****',
    description: 'The fixed string that replaces the values of `mask.columns`.',
  },
  {
    path: 'mask.hashColumns',
    env: 'TRIBUTARY_MASK_HASH_COLUMNS',
    flag: '--mask-hash-columns',
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
    path: 'server.port',
    env: 'TRIBUTARY_HTTP_PORT',
    flag: '--http-port',
    schema: z.coerce.number().int().min(0).max(65_535),
    default: 7070,
    description:
      'Port of the HTTP server (dashboard, REST API under /api, /metrics, /healthz, /readyz) started by `run` and `up`. 0 = no server. If the port is taken, capture runs without the server and says so.',
  },
  {
    path: 'server.host',
    env: 'TRIBUTARY_HTTP_HOST',
    flag: '--http-host',
    schema: z.string().min(1),
    default: '127.0.0.1',
    description:
      'Address the HTTP server binds to. Beyond loopback (e.g. `0.0.0.0`), `server.token` is required and every endpoint asks for it.',
  },
  {
    path: 'server.token',
    env: 'TRIBUTARY_TOKEN',
    flag: '--token',
    schema: z.string().min(16, 'at least 16 characters'),
    secret: true,
    description:
      'Bearer token of the HTTP server (`Authorization: Bearer <token>`): required for every mutating endpoint, and for all endpoints when the server is bound beyond loopback. Without it, mutating endpoints are refused.',
  },
  {
    path: 'alerts.webhookUrl',
    env: 'TRIBUTARY_ALERTS_WEBHOOK_URL',
    schema: z.url(),
    secret: true,
    description:
      'Webhook receiving alerts as Slack-compatible JSON (`{text, blocks}`): once when an alert fires, once when it resolves. Unset = alerts only on the dashboard and /api/alerts.',
    example: 'https://hooks.slack.com/services/T000/B000/XXXX',
  },
  {
    path: 'alerts.slotLagBytes',
    env: 'TRIBUTARY_ALERTS_SLOT_LAG_BYTES',
    schema: z.coerce.number().int().min(0),
    default: 1024 ** 3,
    description:
      'Alert when the replication slot lags the server by more than this many bytes of WAL. 0 = off.',
  },
  {
    path: 'alerts.consumerLagSeconds',
    env: 'TRIBUTARY_ALERTS_CONSUMER_LAG_SECONDS',
    schema: z.coerce.number().min(0),
    default: 300,
    description:
      'Alert when a consumer group is behind by more than this many seconds (age of its oldest unprocessed record). 0 = off.',
  },
  {
    path: 'alerts.crashLoop',
    env: 'TRIBUTARY_ALERTS_CRASH_LOOP',
    schema: bool,
    default: true,
    description: 'Alert while a consumer replica is crash-looping (restarted repeatedly by the supervisor).',
  },
  {
    path: 'alerts.disconnectedSeconds',
    env: 'TRIBUTARY_ALERTS_DISCONNECTED_SECONDS',
    schema: z.coerce.number().min(0),
    default: 60,
    description: 'Alert when capture has been disconnected from the source for this many seconds. 0 = off.',
  },
  {
    path: 'alerts.intervalMs',
    env: 'TRIBUTARY_ALERTS_INTERVAL_MS',
    schema: positiveInt,
    default: 10_000,
    description: 'How often the alert rules are evaluated (milliseconds).',
  },
  {
    path: 'consumers.dir',
    env: 'TRIBUTARY_CONSUMERS_DIR',
    flag: '--consumers',
    schema: z.string().min(1),
    default: './consumers',
    description:
      'Folder of consumers run by `run` and `up`: each `<dir>/<name>/index.ts` (or `index.js`) is one consumer, run in its own supervised processes. A missing folder = no consumers.',
  },
  {
    path: 'consumers.heartbeatMs',
    env: 'TRIBUTARY_CONSUMERS_HEARTBEAT_MS',
    schema: positiveInt,
    default: 1000,
    description: 'How often each consumer replica reports to the supervisor (milliseconds).',
  },
  {
    path: 'consumers.niceness',
    env: 'TRIBUTARY_CONSUMERS_NICENESS',
    schema: z.coerce.number().int().min(0).max(19),
    default: 10,
    description:
      "OS scheduling niceness added to consumer replica processes (0-19; 0 = same priority as the capture). Above 0, on Linux, replicas also run in the SCHED_IDLE class (through `chrt`) and lower their session's autogroup: they only get the CPU time the capture leaves, so consumers are best effort, falling behind during bursts and catching up after, while the capture keeps its pace. A replica starved of CPU (waiting in the run queue) is not taken for hung. 0 turns all of this off.",
  },
  {
    path: 'consumers.yieldToCapture',
    env: 'TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE',
    schema: z.enum(['auto', 'always', 'never']),
    default: 'auto',
    description:
      "Whether consumer replicas stop reading while the capture catches up with its source (the server's WAL at least 1 MiB ahead of the stream, e.g. after downtime or a bulk load), and read again once it has: `auto` = only on a machine without a spare core (Linux: less than one core idle or running niced tasks over the last 0.5 s), `always`, or `never`. On two cores, five consumers reading during a catch-up cost it 9-25 % of its pace even at the lowest CPU priority (about a fifth in the median run), a few percent when held; they would fall behind anyway, catch up about as soon, and the capture frees the source's WAL sooner. A capture that starts behind holds them before its first append. Lag-based autoscaling waits meanwhile. Only for consumers sharing the capture's data directory.",
  },
  {
    path: 'consumers.heartbeatTimeoutMs',
    env: 'TRIBUTARY_CONSUMERS_HEARTBEAT_TIMEOUT_MS',
    schema: positiveInt,
    default: 15_000,
    description: 'A replica silent for this long (milliseconds) is killed and restarted.',
  },
  {
    path: 'consumers.hangTimeoutMs',
    env: 'TRIBUTARY_CONSUMERS_HANG_TIMEOUT_MS',
    schema: positiveInt,
    default: 60_000,
    description:
      'A replica with records in flight and no finished batch for this long (milliseconds), or that does not answer a revoke within it, is hung: killed and restarted.',
  },
  {
    path: 'consumers.crashLoopRestarts',
    env: 'TRIBUTARY_CONSUMERS_CRASH_LOOP_RESTARTS',
    schema: positiveInt,
    default: 5,
    description:
      'Restarts within `consumers.crashLoopWindowMs` after which a consumer is marked `failed` (and an alert raised) instead of restarted again.',
  },
  {
    path: 'consumers.crashLoopWindowMs',
    env: 'TRIBUTARY_CONSUMERS_CRASH_LOOP_WINDOW_MS',
    schema: positiveInt,
    default: 60_000,
    description: 'Window of `consumers.crashLoopRestarts` (milliseconds).',
  },
  {
    path: 'consumers.backoffMaxMs',
    env: 'TRIBUTARY_CONSUMERS_BACKOFF_MAX_MS',
    schema: positiveInt,
    default: 30_000,
    description: 'Longest delay before restarting a crashed replica; the delay starts at 200 ms and doubles.',
  },
  {
    path: 'consumers.scaleUpLagSeconds',
    env: 'TRIBUTARY_CONSUMERS_SCALE_UP_LAG_SECONDS',
    schema: z.coerce.number().positive(),
    default: 10,
    description:
      'A consumer with `replicas: {min, max}` gets one more replica when its time lag stays above this many seconds for `consumers.scaleCooldownMs`.',
  },
  {
    path: 'consumers.scaleDownLagSeconds',
    env: 'TRIBUTARY_CONSUMERS_SCALE_DOWN_LAG_SECONDS',
    schema: z.coerce.number().min(0),
    default: 1,
    description:
      'One replica less when the time lag stays below this many seconds for `consumers.scaleCooldownMs`.',
  },
  {
    path: 'consumers.scaleCooldownMs',
    env: 'TRIBUTARY_CONSUMERS_SCALE_COOLDOWN_MS',
    schema: positiveInt,
    default: 30_000,
    description:
      'How long the lag must stay beyond a threshold, and the least time between two autoscaling steps (milliseconds).',
  },
  {
    path: 'consumers.logMaxBytes',
    env: 'TRIBUTARY_CONSUMERS_LOG_MAX_BYTES',
    schema: positiveInt,
    default: 10 * 1024 * 1024,
    description: 'Size at which a consumer log (`<dataDir>/logs/<name>.log`) is rotated.',
  },
  {
    path: 'consumers.logFiles',
    env: 'TRIBUTARY_CONSUMERS_LOG_FILES',
    schema: z.coerce.number().int().min(0).max(100),
    default: 5,
    description: 'Rotated consumer log files kept (`<name>.log.1` ... `<name>.log.<n>`).',
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
    durable: boolean;
    walLimitMb: number;
    retention: { maxAgeHours?: number; maxBytes?: number };
  };
  capture: { maxBatchRecords: number };
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
  server: { port: number; host: string; token?: string };
  consumers: {
    dir: string;
    heartbeatMs: number;
    niceness: number;
    yieldToCapture: 'auto' | 'always' | 'never';
    heartbeatTimeoutMs: number;
    hangTimeoutMs: number;
    crashLoopRestarts: number;
    crashLoopWindowMs: number;
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
    intervalMs: number;
  };
}
