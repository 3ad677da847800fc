import type pg from 'pg';
import { quoteIdent } from './replication-protocol.ts';
import { formatTableName, type TableName } from './table-name.ts';

/**
 * Checks of a source database, each returning a result instead of throwing, so that `preflight`
 * (stop at the first failure) and `tributary doctor` (report everything) share one definition.
 * Every query runs on a normal (non-replication) connection and changes nothing.
 */

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface CheckResult {
  /** Short stable name, e.g. `wal_level`. */
  readonly check: string;
  readonly status: CheckStatus;
  /** For a failure: the code of the `SourceSetupError` that capture would stop with. */
  readonly code?: string;
  readonly message: string;
  /** What to do about it (for `warn` and `fail`). */
  readonly fix?: string;
}

export interface ServerFacts {
  readonly wal_level: string;
  readonly max_slots: number;
  readonly used_slots: number;
  readonly max_wal_senders: number;
  /** In MB; -1 = unbounded. */
  readonly max_slot_wal_keep_mb: number;
  readonly rolreplication: boolean;
  readonly rolsuper: boolean;
  readonly version: number;
  readonly version_text: string;
  readonly role: string;
}

export async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  return (
    await client.query<ServerFacts>(`
      select current_setting('wal_level') as wal_level,
             current_setting('max_replication_slots')::int as max_slots,
             (select count(*)::int from pg_replication_slots) as used_slots,
             current_setting('max_wal_senders')::int as max_wal_senders,
             (select setting::int from pg_settings where name = 'max_slot_wal_keep_size') as max_slot_wal_keep_mb,
             r.rolreplication, r.rolsuper, current_setting('server_version_num')::int as version,
             current_setting('server_version') as version_text, current_user as role
      from pg_roles r where r.rolname = current_user`)
  ).rows[0]!;
}

const ok = (check: string, message: string): CheckResult => ({ check, status: 'ok', message });

export function checkVersion(facts: ServerFacts): CheckResult {
  if (facts.version < 140000) {
    return {
      check: 'version',
      status: 'fail',
      code: 'SOURCE_VERSION',
      message: `PostgreSQL ${facts.version} is too old`,
      fix: 'Tributary needs PostgreSQL 14 or newer',
    };
  }
  return ok('version', `PostgreSQL ${facts.version_text}`);
}

export function checkWalLevel(facts: ServerFacts): CheckResult {
  if (facts.wal_level !== 'logical') {
    return {
      check: 'wal_level',
      status: 'fail',
      code: 'WAL_LEVEL',
      message: `wal_level is '${facts.wal_level}', logical replication needs 'logical'`,
      fix: 'run: ALTER SYSTEM SET wal_level = logical;  then restart PostgreSQL (on RDS: set rds.logical_replication = 1 in the parameter group)',
    };
  }
  return ok('wal_level', 'wal_level is logical');
}

export function checkReplicationPrivilege(facts: ServerFacts): CheckResult {
  if (!facts.rolreplication && !facts.rolsuper) {
    return {
      check: 'replication_privilege',
      status: 'fail',
      code: 'NO_REPLICATION_PRIVILEGE',
      message: `role ${quoteIdent(facts.role)} may not use replication`,
      fix: `run as a superuser: ALTER ROLE ${quoteIdent(facts.role)} WITH REPLICATION;`,
    };
  }
  return ok(
    'replication_privilege',
    `role ${quoteIdent(facts.role)} has ${facts.rolsuper ? 'superuser' : 'REPLICATION'}`,
  );
}

/** A free slot is needed only when ours does not exist yet. */
export function checkFreeSlots(facts: ServerFacts, slot: string, slotExists: boolean): CheckResult {
  const usage = `${facts.used_slots} of ${facts.max_slots} replication slots in use`;
  if (slotExists) return ok('replication_slots', `${usage}; slot ${slot} exists`);
  if (facts.used_slots >= facts.max_slots) {
    return {
      check: 'replication_slots',
      status: 'fail',
      code: 'SLOTS_EXHAUSTED',
      message: `all ${facts.max_slots} replication slots are in use, none free for slot ${slot}`,
      fix: 'drop unused slots (SELECT slot_name, active FROM pg_replication_slots; SELECT pg_drop_replication_slot(name)) or raise max_replication_slots and restart PostgreSQL',
    };
  }
  return ok('replication_slots', `${usage}; slot ${slot} will be created`);
}

export function checkWalSenders(facts: ServerFacts): CheckResult {
  if (facts.max_wal_senders < 1) {
    return {
      check: 'max_wal_senders',
      status: 'fail',
      code: 'NO_WAL_SENDERS',
      message: 'max_wal_senders is 0: no replication connection is possible',
      fix: 'run: ALTER SYSTEM SET max_wal_senders = 10;  then restart PostgreSQL',
    };
  }
  return ok('max_wal_senders', `max_wal_senders is ${facts.max_wal_senders}`);
}

export function checkSlotWalKeepSize(facts: ServerFacts): CheckResult {
  if (facts.max_slot_wal_keep_mb < 0) {
    return {
      check: 'max_slot_wal_keep_size',
      status: 'warn',
      message:
        'max_slot_wal_keep_size is -1: a slot whose consumer stops retains WAL without bound, until the disk is full',
      fix: "cap it, e.g.: ALTER SYSTEM SET max_slot_wal_keep_size = '50GB'; SELECT pg_reload_conf();  (a slot that falls further behind is then invalidated; capture stops with SLOT_LOST and needs a new snapshot)",
    };
  }
  return ok(
    'max_slot_wal_keep_size',
    `max_slot_wal_keep_size is ${facts.max_slot_wal_keep_mb} MB: a slot retaining more WAL is invalidated, its changes are lost and capture must start again from a new snapshot`,
  );
}

/** Inactive slots that hold WAL back: nothing reads them, the server keeps their WAL anyway. */
export async function checkInactiveSlots(client: pg.Client): Promise<CheckResult> {
  const rows = (
    await client.query<{ slot_name: string; retained: string | null }>(
      `select slot_name, pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text as retained
       from pg_replication_slots where not active and restart_lsn is not null order by 2 desc nulls last`,
    )
  ).rows;
  if (rows.length === 0) return ok('inactive_slots', 'no inactive slot retains WAL');
  const list = rows.map((r) => `${r.slot_name} (${formatBytes(Number(r.retained ?? 0))})`).join(', ');
  return {
    check: 'inactive_slots',
    status: 'warn',
    message: `inactive slots retain WAL: ${list}`,
    fix: `if nothing will read them again: ${rows.map((r) => `SELECT pg_drop_replication_slot('${r.slot_name}');`).join(' ')}`,
  };
}

/** The slot, if it exists: it must be ours (pgoutput, this database) and not invalidated. */
export async function checkSlot(client: pg.Client, slot: string): Promise<CheckResult> {
  const row = (
    await client.query<{ plugin: string; database: string; wal_status: string | null; here: boolean }>(
      `select plugin, database, wal_status, database = current_database() as here
       from pg_replication_slots where slot_name = $1`,
      [slot],
    )
  ).rows[0];
  if (!row) return ok('slot', `slot ${slot} does not exist yet; capture creates it`);
  if (row.plugin !== 'pgoutput' || !row.here) {
    return {
      check: 'slot',
      status: 'fail',
      code: 'SLOT_MISMATCH',
      message: `slot ${slot} exists but belongs to plugin ${row.plugin} on database ${row.database}`,
      fix: 'choose another --slot name, or drop that slot if nothing uses it',
    };
  }
  if (row.wal_status === 'lost') {
    return {
      check: 'slot',
      status: 'fail',
      code: 'SLOT_LOST',
      message: `slot ${slot} was invalidated: the WAL it needed is gone, changes may have been lost`,
      fix: `drop it (SELECT pg_drop_replication_slot('${slot}')), then capture again from a new snapshot`,
    };
  }
  return ok('slot', `slot ${slot} exists (wal_status ${row.wal_status ?? 'unknown'})`);
}

export async function checkPublication(
  client: pg.Client,
  publication: string,
  tables: readonly TableName[],
): Promise<CheckResult> {
  const pub = (
    await client.query<{ puballtables: boolean }>(
      'select puballtables from pg_publication where pubname = $1',
      [publication],
    )
  ).rows[0];
  if (!pub) return ok('publication', `publication ${publication} does not exist yet; capture creates it`);
  if (pub.puballtables) {
    if (tables.length > 0) {
      return {
        check: 'publication',
        status: 'fail',
        code: 'PUBLICATION_MISMATCH',
        message: `publication ${publication} publishes all tables, but --tables selects ${tables.length}`,
        fix: 'use another --publication name, or drop the publication so Tributary can create it',
      };
    }
    return ok('publication', `publication ${publication} publishes all tables`);
  }
  const published = (
    await client.query<{ schema: string; table: string }>(
      'select schemaname as schema, tablename as table from pg_publication_tables where pubname = $1 order by 1, 2',
      [publication],
    )
  ).rows.map(formatTableName);
  return ok(
    'publication',
    `publication ${publication} publishes ${published.length === 0 ? 'no table' : published.join(', ')}`,
  );
}

const tableParams = (tables: readonly TableName[]) =>
  tables.length > 0 ? [tables.map((t) => t.schema), tables.map((t) => t.table)] : [null, null];

/** The listed tables must exist (none listed: nothing to check). */
export async function checkTablesExist(
  client: pg.Client,
  tables: readonly TableName[],
): Promise<CheckResult> {
  if (tables.length === 0) return ok('tables', 'all tables are captured');
  const found = await client.query<{ schema: string; table: string }>(
    `select n.nspname as schema, c.relname as table from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and (n.nspname, c.relname) in (select * from unnest($1::text[], $2::text[]))`,
    tableParams(tables),
  );
  const have = new Set(found.rows.map((r) => `${r.schema}\0${r.table}`));
  const missing = tables.filter((t) => !have.has(`${t.schema}\0${t.table}`));
  if (missing.length > 0) {
    return {
      check: 'tables',
      status: 'fail',
      code: 'TABLE_NOT_FOUND',
      message: `table not found: ${missing.map(formatTableName).join(', ')}`,
      fix: 'check --tables: names are schema.table; quote mixed-case names, e.g. "Shop"."Order"',
    };
  }
  return ok('tables', `${tables.length} ${tables.length === 1 ? 'table' : 'tables'} found`);
}

/**
 * A table without a key and with REPLICA IDENTITY DEFAULT (or NOTHING) cannot be captured
 * faithfully: PostgreSQL even rejects its UPDATEs and DELETEs once it is published.
 */
export async function checkReplicaIdentity(
  client: pg.Client,
  tables: readonly TableName[],
): Promise<CheckResult> {
  const noIdentity = await client.query<{ schema: string; table: string }>(
    `select n.nspname as schema, c.relname as table
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r', 'p') and c.relpersistence = 'p'
       and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
       and (c.relreplident = 'n' or (c.relreplident = 'd' and not exists (
             select 1 from pg_index i where i.indrelid = c.oid and i.indisprimary)))
       and ($1::text[] is null or (n.nspname, c.relname) in (select * from unnest($1::text[], $2::text[])))
     order by 1, 2`,
    tableParams(tables),
  );
  if (noIdentity.rows.length > 0) {
    const names = noIdentity.rows.map((r) => formatTableName(r));
    return {
      check: 'replica_identity',
      status: 'fail',
      code: 'NO_REPLICA_IDENTITY',
      message: `${names.length === 1 ? 'table has' : 'tables have'} no primary key and no replica identity: ${names.join(', ')}`,
      fix: `add a primary key, or run: ${names.map((n) => `ALTER TABLE ${n} REPLICA IDENTITY FULL;`).join(' ')}  (or leave the table out with --tables)`,
    };
  }
  return ok('replica_identity', 'every captured table has a primary key or a replica identity');
}

export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}
