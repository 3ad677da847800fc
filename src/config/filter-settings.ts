import { z } from 'zod';
import { nameList, operationList, type SettingSpec, tableList } from './setting-spec.ts';

/** Filters and masks of captured changes (Debezium's include/exclude lists and column masks). */
export const FILTER_SETTINGS: readonly SettingSpec[] = [
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
];
