import pg from 'pg';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { type Lsn, parseLsn } from '../../src/core/lsn.ts';
import { captureConfig, recordCount, runCapture, tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { clusterUrl, createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';
import { type PgCluster, startCluster } from '../support/pg-cluster.ts';

const CLEAN_ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_PUBLICATION: '',
  TRIBUTARY_TABLES: '',
};

async function slotLsn(db: TestDatabase, slot: string): Promise<Lsn | null> {
  const r = await db.query<{ lsn: string | null }>(
    'select confirmed_flush_lsn::text as lsn from pg_replication_slots where slot_name = $1',
    [slot],
  );
  return r.rows[0]?.lsn ? parseLsn(r.rows[0].lsn) : null;
}

/** Writes WAL in another database of the same server and returns the server's WAL position after it. */
async function busyElsewhere(version: number): Promise<Lsn> {
  const other = new pg.Client(clusterUrl(version));
  await other.connect();
  try {
    await other.query('create table if not exists health_traffic (v int)');
    await other.query('insert into health_traffic select generate_series(1, 1000)');
    return parseLsn(
      (await other.query<{ lsn: string }>('select pg_current_wal_lsn()::text as lsn')).rows[0]!.lsn,
    );
  } finally {
    await other.end();
  }
}

interface LogLine {
  level: number;
  msg: string;
  slot?: string;
  lagBytes?: number;
  retainedWalBytes?: number;
}

describe.each(PG_VERSIONS)('keeping PostgreSQL %i healthy', (version) => {
  let db: TestDatabase;
  const dirs = tempDirs();
  const dir = dirs.make;
  const running: RunningCapture[] = [];
  const capture = async (dataDir: string, settings: Record<string, unknown>) => {
    const r = await runCapture(captureConfig(db.url, dataDir, settings));
    running.push(r);
    return r;
  };

  beforeAll(async () => {
    db = await createDatabase(version, 'health');
    await db.query('create table quiet (id serial primary key, pad text)');
  });
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
    await db?.drop();
    dirs.removeAll();
  });

  it('heartbeats go through the slot of an idle database and are confirmed; without them nothing does', async () => {
    // No snapshot: its watermarks are transactions of the database too, and would move the control's slot.
    const settings = {
      'source.tables': 'public.quiet',
      'source.statusIntervalMs': 100,
      'snapshot.mode': 'never',
    };
    const withBeats = await capture(dir(), {
      ...settings,
      'source.slot': 'beats_on',
      'source.heartbeatIntervalMs': 200,
    });
    // Heartbeats are written into the database, so the comparison needs a database of its own.
    const idle = await createDatabase(version, 'health_idle');
    await idle.query('create table quiet (id serial primary key, pad text)');
    const without = await runCapture(
      captureConfig(idle.url, dir(), {
        ...settings,
        'source.slot': 'beats_off',
        'source.heartbeatIntervalMs': 0,
      }),
    );
    running.push(without);
    const target = await busyElsewhere(version);
    // Each heartbeat is a transaction of the captured database: it reaches the capture through
    // the slot, is made durable, and its position is confirmed to the server.
    await waitFor(() => withBeats.capture.stats.transactions >= 2, 'heartbeat transactions', 30_000);
    const beat = withBeats.source.stats.lastHeartbeatLsn;
    expect(beat).toBeGreaterThan(0n);
    await waitFor(
      async () =>
        ((await slotLsn(db, 'beats_on')) ?? 0n) > beat && ((await slotLsn(db, 'beats_on')) ?? 0n) >= target,
      'the slot to confirm past the last heartbeat and the busy database',
      30_000,
    );
    expect(withBeats.capture.stats.records).toBe(0);
    // The same idle database without heartbeats: its slot moves only on keepalives; no
    // transaction ever reaches the capture.
    await waitFor(async () => ((await slotLsn(idle, 'beats_off')) ?? 0n) >= target, 'the other slot', 30_000);
    expect(without.source.stats.heartbeats).toBe(0);
    expect(without.capture.stats.transactions).toBe(0);
    expect(withBeats.source.stats.heartbeats).toBeGreaterThanOrEqual(2);
    await Promise.all([withBeats.stop(), without.stop()]);
    await idle.drop();
  });

  it('warns once when the slot lags beyond source.lagWarningBytes, and says when it is back under', async () => {
    const dataDir = dir();
    const settings = {
      'source.slot': 'lagging',
      'source.tables': 'public.quiet',
      'source.lagWarningBytes': 256 * 1024,
    };
    const first = await capture(dataDir, settings);
    await waitFor(() => first.source.stats.connected, 'the first capture to stream');
    await first.stop();
    // About 2 MB of WAL while nothing reads the slot.
    await db.query(`insert into quiet (pad) select repeat('x', 200) from generate_series(1, 8000)`);
    // Sets the new rows' hint bits now. PostgreSQL 18 enables data checksums by default: the
    // first read of the rows (the resumed snapshot) would otherwise write ~2 MB of full-page
    // images, and the slot would lag a second time while capture runs.
    await db.query('vacuum quiet');
    const lines: LogLine[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
    const second = await startCapture(captureConfig(db.url, dataDir, settings), {
      logger,
      statusIntervalMs: 50,
    });
    running.push(second);
    await waitFor(
      () => lines.some((l) => l.level === 30 && /lag is back under/.test(l.msg)),
      'the lag to clear',
      30_000,
    );
    // A keepalive sent while the walsender decodes the big transaction may confirm up to its
    // commit (safe: PostgreSQL resends a transaction that commits after the confirmed position),
    // so the lag can clear before the transaction is in the log.
    await waitFor(
      async () => (await recordCount(second.log, 'tributary.public.quiet')) === 8000,
      'the 8000 rows in the log',
      30_000,
    );
    const warnings = lines.filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ slot: 'lagging' });
    expect(warnings[0]!.lagBytes).toBeGreaterThan(256 * 1024);
    expect(warnings[0]!.retainedWalBytes).toBeGreaterThan(0);
    expect(warnings[0]!.msg).toContain('source.lagWarningBytes');
    await second.stop();
  });

  it('stops with SLOT_LOST when the slot is dropped during a run, and refuses to restart without it', async () => {
    const dataDir = dir();
    const settings = { 'source.slot': 'lost_slot', 'source.tables': 'public.quiet' };
    const r = await capture(dataDir, settings);
    await db.query(`insert into quiet (pad) values ('before')`);
    await waitFor(async () => (await recordCount(r.log, 'tributary.public.quiet')) >= 1, 'the first record');
    // A slot in use cannot be dropped: end its walsender, then drop it before the capture reconnects.
    await waitFor(async () => {
      await db.query(
        `select pg_terminate_backend(active_pid) from pg_replication_slots where slot_name = 'lost_slot' and active`,
      );
      try {
        await db.query(`select pg_drop_replication_slot('lost_slot')`);
        return true;
      } catch {
        return false;
      }
    }, 'the slot to be dropped');
    const error = await r.done.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'SLOT_LOST' });
    expect((error as Error).message).toContain('lost_slot');
    expect((error as Error).message).toContain('may have been lost');
    expect((error as { hint: string }).hint).toContain('new snapshot');
    await r.stop();

    // A stored position and no slot: creating a new slot would skip every change made since.
    const again = await runCapture(captureConfig(db.url, dataDir, settings)).then(
      (started) => {
        running.push(started);
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(again).toMatchObject({ code: 'SLOT_LOST' });
    expect(await slotLsn(db, 'lost_slot')).toBeNull();
  });
});

describe.each(PG_VERSIONS)('tributary doctor on PostgreSQL %i', (version) => {
  let good: TestDatabase;
  let keyless: TestDatabase;
  let replicaLevel: PgCluster;

  beforeAll(async () => {
    [good, keyless, replicaLevel] = await Promise.all([
      createDatabase(version, 'doctor'),
      createDatabase(version, 'doctor_keyless'),
      startCluster({ version, settings: { wal_level: 'replica' } }),
    ]);
    await good.query('create table orders (id int primary key, total numeric)');
    await keyless.query('create table fine (id int primary key); create table "Loose" (a int)');
  });
  afterAll(async () => {
    await Promise.all([good?.drop(), keyless?.drop(), replicaLevel?.stop()]);
  });

  const doctor = (...args: string[]) => cli(['doctor', ...args], { env: CLEAN_ENV });

  it('passes a database ready for capture, and changes nothing', async () => {
    const result = await doctor('--source', good.url, '--slot', 'doctor_slot');
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    for (const check of [
      'version',
      'wal_level',
      'replication_privilege',
      'replication_slots',
      'replica_identity',
    ])
      expect(result.stdout).toMatch(new RegExp(`^OK +${check} `, 'm'));
    expect(result.stdout).toContain(`PostgreSQL ${version}`);
    expect(result.stdout).toContain('slot doctor_slot will be created');
    expect(result.stdout).not.toMatch(/^FAIL/m);
    // The test clusters leave max_slot_wal_keep_size unbounded: a warning with a value to set.
    expect(result.stdout).toMatch(/^WARN +max_slot_wal_keep_size .*\n.*fix: .*max_slot_wal_keep_size = /m);
    expect(await slotCount(good)).toBe(0);
  });

  it('fails wal_level=replica with the fix', async () => {
    const result = await doctor('--source', replicaLevel.url());
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^FAIL wal_level +wal_level is 'replica'/m);
    expect(result.stdout).toContain('ALTER SYSTEM SET wal_level = logical');
  });

  it('lists a table without key or replica identity with its ALTER TABLE, and reports as JSON', async () => {
    const text = await doctor('--source', keyless.url);
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^FAIL replica_identity .*public\."Loose"/m);
    expect(text.stdout).toContain('ALTER TABLE public."Loose" REPLICA IDENTITY FULL;');

    const json = await doctor('--source', keyless.url, '--json');
    expect(json.code).toBe(1);
    const report = JSON.parse(json.stdout) as {
      ok: boolean;
      checks: { check: string; status: string; code?: string; fix?: string }[];
    };
    expect(report.ok).toBe(false);
    expect(report.checks.find((c) => c.check === 'wal_level')?.status).toBe('ok');
    expect(report.checks.find((c) => c.check === 'replica_identity')).toMatchObject({
      status: 'fail',
      code: 'NO_REPLICA_IDENTITY',
    });
    // Leaving the keyless table out makes the database pass.
    const only = await doctor('--source', keyless.url, '--tables', 'public.fine', '--json');
    expect(only.code).toBe(0);
    expect((JSON.parse(only.stdout) as { ok: boolean }).ok).toBe(true);
  });
});

async function slotCount(db: TestDatabase): Promise<number> {
  const r = await db.query<{ n: number }>(
    'select count(*)::int as n from pg_replication_slots where database = current_database()',
  );
  return r.rows[0]!.n;
}
