import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config-loader.ts';
import type { ChangeEvent, Column, Relation } from '../core/change-event.ts';
import { DebeziumEncoder } from '../encode/index.ts';
import { EventFilter, type FilterSettings, formatColumnName, parseColumnName } from './event-filter.ts';

const INT: Column['type'] = { kind: 'base', oid: 23, name: 'int4' };
const TEXT: Column['type'] = { kind: 'base', oid: 25, name: 'text' };
const col = (name: string, type = TEXT, isKey = false): Column => ({
  name,
  typeOid: type.oid,
  typeMod: -1,
  isKey,
  type,
});

const customers: Relation = {
  id: 1,
  schema: 'public',
  table: 'customers',
  replicaIdentity: 'default',
  columns: [col('id', INT, true), col('email'), col('phone'), col('secret'), col('note')],
  keyIndexes: [0],
};
const orders: Relation = { ...customers, id: 2, table: 'orders', columns: [col('id', INT, true)] };

const event = (op: ChangeEvent['op'], relation: Relation, after: (string | null)[] | null, before = null) =>
  ({ op, relation, before, after, lsn: 1n }) as ChangeEvent;

function settings(
  filter: Partial<FilterSettings['filter']> = {},
  mask: Partial<FilterSettings['mask']> = {},
  tables: string[] = [],
): FilterSettings {
  return {
    source: { tables },
    filter: { excludeTables: [], includeColumns: [], excludeColumns: [], skipOperations: [], ...filter },
    mask: { columns: [], with: '****', hashColumns: [], ...mask },
  };
}
const build = (...args: Parameters<typeof settings>) => EventFilter.fromConfig(settings(...args))!;
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

describe('parseColumnName', () => {
  it('reads schema.table.column and table.column, with quoting', () => {
    expect(parseColumnName('public.customers.email')).toEqual({
      schema: 'public',
      table: 'customers',
      column: 'email',
    });
    expect(parseColumnName('Customers.Email')).toEqual({
      schema: 'public',
      table: 'customers',
      column: 'email',
    });
    expect(parseColumnName('"My S"."Or.der"."Tot""al"')).toEqual({
      schema: 'My S',
      table: 'Or.der',
      column: 'Tot"al',
    });
    expect(formatColumnName({ schema: 'My S', table: 'orders', column: 'Tot"al' })).toBe(
      '"My S".orders."Tot""al"',
    );
  });
  it('names the setting of a malformed name', () => {
    expect(() => parseColumnName('email', 'mask.columns')).toThrow(
      /invalid column name "email" in mask.columns/,
    );
    expect(() => parseColumnName('a.b.c.d')).toThrow(/expected schema.table.column/);
  });
});

describe('EventFilter', () => {
  it('is absent when nothing is configured', () => {
    expect(EventFilter.fromConfig(settings())).toBeUndefined();
  });

  it('drops excluded tables and skipped operations, and leaves other events untouched', () => {
    const f = build({ excludeTables: ['public.orders'], skipOperations: ['d', 't'] });
    expect(f.apply(event('c', orders, ['1']))).toBeNull();
    expect(f.apply(event('d', customers, null))).toBeNull();
    expect(f.apply(event('t', customers, null))).toBeNull();
    const insert = event('c', customers, ['1', 'a@x', '555', 's', 'n']);
    expect(f.apply(insert)).toBe(insert);
  });

  it('removes excluded columns from before and after, keeping the key aligned', () => {
    const f = build({ excludeColumns: ['public.customers.secret', 'customers.phone'] });
    const out = f.apply({
      ...event('u', customers, ['1', 'a@x', '555', 's', 'n']),
      before: ['1', 'old@x', '444', 't', null],
    })!;
    expect(out.relation.columns.map((c) => c.name)).toEqual(['id', 'email', 'note']);
    expect(out.relation.keyIndexes).toEqual([0]);
    expect(out.after).toEqual(['1', 'a@x', 'n']);
    expect(out.before).toEqual(['1', 'old@x', null]);
  });

  it('keeps only included columns of a table named in includeColumns; short tuples read as NULL', () => {
    const f = build({ includeColumns: ['public.customers.id', 'public.customers.note'] });
    const out = f.apply(event('c', customers, ['1', 'a@x']))!;
    expect(out.relation.columns.map((c) => c.name)).toEqual(['id', 'note']);
    expect(out.after).toEqual(['1', null]);
  });

  it('masks with the fixed string and hashes with the salt; NULL and unchanged TOAST stay as they are', () => {
    const f = build(
      {},
      {
        columns: ['public.customers.phone'],
        with: 'XX',
        hashColumns: ['public.customers.email'],
        hashSalt: 's4lt',
      },
    );
    const out = f.apply(event('c', customers, ['1', 'a@x', '555', null, 'n']))!;
    expect(out.after).toEqual(['1', sha('s4lta@x'), 'XX', null, 'n']);
    const masked = out.relation.columns.filter((c) => c.type.kind === 'base' && c.type.name === 'text');
    expect(masked.map((c) => c.name)).toContain('phone');
    const again = f.apply(event('u', customers, ['2', 'a@x', null, 'x', undefined as unknown as null]))!;
    expect(again.after).toEqual(['2', sha('s4lta@x'), null, 'x', undefined]);
    // One derived Relation per source Relation.
    expect(again.relation).toBe(out.relation);
  });

  it('gives the encoder a string for a masked non-text column, and the hash in the key of a hashed key', () => {
    const f = build({}, { columns: [], hashColumns: ['public.customers.id'], hashSalt: 'k' });
    const out = f.apply(event('c', customers, ['7', 'a@x', '555', 's', 'n']))!;
    const records: Parameters<DebeziumEncoder['encode']>[2] = [];
    new DebeziumEncoder({ topicPrefix: 'p' }).encode(
      out,
      {
        serverName: 'p',
        database: 'db',
        xid: 1,
        commitLsn: 2n,
        lastCommittedLsn: 1n,
        commitTimeUs: 0n,
        totalOrder: 1,
        dataCollectionOrder: 1,
        snapshot: 'false',
        nowUs: 0n,
      },
      records,
    );
    expect(JSON.parse(records[0]!.key!)).toEqual({ id: sha('k7') });
    expect(JSON.parse(records[0]!.value!).after.id).toBe(sha('k7'));
  });

  it('derives anew for a new Relation object (after a schema change)', () => {
    const f = build({ excludeColumns: ['public.customers.secret'] });
    const changed: Relation = { ...customers, columns: [...customers.columns, col('added')] };
    expect(f.apply(event('c', changed, ['1', 'a', 'b', 'c', 'd', 'e']))!.after).toEqual([
      '1',
      'a',
      'b',
      'd',
      'e',
    ]);
  });

  it('rejects contradictory settings with a config error', () => {
    expect(() => build({}, { hashColumns: ['public.customers.email'] })).toThrow(/no salt is given/);
    expect(() =>
      build({ excludeColumns: ['public.customers.email'] }, { columns: ['public.customers.email'] }),
    ).toThrow(/public.customers.email is both masked and excluded/);
    expect(() =>
      build({ includeColumns: ['public.customers.id'] }, { columns: ['public.customers.email'] }),
    ).toThrow(/both masked and excluded/);
    expect(() =>
      build(
        {},
        { columns: ['public.customers.email'], hashColumns: ['public.customers.email'], hashSalt: 'x' },
      ),
    ).toThrow(/named twice/);
    expect(() => build({ excludeTables: ['public.orders'] }, {}, ['public.orders'])).toThrow(
      /both in source.tables and in filter.excludeTables/,
    );
    expect(() => build({ excludeTables: ['orders'], excludeColumns: ['public.orders.x'] })).toThrow(
      /leaves its table out/,
    );
  });

  it('never shows the salt in an error', () => {
    try {
      build(
        { excludeColumns: ['public.customers.id'] },
        { hashColumns: ['public.customers.email'], hashSalt: 'TOPSECRET' },
      ).apply(event('c', customers, ['1']));
      expect.unreachable();
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('TOPSECRET');
    }
  });

  it('refuses to exclude or fix-mask a key column, at the catalog check and when the Relation arrives', () => {
    const excluded = build({ excludeColumns: ['public.customers.id'] });
    expect(() => excluded.apply(event('c', customers, ['1']))).toThrow(
      /public.customers.id is part of the record key and cannot be excluded/,
    );
    const masked = build({}, { columns: ['public.customers.id'] });
    const catalog = [{ schema: 'public', table: 'customers', columns: [{ name: 'id', isKey: true }] }];
    expect(() => masked.check(catalog, [])).toThrow(/cannot be masked with a fixed string/);
    expect(() =>
      build({ includeColumns: ['public.customers.email'] }).check(
        [
          {
            schema: 'public',
            table: 'customers',
            columns: [
              { name: 'id', isKey: true },
              { name: 'email', isKey: false },
            ],
          },
        ],
        [],
      ),
    ).toThrow(expect.objectContaining({ hint: 'add it to filter.includeColumns' }));
  });

  it('names a missing table or column found by the catalog check', () => {
    const catalog = [
      {
        schema: 'public',
        table: 'customers',
        columns: [
          { name: 'id', isKey: true },
          { name: 'email', isKey: false },
        ],
      },
    ];
    expect(() => build({ excludeTables: ['public.nope'] }).check(catalog, [])).toThrow(
      /filter.excludeTables names table public.nope, which does not exist/,
    );
    expect(() => build({ excludeColumns: ['public.customers.emial'] }).check(catalog, [])).toThrow(
      /filter.excludeColumns names column public.customers.emial, which does not exist/,
    );
    expect(() => build({ excludeColumns: ['public.other.x'] }).check(catalog, [])).toThrow(
      /table public.other does not exist/,
    );
    expect(() =>
      build({ excludeColumns: ['public.customers.email'] }).check(catalog, ['public.orders']),
    ).toThrow(/its table is not in source.tables/);
    expect(() => build({ excludeColumns: ['public.customers.email'] }).check(catalog, [])).not.toThrow();
  });
});

describe('filter and mask settings', () => {
  it('read comma-separated lists from the environment, keeping commas inside quotes', () => {
    const config = loadConfig({
      env: {
        TRIBUTARY_EXCLUDE_COLUMNS: 'public.customers.ssn, "S"."T"."a,b"',
        TRIBUTARY_SKIP_OPERATIONS: 'd,t',
        TRIBUTARY_MASK_SALT: 'salty',
      },
      cwd: tmpdir(),
    });
    expect(config.filter.excludeColumns).toEqual(['public.customers.ssn', '"S"."T"."a,b"']);
    expect(config.filter.skipOperations).toEqual(['d', 't']);
    expect(config.mask).toEqual({ columns: [], with: '****', hashColumns: [], hashSalt: 'salty' });
    expect(EventFilter.fromConfig(config)).toBeDefined();
  });
  it('reject an unknown operation, naming the allowed ones, and never echo the salt', () => {
    expect(() => loadConfig({ env: { TRIBUTARY_SKIP_OPERATIONS: 'd,x' }, cwd: tmpdir() })).toThrow(
      /TRIBUTARY_SKIP_OPERATIONS.*allowed: c, u, d, t/,
    );
    expect(() => loadConfig({ flags: { 'mask.hashSalt': 42 }, env: {}, cwd: tmpdir() })).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('42') }),
    );
  });
});
