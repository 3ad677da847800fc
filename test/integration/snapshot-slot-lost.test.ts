import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keepCapturing, type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { captureConfig, readTopic, runCapture, tempDirs, waitFor } from '../support/capture-harness.ts';
import { PG_VERSIONS } from '../support/databases.ts';
import { type PgCluster, startCluster } from '../support/pg-cluster.ts';
import { replay, sameState, tableState } from './snapshot-support.ts';

describe.each(PG_VERSIONS)('replication slot lost, PostgreSQL %i', (version) => {
  let cluster: PgCluster;
  let client: pg.Client;
  const dirs = tempDirs();

  beforeAll(async () => {
    cluster = await startCluster({ version, settings: { max_slot_wal_keep_size: "'1MB'" } });
    client = new pg.Client(cluster.url());
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await cluster?.stop();
    dirs.removeAll();
  });

  it('invalidated while capture is stopped: onSlotLost=fail stops with SLOT_LOST; resnapshot recreates the slot and reloads every table', async () => {
    const query = (sql: string) => client.query(sql);
    await query(`
      create table items (id int primary key, v int not null, note text);
      insert into items select g, 0, 'first' from generate_series(1, 200) g;
      create table filler (x text);
    `);
    const dir = dirs.make();
    const settings = { 'source.slot': 'lost', topicPrefix: 'lost', 'source.tables': ['public.items'] };
    const topic = 'lost.public.items';
    const first = await runCapture(captureConfig(cluster.url(), dir, settings));
    await waitFor(async () => (await readTopic(first.log, topic)).length === 200, 'the initial snapshot');
    await first.stop();

    // While capture is stopped: changes, then enough WAL for the slot to be invalidated.
    await query(`update items set v = 1, note = 'changed while stopped' where id <= 50`);
    await query(`insert into items select g, 2, 'inserted while stopped' from generate_series(201, 260) g`);
    await waitFor(async () => {
      await query(`insert into filler select repeat('x', 1000) from generate_series(1, 3000)`);
      await query('select pg_switch_wal()');
      await query('checkpoint');
      const slot = await query(`select wal_status from pg_replication_slots where slot_name = 'lost'`);
      return slot.rows[0]?.wal_status === 'lost';
    }, 'the slot to be invalidated');

    const failing = startCapture(
      captureConfig(cluster.url(), dir, { ...settings, 'source.onSlotLost': 'fail' }),
      {
        logger: pino({ level: 'silent' }),
      },
    );
    await expect(failing).rejects.toMatchObject({ code: 'SLOT_LOST' });

    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const second = await startCapture(
      captureConfig(cluster.url(), dir, { ...settings, 'source.onSlotLost': 'resnapshot' }),
      { logger, statusIntervalMs: 200 },
    );
    try {
      expect(warnings.join('\n')).toContain('replication slot lost');
      await query(`update items set note = 'after the re-snapshot' where id = 1`);
      const expected = await tableState(query, 'items');
      await waitFor(
        async () => sameState(replay(await readTopic(second.log, topic)), expected),
        'the topic to equal the table again',
      );
      const slot = await query(`select wal_status from pg_replication_slots where slot_name = 'lost'`);
      expect(slot.rows[0]?.wal_status).not.toBe('lost');
    } finally {
      await second.stop();
    }
  });

  it('resnapshot also covers a slot lost while streaming: capture restarts, recreates it and reloads', async () => {
    const query = (sql: string) => client.query(sql);
    await query(`
      create table orders (id int primary key, status text not null);
      insert into orders select g, 'new' from generate_series(1, 100) g;
    `);
    const config = captureConfig(cluster.url(), dirs.make(), {
      'source.slot': 'dropped',
      topicPrefix: 'dropped',
      'source.tables': ['public.orders'],
      'source.onSlotLost': 'resnapshot',
    });
    const topic = 'dropped.public.orders';
    const warnings: string[] = [];
    const options = {
      logger: pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) }),
      statusIntervalMs: 200,
    };
    let running = await startCapture(config, options);
    const restarts: RunningCapture[] = [];
    let finish!: () => void;
    const until = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const kept = keepCapturing(running, config, options, until, (restarted) => {
      running = restarted;
      restarts.push(restarted);
    });
    try {
      await waitFor(async () => (await readTopic(running.log, topic)).length === 100, 'the initial snapshot');
      await query(`update orders set status = 'paid' where id <= 10`);
      await waitFor(async () => (await readTopic(running.log, topic)).length === 110, 'the updates');
      // A slot in use cannot be dropped: end its walsender, then drop it before capture reconnects.
      await waitFor(async () => {
        await query(
          `select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = 'dropped' and active`,
        );
        try {
          await query(`select pg_drop_replication_slot('dropped')`);
          return true;
        } catch {
          return false;
        }
      }, 'the slot to be dropped');
      // Changes while no slot exists: no stream has them; the new snapshot does.
      await query(`update orders set status = 'shipped' where id <= 5`);
      await query(`delete from orders where id = 100`);
      await waitFor(() => restarts.length === 1, 'capture to restart');
      expect(warnings.join('\n')).toContain('replication slot lost while streaming');
      await waitFor(
        () => running.snapshots.status().every((job) => job.state === 'done'),
        'the new snapshot',
      );
      await query(`insert into orders values (101, 'new after the restart')`);
      const records = await waitFor(async () => {
        const all = await readTopic(running.log, topic);
        return all.some((r) => r.key?.includes('101')) ? all : undefined;
      }, 'a change streamed through the new slot');
      // The topic's replay has every row as the table holds it (the row deleted while no slot
      // existed stays: no delete is known for it), and streaming goes on.
      const state = replay(records);
      const expected = await tableState(query, 'orders');
      for (const [key, row] of expected) expect(state.get(key)).toEqual(row);
      expect(state.size).toBe(expected.size + 1);
    } finally {
      finish();
      await kept.catch(() => undefined);
      await running.stop();
    }
    expect(await kept).toBe(running);
  });
});
