/**
 * The lake benches' records: an orders-like table's Debezium change events (`envelope`) and the
 * capture's schema history record of that table (`writeHistory`), and a replica's progress
 * through them (`lakeProgress`).
 */

import { join } from 'node:path';
import type { SchemaHistoryEntry } from '../src/capture/schema-history.ts';
import { EmbeddedEventLog } from '../src/log/embedded/sqlite-event-log.ts';
import { LakeCatalog } from '../src/sinks/lake/lake-catalog.ts';

/**
 * The capture's schema history record of the bench table, appended to an embedded log under
 * `dataDir` (topic prefix `bench`): a configured lake sink types columns by it (int8, numeric,
 * timestamp...). With `--no-history` the lake types them by their values instead.
 */
export async function writeHistory(dataDir: string): Promise<void> {
  const column = (name: string, position: number, typeName: string, typeMod = -1) => ({
    name,
    position,
    attnum: position,
    typeName,
    typeExpression: null,
    typeOid: 0,
    typeMod,
    key: name === 'id',
    nullable: name !== 'id',
  });
  const entry: SchemaHistoryEntry = {
    type: 'CREATE',
    id: 'public.orders',
    lsn: '0/0',
    ts_ms: 1_767_323_045_123,
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'bench',
      db: 'shop',
      schema: 'public',
      table: 'orders',
      txId: 1,
      lsn: 0,
      ts_ms: 1_767_323_045_123,
    },
    table: {
      schema: 'public',
      table: 'orders',
      relationId: 1,
      replicaIdentity: 'default',
      primaryKeyColumnNames: ['id'],
      columns: [
        column('id', 1, 'int8'),
        column('customer_id', 2, 'int4'),
        column('total_amount', 3, 'numeric', ((12 << 16) | 2) + 4),
        column('status', 4, 'varchar'),
        column('created_at', 5, 'timestamp'),
        column('updated_at', 6, 'timestamp'),
      ],
    },
    changes: null,
  };
  const log = EmbeddedEventLog.open({ dataDir, durable: false });
  await log.append([
    { topic: 'bench.schema-history', key: null, value: JSON.stringify(entry), headers: {}, timestamp: 0 },
  ]);
  await log.close();
}

export function envelope(i: number, id: number, op: 'c' | 'u'): string {
  const row = {
    id,
    customer_id: id % 5000,
    total_amount: `${(id % 997) + 0.5}`,
    status: op === 'c' ? 'pending' : 'paid',
    created_at: 1_767_323_045_123_456 + id * 1_000_000,
    updated_at: 1_767_323_045_123_456 + i * 1000,
  };
  return JSON.stringify({
    before: null,
    after: row,
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'bench',
      ts_ms: 1_767_323_045_123,
      ts_us: 1_767_323_045_123_456 + i,
      snapshot: 'false',
      db: 'shop',
      schema: 'public',
      table: 'orders',
      txId: 1000 + i,
      lsn: 100_000 + i * 64,
      xmin: null,
    },
    transaction: { id: `${1000 + i}:${100_000 + i * 64}`, total_order: 1, data_collection_order: 1 },
    op,
    ts_ms: 1_767_323_045_200,
  });
}

/**
 * Whether the lake sink `group` under `dataDir` has stored an offset of `total` (its catalog,
 * opened once it exists: the replica's session makes it); `catalog()` is it then (close it).
 */
export function lakeProgress(dataDir: string, group: string, total: number) {
  let catalog: LakeCatalog | undefined;
  return {
    done: () => {
      catalog ??= new LakeCatalog(join(dataDir, 'lake', 'catalog.db'));
      const row = catalog.db
        .prepare(
          'select coalesce(max(next_offset), 0) as n from tributary_consumer_offsets where group_name = ?',
        )
        .get(group) as { n: number };
      return row.n >= total;
    },
    catalog: () => catalog,
  };
}

/**
 * Change `i` of a run of `orders` inserts followed by updates (of order `i * 7919 mod orders`):
 * its order's id, key text and envelope.
 */
export function orderChange(i: number, orders: number): { id: number; key: string; value: string } {
  const id = orderId(i, orders);
  return { id, key: `{"id":${id}}`, value: envelope(i, id, i < orders ? 'c' : 'u') };
}

/** The id of the order change `i` touches (see `orderChange`). */
export function orderId(i: number, orders: number): number {
  return i < orders ? i + 1 : ((i * 7919) % orders) + 1;
}
