import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import {
  captureConfig,
  envelope,
  readTopic,
  runCapture,
  tempDirs,
  waitFor,
} from '../support/capture-harness.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const PREFIX = 'tf';

describe.each(PG_VERSIONS)('toast.fetch on PostgreSQL %i', (version) => {
  const dirs = tempDirs();
  let db: TestDatabase;
  let dataDir: string;
  let running: RunningCapture | undefined;
  const start = () =>
    runCapture(
      captureConfig(db.url, dataDir, { topicPrefix: PREFIX, 'snapshot.mode': 'never', 'toast.fetch': true }),
    );

  /** The records of a table once one has `after.n === n`. */
  const waitForN = (table: string, n: number) =>
    waitFor(async () => {
      const records = await readTopic(running!.log, `${PREFIX}.public.${table}`);
      return records.some((r) => r.value !== null && envelope(r).after?.n === n) ? records : undefined;
    }, `n = ${n} in ${table}`);

  beforeAll(async () => {
    db = await createDatabase(version, 'toastfetch');
    dataDir = dirs.make();
    await db.query(`
      create table docs (id int primary key, body text, n int);
      alter table docs alter column body set storage external;
      create table pairs (a int, b text, body jsonb, tags text[], n int, primary key (a, b));
      alter table pairs alter column body set storage external;
      alter table pairs alter column tags set storage external;
    `);
    running = await start();
  });

  afterAll(async () => {
    await running?.stop();
    await db?.drop();
    dirs.removeAll();
  });

  it('fills unchanged TOASTed values by key and names them in a header', async () => {
    await db.query(`insert into docs values (1, repeat('a', 5000), 1), (2, repeat('b', 5000), 1)`);
    await db.query(`update docs set n = 2`);
    await db.query(`insert into pairs values (1, 'x y', (select jsonb_object_agg(g, repeat('v', 20)) from generate_series(1, 300) g),
                    array_fill('tag "q"'::text, array[400]), 1)`);
    await db.query(`update pairs set n = 2`);
    const docs = await waitForN('docs', 2);
    expect(
      docs.map((r) => [envelope(r).op, (envelope(r).after!.body as string).slice(0, 3), r.headers]),
    ).toEqual([
      ['c', 'aaa', {}],
      ['c', 'bbb', {}],
      ['u', 'aaa', { 'tributary.fetched_toast': '"body"' }],
      ['u', 'bbb', { 'tributary.fetched_toast': '"body"' }],
    ]);
    expect(envelope(docs[2]!).after).toEqual({ id: 1, body: 'a'.repeat(5000), n: 2 });
    const pairs = await waitForN('pairs', 2);
    const [insert, update] = pairs.map(envelope);
    expect(update!.after).toEqual({ ...insert!.after, n: 2 });
    expect(pairs[1]!.headers).toEqual({ 'tributary.fetched_toast': '"body","tags"' });
  });

  it('keeps the placeholder when the row is gone, and documents the value as the one at fetch time', async () => {
    await db.query(`begin; update docs set n = 3 where id = 1; delete from docs where id = 1; commit`);
    await db.query(`update docs set n = 3 where id = 2`);
    const docs = await waitForN('docs', 3);
    const gone = docs.find(
      (r) =>
        r.value !== null &&
        envelope(r).op === 'u' &&
        envelope(r).after!.id === 1 &&
        envelope(r).after!.n === 3,
    )!;
    expect(envelope(gone).after!.body).toBe('__debezium_unavailable_value');
    expect(gone.headers).toEqual({ 'tributary.unchanged_toast': '"body"' });

    // Two updates made while capture is stopped: the first one's fetched value is the newer one.
    await running!.stop();
    await db.query(`update docs set n = 4 where id = 2`);
    await db.query(`update docs set body = repeat('c', 5000) where id = 2`);
    running = await start();
    const later = await waitForN('docs', 4);
    const first = later.find((r) => r.value !== null && envelope(r).after?.n === 4)!;
    expect((envelope(first).after!.body as string).slice(0, 3)).toBe('ccc');
    expect(first.headers).toEqual({ 'tributary.fetched_toast': '"body"' });
  });
});
