import type pg from 'pg';
import type { ChangeEvent, Relation, SourceMessage, TupleValue } from '../../core/change-event.ts';
import { LazyClient } from './lazy-client.ts';
import { quoteIdent } from './replication-protocol.ts';

/** Keys per lookup query; a batch with more rows of one table runs several. */
const KEYS_PER_QUERY = 500;

interface TablePlan {
  readonly table: string;
  /** `format_type` of each key column, to cast the key parameters back to their types. */
  readonly keyTypes: readonly string[];
}

/**
 * `toast.fetch`: fills the unchanged TOASTed values an update did not carry (`undefined` in
 * `after`) with the row's current value, read by primary key. One query per table per batch of
 * messages, and none when no value is missing. The value is the one at fetch time, possibly newer
 * than the change; a row deleted (or re-keyed) since keeps its placeholder. Filled columns are
 * named in the event's `fetchedToast`. Tables without a key are left as they are.
 *
 * The connection must use the replication connection's session settings, so that values come
 * in the same text form as the stream's.
 */
export class ToastFetcher {
  private readonly plans = new WeakMap<Relation, TablePlan>();

  /** `sessionOptions`: the replication connection's `options` (DateStyle, extra_float_digits...). */
  private readonly client: LazyClient;

  constructor(url: string, sessionOptions: string) {
    this.client = new LazyClient({
      connectionString: url,
      application_name: 'tributary-toast',
      options: sessionOptions,
    });
  }

  /** Idempotent. */
  close(): Promise<void> {
    return this.client.close();
  }

  /** Replaces, in place, the change events of `messages` that miss a value. */
  async fill(messages: SourceMessage[]): Promise<void> {
    let wanted: Map<Relation, number[]> | undefined;
    for (let i = 0; i < messages.length; i++) {
      const message = messages[i]!;
      if (message.kind !== 'change' || message.event.op !== 'u') continue;
      const { after, relation } = message.event;
      if (after === null || relation.keyIndexes.length === 0 || !after.includes(undefined)) continue;
      wanted ??= new Map();
      const positions = wanted.get(relation);
      if (positions) positions.push(i);
      else wanted.set(relation, [i]);
    }
    if (!wanted) return;
    for (const [relation, positions] of wanted) {
      for (let start = 0; start < positions.length; start += KEYS_PER_QUERY) {
        const slice = positions.slice(start, start + KEYS_PER_QUERY);
        await this.client.use((client) => this.fillTable(client, relation, messages, slice));
      }
    }
  }

  private async fillTable(
    client: pg.Client,
    relation: Relation,
    messages: SourceMessage[],
    positions: number[],
  ): Promise<void> {
    const plan = await this.plan(client, relation);
    const events = positions.map((i) => (messages[i] as { event: ChangeEvent }).event);
    const missing = new Set<number>();
    for (const event of events) {
      event.after!.forEach((value, index) => {
        if (value === undefined) missing.add(index);
      });
    }
    const columns = [...missing];
    const keyIndexes = relation.keyIndexes;
    const keyOf = (values: readonly TupleValue[]) => JSON.stringify(values);
    const keys = new Map<string, (string | null)[]>();
    for (const event of events) {
      const key = keyIndexes.map((k) => event.after![k] ?? null);
      keys.set(keyOf(key), key);
    }
    const params: (string | null)[] = [];
    const tuples = [...keys.values()].map((key) => {
      const casts = key.map((value, j) => {
        params.push(value);
        return `$${params.length}::${plan.keyTypes[j]}`;
      });
      return `(${casts.join(', ')})`;
    });
    const keyColumns = keyIndexes.map((k) => quoteIdent(relation.columns[k]!.name));
    const select = [...keyIndexes, ...columns].map(
      (k, j) => `${quoteIdent(relation.columns[k]!.name)}::text as c${j}`,
    );
    const result = await client.query<{ [column: string]: string | null }>({
      text: `select ${select.join(', ')} from ${plan.table} where (${keyColumns.join(', ')}) in (${tuples.join(', ')})`,
      values: params,
    });
    const rows = new Map<string, { [column: string]: string | null }>();
    for (const row of result.rows) rows.set(keyOf(keyIndexes.map((_, j) => row[`c${j}`] ?? null)), row);
    for (const i of positions) {
      const message = messages[i] as { kind: 'change'; event: ChangeEvent };
      const event = message.event;
      const row = rows.get(keyOf(keyIndexes.map((k) => event.after![k] ?? null)));
      if (!row) continue;
      const after = [...event.after!];
      const fetched: string[] = [];
      columns.forEach((index, j) => {
        if (after[index] !== undefined) return;
        after[index] = row[`c${keyIndexes.length + j}`] ?? null;
        fetched.push(relation.columns[index]!.name);
      });
      messages[i] = { kind: 'change', event: { ...event, after, fetchedToast: fetched } };
    }
  }

  private async plan(client: pg.Client, relation: Relation): Promise<TablePlan> {
    let plan = this.plans.get(relation);
    if (plan) return plan;
    const oids = relation.keyIndexes.map((k) => relation.columns[k]!.typeOid);
    const types = await client.query<{ type: string }>(
      'select format_type(oid, null) as type from unnest($1::oid[]) with ordinality as t(oid, n) order by n',
      [oids],
    );
    plan = {
      table: `${quoteIdent(relation.schema)}.${quoteIdent(relation.table)}`,
      keyTypes: types.rows.map((r) => r.type),
    };
    this.plans.set(relation, plan);
    return plan;
  }
}
