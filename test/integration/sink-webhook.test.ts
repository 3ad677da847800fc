/**
 * The `webhook` sink in a real `tributary run` subprocess, POSTing to a local receiver that checks
 * each request's HMAC signature (sink-webhook-receiver.ts):
 * - the random workload of the sink oracle (inserts, updates, deletes, a truncate, a column added,
 *   kill -9 of replicas) while the receiver answers 503 or 500 to some requests: the retries
 *   deliver everything, and the receiver's replica equals the source by SQL, row for row;
 * - a receiver that refuses (422) every batch holding one product: its changes become dead letters
 *   with the answer as the reason, everything else arrives; once the receiver accepts them,
 *   `tributary dlq replay` delivers them and the receiver equals the source.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';
import { createDatabase } from '../support/databases.ts';
import { type CanonicalRow, dirs, SOURCE_QUERY, sinkOracle } from './sink-oracle-support.ts';
import { type Delivered, type Receiver, startReceiver } from './sink-webhook-receiver.ts';

const SECRET = 'a-webhook-secret-of-the-test';
const receivers: Receiver[] = [];
afterAll(async () => {
  for (const r of receivers) await r.close();
  dirs.removeAll();
});

describe('webhook sink (tributary run, a local receiver checking signatures)', () => {
  it('retries non-2xx answers and delivers every change: the receiver equals the source', async () => {
    const receiver = await startReceiver(SECRET);
    receivers.push(receiver);
    // At most two failures in a row, and a batch has 1 + 3 attempts.
    receiver.answer = (_records, n) => (n % 3 === 2 ? 503 : n % 7 === 5 ? 500 : 200);
    await sinkOracle({
      name: 'items-hook',
      seed: 77,
      sink: () => ({
        kind: 'webhook',
        tables: ['public.items'],
        url: receiver.url,
        secret: SECRET,
        retries: 3,
        backoffMs: 20,
        timeoutMs: 5_000,
      }),
      offset: async () => receiver.lastOffset + 1,
      read: async () => receiver.rows(),
    });
    expect(receiver.badSignatures).toBe(0);
    expect(receiver.answers.get(503)).toBeGreaterThan(0);
    expect(receiver.answers.get(500)).toBeGreaterThan(0);
    expect(receiver.answers.get(200)).toBeGreaterThan(0);
  });

  it('a batch refused after its retries becomes dead letters with the answer; a replay delivers them', async () => {
    const receiver = await startReceiver(SECRET);
    receivers.push(receiver);
    const POISON = '7';
    const holds = (records: readonly Delivered[]) =>
      records.some((r) => [r.key?.id, r.value?.after?.id, r.value?.before?.id].map(String).includes(POISON));
    receiver.answer = (records) => (holds(records) ? 422 : 200);
    const source = await createDatabase(18, 'hooksrc');
    await source.query(`create table items (id int primary key, name text, qty int, big int8, price numeric(12,2),
      created timestamp, updated timestamptz, doc jsonb, flag boolean, day date, note text)`);
    const dataDir = dirs.make();
    const env: NodeJS.ProcessEnv = {
      DATABASE_URL: '',
      TRIBUTARY_DATA_DIR: '',
      TRIBUTARY_SLOT: '',
      TRIBUTARY_HTTP_PORT: '0',
      TRIBUTARY_CONSUMERS_NICENESS: '0',
      TRIBUTARY_CONSUMERS_YIELD_TO_CAPTURE: 'never',
      TRIBUTARY_SINKS: JSON.stringify({
        'items-hook': {
          kind: 'webhook',
          tables: ['public.items'],
          url: receiver.url,
          secret: SECRET,
          retries: 2,
          backoffMs: 10,
          batchSize: 10,
          retryAttempts: 2,
        },
      }),
    };
    const proc = startCli(
      [
        'run',
        '--source',
        source.url,
        '--data-dir',
        dataDir,
        '--slot',
        source.name,
        '--publication',
        source.name,
        '--topic-prefix',
        'shop',
        '--partitions',
        '1',
      ],
      { env },
    );
    try {
      await waitFor(
        () => proc.stderr.includes('"msg":"replication started"') || proc.child.exitCode !== null,
        'replication to start',
      );
      expect(proc.child.exitCode, proc.stderr).toBe(null);
      const row = (id: number) => [id, `item ${id}`, id * 3, `${9007199254740993n + BigInt(id)}`, `${id}.25`];
      const insert =
        'insert into items (id, name, qty, big, price, created, updated, doc, flag, day, note) values ';
      const rest = `'2024-01-02 03:04:05.123456', '2024-01-02 08:34:05.123456+05:30', '{"n": 12345678901234567890}', true, '2024-01-02', null`;
      for (let id = 1; id <= 24; id++) {
        await source.query(`${insert}($1, $2, $3, $4, $5, ${rest})`, row(id));
      }
      await source.query("update items set price = price + 1, note = 'updated' where id % 3 = 1"); // 7 included
      await source.query('delete from items where id in (4, 9)');
      await source.query("update items set name = 'seven again' where id = 7");
      const all = async () => (await source.query<CanonicalRow>(SOURCE_QUERY)).rows;
      const withoutPoison = (await all()).filter((r) => r.id !== POISON);
      await waitFor(
        () => JSON.stringify(receiver.rows()) === JSON.stringify(withoutPoison),
        'every change but those of item 7 to arrive',
      );
      const list = async () => {
        const r = await cli(['dlq', 'list', 'items-hook', '--data-dir', dataDir, '--json'], { env });
        return JSON.parse(r.stdout || '[]') as { key: string; error: string }[];
      };
      // Item 7's three changes (insert, two updates), each alone refused after its attempts.
      const letters = await waitFor(async () => {
        const l = await list();
        return l.length >= 3 ? l : undefined;
      }, 'three dead letters');
      expect(letters).toHaveLength(3);
      for (const l of letters) {
        expect(JSON.parse(l.key)).toEqual({ id: 7 });
        expect(l.error).toContain('422');
      }
      expect(receiver.rows()).toEqual(withoutPoison);
      // The receiver is fixed: the replay delivers item 7's changes, in order.
      receiver.answer = () => 200;
      const replay = await cli(['dlq', 'replay', 'items-hook', '--data-dir', dataDir], { env });
      expect(replay.code, replay.stdout + replay.stderr).toBe(0);
      expect(receiver.rows()).toEqual(await all());
      expect(await list()).toEqual([]);
      expect(receiver.badSignatures).toBe(0);
    } finally {
      if (proc.child.exitCode === null) proc.child.kill('SIGTERM');
      await proc.exited;
      await source.drop();
    }
  });
});
