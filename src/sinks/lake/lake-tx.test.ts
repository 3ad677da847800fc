import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ColumnShape, SchemaHistoryEntry } from '../../capture/schema-history.ts';
import { consumerRecord } from '../../consumers/worker/lazy-record.ts';
import type { Columns, LakeCatalog } from './lake-catalog.ts';
import { ColumnSet, LakeSchemaError, type ShapeTypes } from './lake-columns.ts';
import { scanLake } from './lake-scan.ts';
import { lakeTypeOf, type ShapeHistory } from './lake-shapes.ts';
import { LakeStage, STAGE_DIR } from './lake-stage.ts';
import { LakeTx } from './lake-tx.ts';

let root: string;
let instance: DuckDBInstance;
let connections: DuckDBConnection[];
let stage: LakeStage;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'lake-tx-'));
  instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  connections = [await instance.connect(), await instance.connect(), await instance.connect()];
  stage = new LakeStage(connections[0]!, connections[1]!, connections[2]!, root);
});

afterAll(() => {
  for (const c of connections) c.closeSync();
  instance.closeSync();
  rmSync(root, { recursive: true, force: true });
});

function column(name: string, typeName: string, typeMod = -1): ColumnShape {
  return {
    name,
    position: 1,
    attnum: 1,
    typeName,
    typeExpression: null,
    typeOid: 0,
    typeMod,
    key: false,
    nullable: true,
  };
}

function entryOf(columns: ColumnShape[]): SchemaHistoryEntry {
  return { table: { schema: 'public', table: 't', columns } } as unknown as SchemaHistoryEntry;
}

/** The lake types of `entry`'s columns, as the sink derives them. */
function shapeOf(entry: SchemaHistoryEntry): ShapeTypes {
  const types = new Map<string, { type: string; describe: (a: string, b: string) => [string, string] }>();
  for (const c of entry.table.columns) {
    const type = lakeTypeOf(c);
    if (type) types.set(c.name, { type, describe: (a, b) => [a, b] });
  }
  return types;
}

/** A row image as an object, or as its JSON text (to write numbers as `1.0` or `1e2`). */
type Row = Record<string, unknown> | string;

/** Change records of table `t` with these row images (LSN 1, 2, ...). */
function records(rows: readonly Row[]) {
  return rows.map((after, i) =>
    consumerRecord({
      topic: 'app.public.t',
      partition: 0,
      offset: i,
      key: null,
      value: JSON.stringify({
        before: null,
        after: '@after',
        source: { schema: 'public', table: 't', lsn: i + 1, ts_us: 1_700_000_000_000_000 },
        op: 'c',
      }).replace('"@after"', typeof after === 'string' ? after : JSON.stringify(after)),
      headers: {},
      timestamp: 0,
    }),
  );
}

/**
 * The table's columns as the lake types them from the staged batch, and as observing every row
 * in order gives them (the definition); an error is given as such.
 */
async function bothWays(
  rows: readonly Row[],
  known?: Columns,
  entry?: SchemaHistoryEntry,
): Promise<{ staged: Columns | Error; everyRow: Columns | Error }> {
  const catalog = { columns: () => known } as unknown as LakeCatalog;
  const shapes = entry ? ({ at: () => entry } as unknown as ShapeHistory) : undefined;
  const tx = new LakeTx(catalog, shapes);
  tx.add(records(rows));
  const batch = await stage.load(tx.batch);
  let staged: Columns | Error;
  try {
    await tx.type(stage, batch);
    staged = tx.columns.get('t')!.columns();
  } catch (error) {
    staged = error as Error;
  } finally {
    await stage.release(batch);
  }
  const expected = new ColumnSet('t', known);
  let everyRow: Columns | Error;
  try {
    for (const r of rows) {
      expected.observe(typeof r === 'string' ? JSON.parse(r) : r, entry ? shapeOf(entry) : undefined);
    }
    everyRow = expected.columns();
  } catch (error) {
    everyRow = error as Error;
  }
  return { staged, everyRow };
}

describe('LakeTx typing from the staged batch', () => {
  it('types columns by value as observing every row does', async () => {
    const { staged, everyRow } = await bothWays([
      { id: 1, n: null, f: 1, s: 'x', b: true, j: [1], big: 1e300, t: null, neg: -4 },
      { id: 2, n: null, f: 1.5, s: 'NaN', b: false, j: { a: 1 }, big: 2, t: '2024-01-01', neg: -5 },
      { id: 3, n: 9, f: -2e-7, s: 'y', b: null, j: null, big: 3, t: null, neg: null, late: 'new' },
    ]);
    expect(staged).toEqual(everyRow);
    expect(staged).toContainEqual(['f', 'DOUBLE']);
    expect(staged).toContainEqual(['late', 'VARCHAR']);
  });

  it('tells apart the numbers and strings json_type does not: whole or not, beyond 2^63 or not, NaN or not', async () => {
    const cases: Row[][] = [
      // 1.0 and 1e2 are whole (BIGINT); a fraction later widens it.
      ['{"v":1.0}', '{"v":1e2}'],
      ['{"v":1.0}', { v: 2.5 }],
      // At or beyond 2^63 (as a double): DOUBLE, for a positive and a negative one.
      [{ v: 1 }, '{"v":9223372036854775807}'],
      ['{"v":-9223372036854775808}'],
      // A float's NaN after a fraction fits; before it, the column is text and the number stops it.
      [{ v: 0.5 }, { v: 'NaN' }],
      [{ v: 'NaN' }, { v: 0.5 }],
    ];
    for (const rows of cases) {
      const { staged, everyRow } = await bothWays(rows);
      if (everyRow instanceof Error) expect((staged as Error).message).toBe(everyRow.message);
      else expect(staged, JSON.stringify(rows)).toEqual(everyRow);
    }
    // A float column (catalog type DOUBLE) with NaN and Infinity stays DOUBLE; a text stops it.
    expect((await bothWays([{ f: 'NaN' }, { f: 'Infinity' }], [['f', 'DOUBLE']])).staged).toEqual([
      ['f', 'DOUBLE'],
    ]);
    expect((await bothWays([{ f: 'NaN' }, { f: 'x' }], [['f', 'DOUBLE']])).staged).toBeInstanceOf(
      LakeSchemaError,
    );
  });

  it('types strings, booleans, nested values, nulls and negative integers by their kinds alone', async () => {
    const rows = [
      { s: 'a', b: true, j: { x: [1] }, n: null, neg: -1 },
      { s: null, b: false, j: [2], n: null, neg: -9_223_372_036_854_775_000 },
      { s: 'NaN', b: null, j: null, n: null, neg: -2, added: 'x' },
    ];
    const { staged, everyRow } = await bothWays(rows);
    expect(staged).toEqual(everyRow);
    expect(staged).toEqual([
      ['s', 'VARCHAR'],
      ['b', 'BOOLEAN'],
      ['j', 'JSON'],
      ['n', 'NULL'],
      ['neg', 'BIGINT'],
      ['added', 'VARCHAR'],
    ]);
  });

  it('types columns by their PostgreSQL types, a float NaN and a masked number as every row does', async () => {
    const entry = entryOf([
      column('id', 'int8'),
      column('amt', 'numeric', ((12 << 16) | 2) + 4),
      column('ts', 'timestamptz'),
      column('f', 'float8'),
      column('name', 'text'),
    ]);
    const rows = [
      { id: 1, amt: '1.50', ts: '2024-01-01T00:00:00Z', f: 1, name: 'a' },
      { id: 2, amt: null, ts: null, f: 'NaN', name: 7 },
    ];
    const plain = await bothWays(rows, undefined, entry);
    expect(plain.staged).toEqual(plain.everyRow);
    expect(plain.staged).toContainEqual(['amt', 'DECIMAL(12,2)']);
    const masked = await bothWays(
      [...rows, { id: '****', amt: '1', ts: null, f: 2, name: 'b' }],
      [['id', 'BIGINT']],
      entry,
    );
    expect(masked.staged).toBeInstanceOf(LakeSchemaError);
    expect(masked.everyRow).toBeInstanceOf(LakeSchemaError);
    for (const e of [masked.staged, masked.everyRow]) {
      expect((e as Error).message).toMatch(/column id changed type from BIGINT to .*VARCHAR/);
    }
  });

  it('stops on an incompatible value as observing every row does', async () => {
    const { staged, everyRow } = await bothWays([{ v: 'text' }, { v: 2 }]);
    expect(staged).toBeInstanceOf(LakeSchemaError);
    expect((staged as Error).message).toBe((everyRow as Error).message);
  });
});

describe('LakeStage', () => {
  it('names the record DuckDB cannot read, skips tombstones and values that are no change events, and leaves no file', async () => {
    const good = JSON.stringify({ before: null, after: { id: 1 }, source: { lsn: 5 }, op: 'c' });
    const make = (values: (string | null)[]) =>
      values.map((value, offset) =>
        consumerRecord({
          topic: 'app.public.t',
          partition: 3,
          offset,
          key: null,
          value,
          headers: {},
          timestamp: 0,
        }),
      );
    const tx = new LakeTx({ columns: () => undefined } as unknown as LakeCatalog);
    tx.add(make([good, null, '[1]', '{"no":"op"}', good]));
    const staged = await stage.load(tx.batch);
    expect(staged.tables.map((t) => [t.name, t.days.reduce((n, d) => n + d.rows, 0)])).toEqual([['t', 2]]);
    await stage.release(staged);

    const bad = new LakeTx({ columns: () => undefined } as unknown as LakeCatalog);
    bad.add(make([good, '{"before":null,"after":{"id":1},"op":"c"', good]));
    await expect(stage.load(bad.batch)).rejects.toThrow(/app\.public\.t partition 3 offset 1 is not JSON/);
    expect(readdirSync(join(root, STAGE_DIR))).toEqual([]);
  });

  it('stages batches ahead; one dropped past the bound is staged again when its transaction takes it', async () => {
    const batches = [1, 2, 3].map(
      (n) => scanLake(records(Array.from({ length: n }, (_, i) => ({ id: i })))).batch,
    );
    for (const b of batches) stage.preload(b);
    const staged = [];
    for (const b of batches) staged.push(await stage.load(b));
    expect(staged.map((s) => s.tables[0]!.days[0]!.rows)).toEqual([1, 2, 3]);
    for (const s of staged) await stage.release(s);
    await stage.settle();
    const left = await connections[0]!.runAndReadAll(
      "SELECT count(*)::INTEGER FROM duckdb_tables() WHERE table_name LIKE 'lake_stage_%'",
    );
    expect(left.getRows()[0]![0]).toBe(0);
  });
});
