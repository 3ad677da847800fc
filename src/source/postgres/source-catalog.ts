import type pg from 'pg';
import { type Lsn, parseLsn } from '../../core/lsn.ts';
import type { RawRelation } from './pgoutput-decoder.ts';

/** Catalog queries the source runs on its normal (non-replication) connection. */

export interface SlotState {
  readonly serverLsn: Lsn;
  readonly confirmedFlushLsn: Lsn | null;
  readonly lagBytes: number;
  readonly retainedBytes: number;
  readonly walStatus: string | null;
  readonly active: boolean;
}

/** The slot as the server sees it: what it retains and how far behind the consumer is, in bytes. */
export async function querySlotState(client: pg.Client, slot: string): Promise<SlotState | null> {
  const result = await client.query<{
    server: string;
    confirmed: string | null;
    lag: string | null;
    retained: string | null;
    wal_status: string | null;
    active: boolean;
  }>(
    `select pg_current_wal_lsn()::text as server, confirmed_flush_lsn::text as confirmed,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text as lag,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::text as retained, wal_status, active
     from pg_replication_slots where slot_name = $1`,
    [slot],
  );
  const row = result.rows[0];
  if (!row) return null;
  return {
    serverLsn: parseLsn(row.server),
    confirmedFlushLsn: row.confirmed ? parseLsn(row.confirmed) : null,
    lagBytes: Number(row.lag ?? 0),
    retainedBytes: Number(row.retained ?? 0),
    walStatus: row.wal_status,
    active: row.active,
  };
}

/**
 * With REPLICA IDENTITY FULL, PostgreSQL flags every column as part of the identity; the record
 * key must still be the primary key (none: a null key), as Debezium does.
 */
export async function withPrimaryKey(client: pg.Client, relation: RawRelation): Promise<RawRelation> {
  if (relation.replicaIdentity !== 'full') return relation;
  const pk = await client.query<{ name: string }>(
    `select a.attname as name from pg_index i
     join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
     where i.indrelid = $1 and i.indisprimary`,
    [relation.id],
  );
  const names = new Set(pk.rows.map((r) => r.name));
  return { ...relation, columns: relation.columns.map((c) => ({ ...c, isKey: names.has(c.name) })) };
}
