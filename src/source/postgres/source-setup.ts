import type pg from 'pg';
import { SourceSetupError } from '../../core/errors.ts';
import { type Lsn, parseLsn } from '../../core/lsn.ts';
import { quoteIdent } from './replication-protocol.ts';
import {
  type CheckResult,
  checkFreeSlots,
  checkReplicaIdentity,
  checkReplicationPrivilege,
  checkTablesExist,
  checkVersion,
  checkWalLevel,
  serverFacts,
} from './source-checks.ts';
import type { TableName } from './table-name.ts';

export interface SetupOptions {
  readonly slot: string;
  readonly publication: string;
  /** Tables to capture; empty or undefined = every table (a FOR ALL TABLES publication). */
  readonly tables?: readonly TableName[];
}

export interface SlotInfo {
  readonly created: boolean;
  /** The slot's consistent point when created now; otherwise its confirmed_flush_lsn. */
  readonly lsn: Lsn;
}

/**
 * Checks everything that would make capture fail later, and says how to fix each problem,
 * before creating anything. Order matters: the first failing check is the one to fix first.
 */
export async function preflight(client: pg.Client, options: SetupOptions): Promise<void> {
  const facts = await serverFacts(client);
  const tables = options.tables ?? [];
  const checks: (() => CheckResult | Promise<CheckResult>)[] = [
    () => checkVersion(facts),
    () => checkWalLevel(facts),
    () => checkReplicationPrivilege(facts),
    async () => checkFreeSlots(facts, options.slot, await slotExists(client, options.slot)),
    () => checkTablesExist(client, tables),
    () => checkReplicaIdentity(client, tables),
  ];
  for (const check of checks) {
    const result = await check();
    if (result.status === 'fail') {
      throw new SourceSetupError(result.code ?? 'SOURCE_SETUP', result.message, {
        ...(result.fix ? { hint: result.fix } : {}),
      });
    }
  }
}

export async function slotExists(client: pg.Client, slot: string): Promise<boolean> {
  const found = await client.query('select 1 from pg_replication_slots where slot_name = $1', [slot]);
  return (found.rowCount ?? 0) > 0;
}

/** Creates the publication if missing; with a table list, makes it publish exactly those tables. */
export async function ensurePublication(client: pg.Client, options: SetupOptions): Promise<void> {
  const tables = options.tables ?? [];
  const existing = await client.query<{ puballtables: boolean }>(
    'select puballtables from pg_publication where pubname = $1',
    [options.publication],
  );
  const list = tables.map((t) => `${quoteIdent(t.schema)}.${quoteIdent(t.table)}`).join(', ');
  const pub = quoteIdent(options.publication);
  if (existing.rows.length === 0) {
    try {
      await client.query(
        tables.length > 0
          ? `create publication ${pub} for table ${list}`
          : `create publication ${pub} for all tables`,
      );
    } catch (cause) {
      const code = (cause as { code?: string }).code;
      if (code === '42501') {
        throw new SourceSetupError(
          'PUBLICATION_PRIVILEGE',
          `cannot create publication ${options.publication}: ${(cause as Error).message}`,
          {
            cause,
            hint:
              tables.length > 0
                ? 'the role must own the tables, or let a superuser create the publication'
                : `a FOR ALL TABLES publication needs a superuser: have one run CREATE PUBLICATION ${pub} FOR ALL TABLES;  or pass --tables`,
          },
        );
      }
      throw cause;
    }
    return;
  }
  if (tables.length > 0) {
    if (existing.rows[0]!.puballtables) {
      throw new SourceSetupError(
        'PUBLICATION_MISMATCH',
        `publication ${options.publication} publishes all tables, but --tables selects ${tables.length}`,
        { hint: 'use another --publication name, or drop the publication so Tributary can create it' },
      );
    }
    await client.query(`alter publication ${pub} set table ${list}`);
  }
}

/**
 * The slot we read from is gone (dropped) or invalidated (its WAL was removed, e.g. beyond
 * `max_slot_wal_keep_size`): changes since the last confirmed position may be lost for good.
 */
export function slotLostError(slot: string, how: 'missing' | 'invalidated'): SourceSetupError {
  return new SourceSetupError(
    'SLOT_LOST',
    how === 'missing'
      ? `replication slot ${slot} no longer exists, but capture has a stored position in it: changes made since may have been lost`
      : `replication slot ${slot} was invalidated (wal_status lost): the WAL it needed was removed, changes may have been lost`,
    {
      hint: `${how === 'invalidated' ? `drop the slot (SELECT pg_drop_replication_slot('${slot}')), then ` : ''}start again from a new snapshot: capture into a new --data-dir (or another --slot) so the slot is created afresh, and reload the tables' current rows; or set source.onSlotLost = resnapshot (--on-slot-lost resnapshot) to have Tributary do this`,
    },
  );
}

/**
 * Creates the slot if missing; refuses a slot that cannot serve us, saying what to do. With
 * `resumeFrom` (a position stored by an earlier run) a missing slot is SLOT_LOST, not created.
 */
export async function ensureSlot(
  client: pg.Client,
  options: SetupOptions & { readonly resumeFrom?: Lsn },
): Promise<SlotInfo> {
  const found = await client.query<{
    plugin: string;
    database: string;
    wal_status: string | null;
    confirmed: string | null;
  }>(
    `select plugin, database, wal_status, confirmed_flush_lsn::text as confirmed
     from pg_replication_slots where slot_name = $1`,
    [options.slot],
  );
  const row = found.rows[0];
  if (row) {
    const db = (await client.query<{ db: string }>('select current_database() as db')).rows[0]!.db;
    if (row.plugin !== 'pgoutput' || row.database !== db) {
      throw new SourceSetupError(
        'SLOT_MISMATCH',
        `slot ${options.slot} exists but belongs to plugin ${row.plugin} on database ${row.database}`,
        { hint: 'choose another --slot name, or drop that slot if nothing uses it' },
      );
    }
    if (row.wal_status === 'lost') throw slotLostError(options.slot, 'invalidated');
    return { created: false, lsn: parseLsn(row.confirmed ?? '0/0') };
  }
  // A stored position means a slot existed: a new one would start at the current WAL position
  // and silently skip every change made since.
  if (options.resumeFrom !== undefined) throw slotLostError(options.slot, 'missing');
  const created = await client.query<{ lsn: string }>(
    `select lsn::text as lsn from pg_create_logical_replication_slot($1, 'pgoutput')`,
    [options.slot],
  );
  return { created: true, lsn: parseLsn(created.rows[0]!.lsn) };
}

/**
 * Drops a slot if it exists (a re-snapshot after the slot was lost). A slot still held by the
 * walsender of a killed capture is released within moments: wait for it, at most `timeoutMs`.
 */
export async function dropSlot(client: pg.Client, slot: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await client.query(
        'select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = $1',
        [slot],
      );
      return;
    } catch (error) {
      // 55006: object in use (the slot is active for another PID).
      if ((error as { code?: string }).code !== '55006' || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
