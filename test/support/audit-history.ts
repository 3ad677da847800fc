import pg from 'pg';
import type { StoredRecord } from '../../src/core/record.ts';
import { envelope } from './capture-harness.ts';

/**
 * Several clients change `accounts` concurrently; every change also writes an `audit` row in
 * the same transaction, so the audit table is the committed history, exactly. `version` goes
 * up by one with each change of a row, so per key the history is a strict sequence.
 */
export class AuditedWorkload {
  committed = 0;
  private stopping = false;
  private maxId = 0;
  private running: Promise<unknown> | undefined;
  constructor(private readonly url: string) {}

  start(clients: number): void {
    this.running = Promise.all(Array.from({ length: clients }, () => this.client()));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }

  private async client(): Promise<void> {
    const client = new pg.Client(this.url);
    await client.connect();
    try {
      while (!this.stopping) {
        const roll = Math.random();
        try {
          await client.query('begin');
          if (roll < 0.35 || this.maxId < 20) {
            const rows = roll < 0.005 ? 1500 : 1 + Math.floor(Math.random() * 3);
            const res = await client.query<{ id: string }>(
              `with i as (insert into accounts (version, payload) select 1, md5(random()::text) from generate_series(1, $1) returning id, version)
               insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
              [rows],
            );
            for (const r of res.rows) this.maxId = Math.max(this.maxId, Number(r.id));
          } else if (roll < 0.9) {
            const ids = [
              ...new Set(
                Array.from(
                  { length: 1 + Math.floor(Math.random() * 4) },
                  () => 1 + Math.floor(Math.random() * this.maxId),
                ),
              ),
            ].sort((a, b) => a - b);
            await client.query(
              `with u as (update accounts set version = version + 1, payload = md5(random()::text) where id = any($1::bigint[]) returning id, version)
               insert into audit (key, version, op) select id, version, 'u' from u`,
              [ids],
            );
          } else {
            await client.query(
              `with d as (delete from accounts where id = $1 returning id, version)
               insert into audit (key, version, op) select id, version, 'd' from d`,
              [1 + Math.floor(Math.random() * this.maxId)],
            );
          }
          await client.query('commit');
          this.committed++;
        } catch (error) {
          await client.query('rollback').catch(() => undefined);
          // Deadlocks and serialization failures between the clients are expected; others are not.
          if (!['40P01', '40001'].includes((error as { code?: string }).code ?? '')) throw error;
        }
      }
    } finally {
      await client.end();
    }
  }
}

/** The tables the workload changes: `accounts`, and `audit`, its committed history. */
export const AUDITED_TABLES = `
  create table accounts (id bigserial primary key, version int not null, payload text);
  create table audit (seq bigserial primary key, key bigint not null, version int not null, op char(1) not null);
`;

/**
 * The oracle of audited-workload.ts without vitest (benchmarks run outside it): the records of the
 * `accounts` topic, per key, against the `audit` history. Returns the change events the log holds
 * and what differs (empty when the log is exact: every change once, in order per key).
 */
export async function auditMismatches(
  records: readonly StoredRecord[],
  query: (sql: string) => Promise<{ rows: { key: string; version: number; op: string }[] }>,
): Promise<{ events: number; problems: string[] }> {
  const problems: string[] = [];
  const fromLog = new Map<string, string[]>();
  const seen = new Set<string>();
  for (let i = 0; i < records.length; i++) {
    const record = records[i]!;
    const id = String(JSON.parse(record.key!).id);
    if (record.value === null) {
      const prev = records[i - 1];
      if (!(prev && prev.value !== null && envelope(prev).op === 'd' && prev.key === record.key))
        problems.push(`tombstone of key ${id} at offset ${record.offset} not right after its delete`);
      continue;
    }
    const e = envelope(record);
    const identity = `${e.transaction!.id}#${e.transaction!.total_order}`;
    if (seen.has(identity)) problems.push(`duplicate event ${identity}`);
    seen.add(identity);
    const row = e.op === 'd' ? e.before! : e.after!;
    const list = fromLog.get(id) ?? [];
    list.push(`${e.op}${e.op === 'd' ? '' : row.version}`);
    fromLog.set(id, list);
  }
  const audit = await query("select key::text, version, op from audit order by key, version, op = 'd'");
  const fromDb = new Map<string, string[]>();
  for (const row of audit.rows) {
    const list = fromDb.get(row.key) ?? [];
    list.push(`${row.op}${row.op === 'd' ? '' : row.version}`);
    fromDb.set(row.key, list);
  }
  if (fromLog.size !== fromDb.size) problems.push(`${fromLog.size} keys in the log, ${fromDb.size} in audit`);
  for (const [key, history] of fromDb) {
    const logged = fromLog.get(key) ?? [];
    if (logged.join(' ') !== history.join(' '))
      problems.push(`key ${key}: log ${logged.join(' ')} / audit ${history.join(' ')}`);
  }
  if (seen.size !== audit.rows.length)
    problems.push(`${seen.size} events in the log, ${audit.rows.length} in audit`);
  return { events: seen.size, problems };
}
