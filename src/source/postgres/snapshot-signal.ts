import { randomUUID } from 'node:crypto';
import { SourceSetupError } from '../../core/errors.ts';
import { quoteIdent } from './replication-protocol.ts';
import { SnapshotReader } from './snapshot-reader.ts';
import { formatTableName, type TableName } from './table-name.ts';

export interface SnapshotRequest {
  readonly url: string;
  readonly table: TableName;
  readonly condition: string | null;
  readonly publication: string;
  readonly signalTable: TableName;
  /** Told of what was created or changed on the way. */
  readonly say?: (line: string) => void;
}

/**
 * Validates the table and the condition, creates the signal table (and adds it to the
 * publication) when missing, and inserts an `execute-snapshot` signal. Errors name what is wrong.
 */
export async function requestSnapshot(request: SnapshotRequest): Promise<{ id: string; table: string }> {
  const { url, table, condition, publication, signalTable } = request;
  const say = request.say ?? (() => undefined);
  const reader = new SnapshotReader(url);
  try {
    const described = await reader.describe(table);
    if (condition) await reader.checkCondition(described, condition);
    // The reader's connection returns every value as PostgreSQL text: booleans are 't' or 'f'.
    const pub = await reader.query<{ puballtables: string; listed: string; signal: string }>(
      `select p.puballtables,
              exists (select 1 from pg_publication_tables t where t.pubname = p.pubname and t.schemaname = $2 and t.tablename = $3) as listed,
              exists (select 1 from pg_publication_tables t where t.pubname = p.pubname and t.schemaname = $4 and t.tablename = $5) as signal
       from pg_publication p where p.pubname = $1`,
      [publication, table.schema, table.table, signalTable.schema, signalTable.table],
    );
    const row = pub.rows[0];
    const name = formatTableName(table);
    if (row && row.listed !== 't') {
      throw new SourceSetupError(
        'SNAPSHOT_TABLE_NOT_CAPTURED',
        `table ${name} is not in publication ${publication}, so capture would not write its rows`,
        {
          hint: `capture it first (--tables, or ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${name})`,
        },
      );
    }
    const signal = `${quoteIdent(signalTable.schema)}.${quoteIdent(signalTable.table)}`;
    const exists = await reader.query('select to_regclass($1) is not null as found', [signal]);
    if (exists.rows[0]?.found !== 't') {
      await reader.query(
        `create table if not exists ${signal} (id text primary key, type text not null, data jsonb)`,
      );
      say(`created the signal table ${formatTableName(signalTable)} (id text, type text, data jsonb)`);
    }
    if (row && row.puballtables !== 't' && row.signal !== 't') {
      await reader.query(`alter publication ${quoteIdent(publication)} add table ${signal}`);
      say(`added ${formatTableName(signalTable)} to publication ${publication}, so capture sees the signals`);
    }
    const id = randomUUID();
    const data = { 'data-collections': [name], ...(condition ? { 'additional-condition': condition } : {}) };
    await reader.query(`insert into ${signal} (id, type, data) values ($1, 'execute-snapshot', $2)`, [
      id,
      JSON.stringify(data),
    ]);
    return { id, table: name };
  } finally {
    await reader.close();
  }
}
