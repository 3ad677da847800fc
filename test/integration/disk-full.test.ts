import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLiveness } from '../../src/capture/capture-liveness.ts';
import { type RunningCapture, startCapture } from '../../src/capture/capture-runner.ts';
import { readStatus } from '../../src/capture/capture-status.ts';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { captureDeps } from '../../src/server/control-plane.ts';
import { type ControlPlane, startControlPlane } from '../../src/server/http-server.ts';
import { ServerMetrics } from '../../src/server/server-metrics.ts';
import { AUDITED_TABLES, AuditedWorkload, expectLogEqualsAudit } from '../support/audited-workload.ts';
import { captureConfig, quietLogger, readTopic, readTopicTail, waitFor } from '../support/capture-harness.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';
import { fill } from '../support/disk-fill.ts';
import { FakeParent, launch, writeConsumer } from './consumer-worker-support.ts';

const VERSION = 18;

/** Offsets a consumer handled (lines it wrote to `file`, outside the full disk). */
function handledOffsets(file: string): number[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map(Number);
}

function committedOffset(dataDir: string, group: string): number | undefined {
  const store = ConsumerStore.open({ dataDir });
  try {
    return store.committed(group)[0]?.offset;
  } finally {
    store.close();
  }
}

async function endOffset(log: RunningCapture['log'], topic: string): Promise<number> {
  return (await log.topics()).find((t) => t.topic === topic)!.partitions[0]!.endOffset;
}

/**
 * Issue 14 item 4: the data directory on a small tmpfs that fills up while a workload runs. A full
 * disk is its own state (not a lost connection), and capture resumes by itself, exactly, once
 * space returns: the log then equals the source's committed history, each change once.
 */
describe('a full disk under the event log', () => {
  let mountPoint: string;
  let db: TestDatabase;
  let running: RunningCapture | undefined;
  let consumer: FakeParent | undefined;
  let server: ControlPlane | undefined;
  const outside = mkdtempSync(join(tmpdir(), 'tributary-diskfull-consumer-'));
  const workload = { current: undefined as AuditedWorkload | undefined };

  beforeAll(async () => {
    mountPoint = mkdtempSync(join(tmpdir(), 'tributary-diskfull-'));
    // Root in this environment: a real small file system that really fills.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=128m', 'tmpfs', mountPoint]);
    db = await createDatabase(VERSION, 'full');
    await db.query(AUDITED_TABLES);
  });
  afterAll(async () => {
    await workload.current?.stop();
    await consumer?.stop();
    await server?.stop();
    rmSync(outside, { recursive: true, force: true });
    await running?.stop();
    await running?.done.catch(() => undefined);
    await db?.drop();
    execFileSync('umount', [mountPoint]);
    rmdirSync(mountPoint);
  });

  it('stops appending, says disk full, keeps the slot, and resumes exactly once space returns', {
    timeout: 240_000,
  }, async () => {
    const dataDir = join(mountPoint, 'data');
    const config = captureConfig(db.url, dataDir, {
      'source.slot': `s_${db.name}`,
      'source.publication': `p_${db.name}`,
      'snapshot.mode': 'never',
      // The write-ahead log trimmed back to 1 MB: the space freed is the log's to use.
      'log.walLimitMb': 1,
      // Small appends: a large transaction spans several, so the disk may fill in the middle of one.
      'capture.maxBatchRecords': 50,
      // No heartbeats: a failed append is found without another message coming.
      'source.heartbeatIntervalMs': 0,
    });
    const metrics = new ServerMetrics();
    running = await startCapture(config, {
      logger: quietLogger,
      statusIntervalMs: 200,
      observer: metrics.captureObserver,
    });
    const topic = `${config.topicPrefix}.public.accounts`;
    const capture = running;
    // The control plane of `up`/`run --http`: /readyz, /metrics and the alerts.
    server = await startControlPlane({
      host: '127.0.0.1',
      port: 0,
      logger: quietLogger,
      metrics,
      alerts: {
        slotLagBytes: 0,
        consumerLagSeconds: 0,
        crashLoop: false,
        disconnectedSeconds: 0,
        intervalMs: 100,
      },
    });
    server.attach(captureDeps(capture, config));
    const plane = server;
    const get = async (path: string) => {
      const response = await fetch(new URL(path, plane.url));
      return { status: response.status, text: await response.text() };
    };
    const alertIds = async () =>
      (JSON.parse((await get('/api/alerts')).text) as { active: { id: string }[] }).active.map((a) => a.id);

    // A consumer replica (the real worker process) reads the topic and commits as it goes; what it
    // handled goes to a file on another disk.
    const handled = join(outside, 'handled.txt');
    const module = writeConsumer(
      outside,
      'accounts',
      `export default defineConsumer({
        topics: [${JSON.stringify(topic)}],
        async handle(batch) {
          appendFileSync(${JSON.stringify(handled)}, batch.map((r) => r.offset + '\\n').join(''));
        },
      });`,
    );
    consumer = new FakeParent(launch('accounts', module, dataDir));
    const replica = consumer;
    await replica.ready();
    replica.assign([{ topic, partition: 0 }]);

    const load = new AuditedWorkload(db.url);
    workload.current = load;
    load.start(3);
    await waitFor(
      async () =>
        (await capture.log.topics()).some((t) => t.topic === topic && t.partitions[0]!.endOffset >= 10),
      'the first records',
    );

    // The disk fills while the workload goes on.
    const filler = fill(mountPoint);
    const full = await waitFor(() => capture.source.stats.diskFull ?? undefined, 'the disk-full state');
    expect(full.neededBytes).toBeGreaterThan(0);
    const reconnects = capture.source.stats.reconnects;
    expect(capture.source.stats.connected).toBe(false);
    // The status, as `tributary status` computes it: disk full, not running.
    const liveness = captureLiveness(readStatus(dataDir), dataDir);
    expect(liveness.state).toBe('disk full');
    expect(liveness.reason).toMatch(/bytes free/);
    // /readyz, the metric and the alert say so too.
    const readyz = await get('/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.text).toMatch(/disk full: the event log's disk .* bytes free/);
    expect((await get('/metrics')).text).toMatch(/^tributary_log_disk_full 1$/m);
    await waitFor(async () => (await alertIds()).includes('disk_full'), 'the disk_full alert');
    // The slot is kept (nothing dropped while waiting), and no reconnect loop runs.
    const slot = await db.query('select 1 from pg_replication_slots where slot_name = $1', [`s_${db.name}`]);
    expect(slot.rowCount).toBe(1);
    // The workload goes on for a while (changes the slot keeps): nothing is appended meanwhile.
    const endWhileFull = await endOffset(capture.log, topic);
    const committedWhileFull = load.committed;
    await waitFor(() => load.committed > committedWhileFull + 300, 'more committed changes while full');
    expect(capture.source.stats.reconnects).toBe(reconnects);
    expect(capture.source.stats.diskFull).not.toBeNull();
    expect(await endOffset(capture.log, topic)).toBe(endWhileFull);
    expect(replica.child.exitCode).toBeNull();
    // Another connection to the log still reads; a write through it says disk full.
    const reader = EmbeddedEventLog.open({ dataDir });
    try {
      expect((await reader.read(topic, 0, 0, 10)).length).toBe(10);
      await expect(reader.commit('group', [{ topic, partition: 0, offset: 10 }])).rejects.toMatchObject({
        code: 'LOG_DISK_FULL',
      });
    } finally {
      await reader.close();
    }

    // Space returns: the capture resumes by itself, in the same process.
    rmSync(filler);
    await waitFor(
      () => capture.source.stats.diskFull === null && capture.source.stats.connected,
      'the capture to resume',
    );
    const resumedAt = capture.source.stats.confirmedLsn;
    await waitFor(() => capture.source.stats.confirmedLsn > resumedAt, 'progress after resuming');
    // The status file is written again and says running.
    await waitFor(() => {
      const status = readStatus(dataDir);
      return status?.diskFull === null && captureLiveness(status, dataDir).state === 'running';
    }, 'the status file to say running');

    // Ready again, and the disk-full metric and alert are gone.
    await waitFor(async () => (await get('/readyz')).status === 200, '/readyz to answer ready');
    expect((await get('/metrics')).text).toMatch(/^tributary_log_disk_full 0$/m);
    await waitFor(async () => !(await alertIds()).includes('disk_full'), 'the disk_full alert to resolve');

    await load.stop();
    expect(load.committed).toBeGreaterThan(100);
    // A marker committed last tells when everything is in.
    const captured = async () => {
      const marker = await db.query<{ id: string }>(
        `with i as (insert into accounts (version, payload) values (1, 'marker') returning id, version)
         insert into audit (key, version, op) select id, version, 'c' from i returning key as id`,
      );
      const markerKey = `{"id":${marker.rows[0]!.id}}`;
      await waitFor(
        async () => (await readTopicTail(capture.log, topic, 20)).some((r) => r.key === markerKey),
        'the marker to be captured',
        120_000,
      );
    };
    await captured();
    expect(capture.source.stats.reconnects).toBe(reconnects);

    // The oracle: the log, per key, equals the audit history exactly (every change once).
    const events = await expectLogEqualsAudit(await readTopic(capture.log, topic), (sql) => db.query(sql));
    expect(events).toBeGreaterThan(100);

    // The consumer replica lived through it (same process) and handled and committed everything.
    const end = await endOffset(capture.log, topic);
    await waitFor(
      () => committedOffset(dataDir, 'accounts') === end,
      'the consumer to commit the end',
      120_000,
    );
    expect(replica.child.exitCode).toBeNull();
    expect(replica.messages.some((m) => m.type === 'fatal')).toBe(false);
    expect(new Set(handledOffsets(handled))).toEqual(new Set(Array.from({ length: end }, (_, i) => i)));

    // Again, on a quiet source (workload stopped, no heartbeats): one large transaction fills the
    // disk (its appends span many), and capture resumes from the middle of it once space returns.
    const again = fill(mountPoint);
    await db.query(
      `with i as (insert into accounts (version, payload) select 1, repeat(md5(g::text), 32) from generate_series(1, 8000) g returning id, version)
       insert into audit (key, version, op) select id, version, 'c' from i`,
    );
    await waitFor(() => capture.source.stats.diskFull ?? undefined, 'the second disk-full state');
    rmSync(again);
    await captured();
    expect(capture.source.stats.reconnects).toBe(reconnects);
    expect(await expectLogEqualsAudit(await readTopic(capture.log, topic), (sql) => db.query(sql))).toBe(
      events + 8000 + 1,
    );
  });
});
