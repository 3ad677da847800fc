import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_TYPE_ROWS } from './builtin-types.ts';
import { type TypeQuery, TypeRegistry } from './type-registry.ts';

describe('TypeRegistry without a server', () => {
  it('knows built-in types and their arrays without a query', async () => {
    let queries = 0;
    const registry = new TypeRegistry(async () => {
      queries++;
      return { rows: [] };
    });
    expect(registry.get(20)).toEqual({ kind: 'base', oid: 20, name: 'int8' });
    expect(registry.get(1700)).toEqual({ kind: 'base', oid: 1700, name: 'numeric' });
    expect(registry.get(1184)).toEqual({ kind: 'base', oid: 1184, name: 'timestamptz' });
    expect(registry.get(3802)).toEqual({ kind: 'base', oid: 3802, name: 'jsonb' });
    expect(registry.get(1007)).toEqual({
      kind: 'array',
      oid: 1007,
      name: '_int4',
      element: { kind: 'base', oid: 23, name: 'int4' },
      delimiter: ',',
    });
    expect(registry.get(1020)).toMatchObject({ kind: 'array', name: '_box', delimiter: ';' });
    expect(registry.get(600)).toEqual({ kind: 'base', oid: 600, name: 'point' });
    await registry.resolve([16, 17, 1000, 2950, 2951, 3807]);
    expect(queries).toBe(0);
  });

  it('has every type the decoder is expected to know', () => {
    const names = new Set(BUILTIN_TYPE_ROWS.map(([, name]) => name));
    for (const name of [
      'bool',
      'bytea',
      'char',
      'name',
      'int8',
      'int2',
      'int4',
      'text',
      'oid',
      'json',
      'xml',
    ]) {
      expect(names).toContain(name);
    }
    for (const name of [
      'float4',
      'float8',
      'money',
      'macaddr',
      'inet',
      'cidr',
      'bpchar',
      'varchar',
      'date',
    ]) {
      expect(names).toContain(name);
    }
    for (const name of [
      'time',
      'timestamp',
      'timestamptz',
      'interval',
      'timetz',
      'bit',
      'varbit',
      'numeric',
    ]) {
      expect(names).toContain(name);
    }
    for (const name of ['uuid', 'jsonb', 'point', 'int4range', 'tstzrange', 'pg_lsn', 'tsvector']) {
      expect(names).toContain(name);
    }
  });

  it('makes unresolvable types base "unknown", with or without a query', async () => {
    const alone = new TypeRegistry();
    await alone.resolve([123456]);
    expect(alone.get(123456)).toEqual({ kind: 'base', oid: 123456, name: 'unknown' });
    const asking = new TypeRegistry(async () => ({ rows: [] }));
    await asking.resolve([123457]);
    expect(asking.get(123457)).toEqual({ kind: 'base', oid: 123457, name: 'unknown' });
  });

  it('asks once, for the unknown oids only, and builds domains and arrays from the rows', async () => {
    const calls: unknown[][] = [];
    const row = (
      oid: number,
      typname: string,
      typtype: string,
      typbasetype = 0,
      typelem = 0,
      isArray = false,
    ) => ({
      oid,
      typname,
      typtype,
      typbasetype,
      typelem,
      typdelim: ',',
      is_array: isArray,
    });
    const query: TypeQuery = async (_sql, params) => {
      calls.push(params);
      return {
        rows: [
          row(90001, 'outer_dom', 'd', 90002),
          row(90002, 'inner_dom', 'd', 90003),
          row(90003, '_mood', 'b', 0, 90004, true),
          row(90004, 'mood', 'e'),
          row(90005, 'loop_a', 'd', 90006),
          row(90006, 'loop_b', 'd', 90005),
        ],
      };
    };
    const registry = new TypeRegistry(query);
    await registry.resolve([90001, 23, 90001, 90005]);
    expect(calls).toEqual([[[90001, 90005]]]);
    const mood = { kind: 'enum', oid: 90004, name: 'mood' };
    expect(registry.get(90001)).toEqual({
      kind: 'array',
      oid: 90003,
      name: '_mood',
      element: mood,
      delimiter: ',',
    });
    expect(registry.get(90002)).toBe(registry.get(90001));
    expect(registry.get(90004)).toEqual(mood);
    // A corrupt catalog with a domain cycle ends in 'unknown' rather than recursing forever.
    expect(registry.get(90005)).toMatchObject({ kind: 'base', name: 'unknown' });
    await registry.resolve([90001, 90004]);
    expect(calls).toHaveLength(1);
  });

  it('rethrows query errors and caches nothing', async () => {
    const registry = new TypeRegistry(async () => {
      throw new Error('connection refused');
    });
    await expect(registry.resolve([777777])).rejects.toThrow('connection refused');
    expect(registry.get(777777)).toBeUndefined();
  });
});

// Integration: the real catalog of the PostgreSQL on this machine, in a scratch schema.
describe('TypeRegistry against PostgreSQL', () => {
  const schema = `tr_types_${randomBytes(4).toString('hex')}`;
  const client = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' });
  let hasCitext = false;
  const oid = async (type: string) =>
    Number((await client.query('SELECT $1::regtype::oid AS oid', [type])).rows[0].oid);

  beforeAll(async () => {
    await client.connect();
    await client.query(`CREATE SCHEMA ${schema}`);
    await client.query(`
      CREATE TYPE ${schema}.mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN ${schema}.money_amount AS numeric(12, 2) CHECK (VALUE >= 0);
      CREATE DOMAIN ${schema}.positive_amount AS ${schema}.money_amount;
      CREATE DOMAIN ${schema}.int_list AS int4[];
      CREATE DOMAIN ${schema}.mood_dom AS ${schema}.mood;
      CREATE TYPE ${schema}.address AS (street text, zip varchar(10));
      CREATE DOMAIN ${schema}.my_box AS box;
      CREATE TYPE ${schema}.floatrange AS RANGE (subtype = float8);
    `);
    try {
      await client.query(`CREATE EXTENSION IF NOT EXISTS citext SCHEMA ${schema}`);
      hasCitext = true;
    } catch {
      // citext is optional: the server may not ship contrib.
    }
  });

  afterAll(async () => {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('resolves enums, domains, arrays of them, composites and ranges in one query', async () => {
    let queries = 0;
    const registry = new TypeRegistry((sql, params) => {
      queries++;
      return client.query(sql, params);
    });
    const t = {
      mood: await oid(`${schema}.mood`),
      moodArray: await oid(`${schema}.mood[]`),
      amount: await oid(`${schema}.money_amount`),
      positive: await oid(`${schema}.positive_amount`),
      intList: await oid(`${schema}.int_list`),
      moodDom: await oid(`${schema}.mood_dom`),
      moodDomArray: await oid(`${schema}.mood_dom[]`),
      address: await oid(`${schema}.address`),
      addressArray: await oid(`${schema}.address[]`),
      myBoxArray: await oid(`${schema}.my_box[]`),
      range: await oid(`${schema}.floatrange`),
    };
    await registry.resolve([...Object.values(t), 23, 1007]);
    expect(queries).toBe(1);

    const mood = { kind: 'enum', oid: t.mood, name: 'mood' };
    const numeric = { kind: 'base', oid: 1700, name: 'numeric' };
    expect(registry.get(t.mood)).toEqual(mood);
    expect(registry.get(t.moodArray)).toEqual({
      kind: 'array',
      oid: t.moodArray,
      name: '_mood',
      element: mood,
      delimiter: ',',
    });
    expect(registry.get(t.amount)).toEqual(numeric);
    expect(registry.get(t.positive)).toEqual(numeric);
    expect(registry.get(t.intList)).toEqual(registry.get(1007));
    expect(registry.get(t.moodDom)).toEqual(mood);
    expect(registry.get(t.moodDomArray)).toMatchObject({ kind: 'array', name: '_mood_dom', element: mood });
    expect(registry.get(t.address)).toEqual({ kind: 'base', oid: t.address, name: 'address' });
    expect(registry.get(t.addressArray)).toMatchObject({
      kind: 'array',
      element: { kind: 'base', name: 'address' },
      delimiter: ',',
    });
    // An array of a domain over box keeps box's ';' delimiter, as array_in does.
    expect(registry.get(t.myBoxArray)).toMatchObject({
      kind: 'array',
      name: '_my_box',
      element: { kind: 'base', oid: 603, name: 'box' },
      delimiter: ';',
    });
    expect(registry.get(t.range)).toEqual({ kind: 'base', oid: t.range, name: 'floatrange' });
  });

  it('passes extension types such as citext as base types with their name', async (context) => {
    if (!hasCitext) context.skip();
    const registry = new TypeRegistry((sql, params) => client.query(sql, params));
    const citext = await oid(`${schema}.citext`);
    const citextArray = await oid(`${schema}.citext[]`);
    await registry.resolve([citext, citextArray]);
    expect(registry.get(citext)).toEqual({ kind: 'base', oid: citext, name: 'citext' });
    expect(registry.get(citextArray)).toMatchObject({
      kind: 'array',
      name: '_citext',
      element: { name: 'citext' },
    });
  });

  it('agrees with the server on every built-in type', async () => {
    const { rows } = await client.query<{ oid: number; typname: string; typarray: number; typdelim: string }>(
      `SELECT oid, typname, typarray, typdelim FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])`,
      [BUILTIN_TYPE_ROWS.map(([typeOid]) => typeOid)],
    );
    const registry = new TypeRegistry();
    expect(rows).toHaveLength(BUILTIN_TYPE_ROWS.length);
    for (const row of rows) {
      expect(registry.get(Number(row.oid))).toMatchObject({ kind: 'base', name: row.typname });
      expect(registry.get(Number(row.typarray))).toMatchObject({ kind: 'array', delimiter: row.typdelim });
    }
  });
});
