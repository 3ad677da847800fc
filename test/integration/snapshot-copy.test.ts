/**
 * Snapshot chunks are read with `COPY ... TO STDOUT` and stored as COPY text. Their values must be
 * the very text a SELECT (and pgoutput) gives for every type, including values that COPY escapes,
 * and the keyset cursor must page through keys that need quoting.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ThreadedSnapshotReader } from '../../src/capture/snapshot-reader-thread.ts';
import { SourceSetupError } from '../../src/core/errors.ts';
import { copyRowTuples } from '../../src/encode/copy-row-batch.ts';
import { type ChunkCursor, SnapshotReader } from '../../src/source/postgres/snapshot-reader.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const TABLE = `create table odd (
  k text primary key, i int, n numeric, f float8, b bool, ts timestamptz, d date, iv interval,
  j jsonb, arr text[], by bytea, u uuid, c char(3), pt point, e text
)`;

const ROWS = `insert into odd values
  ('plain', 1, 1.50, 0.1, true, '2024-02-29 12:34:56.789+01', '2024-02-29', '1 day 02:00', '{"a": [1, "x\\ty"]}',
   array['a', 'b c', null, 'quote"', 'back\\slash'], '\\x00ff5c0a', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'ab', '(1,2)', 'é ✓'),
  (E'tab\\there', -2, -0.0001, 'NaN', false, 'infinity', '-infinity', '-3 mons', 'null', '{}', '\\x', null, null, null,
   E'line1\\nline2\\r\\n'),
  (E'back\\\\slash \\\\N', null, null, null, null, null, null, null, null, null, null, null, null, null, E'\\\\N'),
  ('''quote''', 0, 1e20, 1e-300, null, '1999-12-31 23:59:59.999999+00', '0001-01-01 BC', '00:00:00.000001', '"s"',
   array[]::text[], '\\x5c4e', null, 'xyz', '(-1.5,0)', E'\\b\\f\\v control'),
  ('', 5, 5, 5, true, null, null, null, '[]', '{"{}"}', null, null, '   ', null, '')`;

describe.each(PG_VERSIONS)('snapshot chunks read with COPY on PostgreSQL %i', (version) => {
  let db: TestDatabase;
  let reader: SnapshotReader;
  let plain: pg.Client;

  beforeAll(async () => {
    db = await createDatabase(version, 'copy');
    await db.query(TABLE);
    await db.query(ROWS);
    reader = new SnapshotReader(db.url);
    // The old path: SELECT with every value as its output text, with the reader's session settings.
    plain = new pg.Client({
      connectionString: db.url,
      options: '-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=1 -c TimeZone=UTC',
      types: { getTypeParser: () => (value: string) => value } as unknown as pg.CustomTypesConfig,
    });
    await plain.connect();
  });

  afterAll(async () => {
    await plain?.end();
    await reader?.close();
    await db?.drop();
  });

  it('gives every value as SELECT gives it, chunk by chunk in key order', async () => {
    const table = await reader.describe({ schema: 'public', table: 'odd' });
    const expected = await plain.query<(string | null)[]>({
      text: 'select * from odd order by k',
      rowMode: 'array',
    });
    const read: (string | null)[][] = [];
    let cursor: ChunkCursor | null = { after: null };
    let chunks = 0;
    while (cursor) {
      const chunk = await reader.readChunk(table, cursor, null, 2);
      read.push(...(copyRowTuples(chunk.rows) as (string | null)[][]));
      cursor = chunk.next;
      chunks++;
    }
    expect(read).toEqual(expected.rows);
    expect(chunks).toBe(3);
    // Escaped values really were escaped by COPY (the test would be weak otherwise).
    expect(read.some((row) => row.some((v) => v?.includes('\t')))).toBe(true);
    expect(read.some((row) => row.some((v) => v?.includes('\n')))).toBe(true);
    expect(read.some((row) => row.some((v) => v === '\\N'))).toBe(true);
  });

  it('bounds a chunk ahead of its read (boundary), reads exactly that range, and refuses a range that grew', async () => {
    await db.query('create table ranged (k int, j text, v text, primary key (k, j))');
    await db.query(`insert into ranged select g / 3, 'j' || (g % 3), 'v' || g from generate_series(0, 29) g`);
    const table = await reader.describe({ schema: 'public', table: 'ranged' });
    // The 4th row in key order after (2, 'j0'): (2,j1), (2,j2), (3,j0), (3,j1).
    expect(await reader.boundary(table, { after: ['2', 'j0'] }, null, 4)).toEqual(['3', 'j1']);
    expect(await reader.boundary(table, { after: null }, 'k >= 9', 2)).toEqual(['9', 'j1']);
    expect(await reader.boundary(table, { after: null }, 'k >= 9', 3)).toBeNull();
    // Fewer rows than the chunk after it, or exactly as many: none, the last chunk is read unbounded.
    expect(await reader.boundary(table, { after: ['9', 'j0'] }, null, 4)).toBeNull();
    expect(await reader.boundary(table, { after: ['8', 'j2'] }, null, 3)).toBeNull();
    expect(await reader.boundary(table, { after: ['8', 'j1'] }, null, 3)).toEqual(['9', 'j1']);

    // Chunks bounded one after another cover every row once, in key order.
    const seen: string[] = [];
    let after: readonly string[] | null = null;
    for (;;) {
      const upTo = await reader.boundary(table, { after }, null, 7);
      const chunk = await reader.readChunk(table, { after }, null, 7, upTo);
      seen.push(...copyRowTuples(chunk.rows).map((row) => `${row[0]}/${row[1]}`));
      if (!upTo) {
        expect(chunk.next).toBeNull();
        break;
      }
      expect(chunk.rows.count).toBe(7);
      expect(chunk.next).toEqual({ after: upTo });
      after = upTo;
    }
    const all = await plain.query<{ k: string }>("select k || '/' || j as k from ranged order by k, j");
    expect(seen).toEqual(all.rows.map((r) => r.k));

    // Rows inserted into a range between its boundary and its read: read with it, up to
    // RANGE_SLACK times the chunk; past that the read fails, retryable, rather than hold them all.
    const upTo = await reader.boundary(table, { after: null }, null, 2);
    expect(upTo).toEqual(['0', 'j1']);
    // Between (0, j0) and (0, j1).
    await db.query(`insert into ranged select 0, 'j0-' || g, 'late' from generate_series(1, 3) g`);
    expect((await reader.readChunk(table, { after: null }, null, 2, upTo)).rows.count).toBe(5);
    await db.query(`insert into ranged select 0, 'j0-x' || g, 'late' from generate_series(1, 5) g`);
    const grew = await reader.readChunk(table, { after: null }, null, 2, upTo).catch((e: unknown) => e);
    expect(grew).toMatchObject({ code: 'CHUNK_RANGE_GREW', retryable: true });
    expect((grew as Error).message).toMatch(
      /more than 8 rows were inserted into the key range .*public\.ranged/,
    );
  });

  it('pages with a condition and without a key (CTID ranges)', async () => {
    await db.query('create table nokey as select g as a, md5(g::text) as b from generate_series(1, 500) g');
    await db.query('analyze nokey');
    const nokey = await reader.describe({ schema: 'public', table: 'nokey' });
    let cursor: ChunkCursor | null = { block: 0 };
    const rows: (string | null)[][] = [];
    while (cursor) {
      const chunk = await reader.readChunk(nokey, cursor, 'a % 2 = 0', 100);
      rows.push(...(copyRowTuples(chunk.rows) as (string | null)[][]));
      cursor = chunk.next;
    }
    expect(rows.map((r) => Number(r[0])).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 250 }, (_, i) => 2 * (i + 1)),
    );
  });

  it('reads the same through a reader thread, keeps error codes, and settles every call at the end', async () => {
    const threaded = new ThreadedSnapshotReader(db.url);
    try {
      const table = await threaded.describe({ schema: 'public', table: 'odd' });
      const direct = await reader.readChunk(table, { after: null }, null, 3);
      const other = await threaded.readChunk(table, { after: null }, null, 3);
      expect(other.rows.data.equals(direct.rows.data)).toBe(true);
      expect(other.next).toEqual(direct.next);
      const missing = await threaded.describe({ schema: 'public', table: 'nope' }).catch((e: unknown) => e);
      expect(missing).toBeInstanceOf(SourceSetupError);
      expect(missing).toMatchObject({
        code: 'SNAPSHOT_TABLE_MISSING',
        hint: expect.stringContaining('schema'),
      });
      // The capture's shutdown closes while the worker's own exit terminates: both must settle.
      await Promise.all([threaded.close(), threaded.terminate(), threaded.close()]);
      // A later call starts a new thread.
      expect((await threaded.readChunk(table, { after: null }, null, 1)).rows.count).toBe(1);
    } finally {
      await threaded.terminate();
    }
  });

  it('reports a failing chunk query as an error and the connection stays usable', async () => {
    const table = await reader.describe({ schema: 'public', table: 'odd' });
    await expect(reader.readChunk(table, { after: null }, 'no_such_column > 1', 10)).rejects.toThrow(
      /no_such_column/,
    );
    const again = await reader.readChunk(table, { after: null }, null, 10);
    expect(again.rows.count).toBe(5);
  });
});
