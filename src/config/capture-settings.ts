import { z } from 'zod';
import { bool, identifier, positiveInt, type SettingSpec, tableList } from './setting-spec.ts';

/** The source, snapshot, record format and log settings. */
export const CAPTURE_SETTINGS: readonly SettingSpec[] = [
  {
    path: 'source.url',
    env: 'DATABASE_URL',
    flag: '--source',
    fromFile: { flag: '--source-file', env: 'TRIBUTARY_SOURCE_FILE' },
    schema: z.string().min(1),
    description:
      "PostgreSQL connection URL of the database to capture. Without it, `tributary up` starts an embedded PostgreSQL. Keep the password out of the command line (where every local user sees it): set `DATABASE_URL`, put the URL in a file named by `--source-file` / `TRIBUTARY_SOURCE_FILE`, or leave the password out of the URL and let libpq's `PGPASSWORD` or `~/.pgpass` give it.",
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
    path: 'log.url',
    env: 'TRIBUTARY_LOG_URL',
    flag: '--log',
    schema: z.string().regex(/^nats:\/\/\S+$/, 'a NATS URL: nats://host:port[,host:port...]'),
    description:
      'Where the event log lives: unset = the embedded log in the data directory; `nats://host:port,host:port,...` = a NATS JetStream stream on those servers (docs/nats.md). Every process of one pipeline (capture, consumers, API, CLI) must name the same log.',
    example: 'nats://10.0.0.1:4222,10.0.0.2:4222,10.0.0.3:4222',
  },
  {
    path: 'log.nats.name',
    env: 'TRIBUTARY_NATS_LOG_NAME',
    schema: z.string().regex(/^[a-z0-9_-]{1,32}$/, '1 to 32 lowercase letters, digits, _ or -'),
    default: 'tributary',
    description:
      'With a NATS log: names its stream (`TRIBUTARY_<NAME>`) and KV bucket (`tributary_<name>`); one capture per name.',
  },
  {
    path: 'log.nats.replicas',
    env: 'TRIBUTARY_NATS_REPLICAS',
    schema: z.coerce
      .number()
      .int()
      .refine((n) => n === 1 || n === 3 || n === 5, 'replicas must be 1, 3 or 5'),
    default: 3,
    description:
      'With a NATS log: copies of every message, set when the stream is created (3 survives the loss of one node; 1 needs only one server and survives none).',
  },
  {
    path: 'log.nats.storage',
    env: 'TRIBUTARY_NATS_STORAGE',
    schema: z.enum(['file', 'memory']),
    default: 'file',
    description:
      'With a NATS log: `file` (on disk) or `memory` (lost when every replica restarts), set when the stream is created.',
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
    path: 'capture.standby',
    env: 'TRIBUTARY_STANDBY',
    flag: '--standby',
    schema: bool,
    default: false,
    description:
      '`run` waits as a standby while another `run` captures the same slot into the same NATS log, and takes over when the slot is released (docs/nats.md, "Capture active/standby"). Needs `source.url` and `log.url` (nats://...): the embedded log has one owner. Sets `wal_sender_timeout` to 10 s on the replication connection, so that a cut-off or frozen leader loses the slot. `up` ignores it. `true`/`false` (or `1`/`0`).',
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
];
