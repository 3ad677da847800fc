/**
 * Takeover time of capture active/standby (issue 15; docs/nats.md, "Capture active/standby"): a
 * throwaway PostgreSQL cluster, a 3-node NATS cluster on loopback, two `tributary run --standby`
 * processes on one slot and one R3 log, and a steady audited workload (test/support/audit-history.ts:
 * every change also writes an `audit` row in its transaction). Then `--kills` times: kill -9 the
 * active capture, measure until the slot is held again (pg_replication_slots.active_pid, polled
 * every 25 ms) and until the first record of the new leader is in the log (the topic's end offsets
 * read from NATS, about 50-150 ms a poll), restart the killed one as the new standby, and wait
 * until it says so. Last, the log is compared with the audit table: every change once, in order per
 * key. Target (issue 15): under 10 s from kill -9 to the first new record.
 *
 *   npx tsx bench/standby.ts [--kills 5] [--clients 3] [--pg 15]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { AUDITED_TABLES, AuditedWorkload, auditMismatches } from '../test/support/audit-history.ts';
import { tempDirs, waitFor } from '../test/support/capture-harness.ts';
import type { CliProcess } from '../test/support/cli.ts';
import type { TestDatabase } from '../test/support/databases.ts';
import { NatsCluster } from '../test/support/nats-cluster.ts';
import { startCluster } from '../test/support/pg-cluster.ts';
import { StandbyPipeline } from '../test/support/standby-pipeline.ts';

const { values: args } = parseArgs({
  options: {
    kills: { type: 'string', default: '5' },
    clients: { type: 'string', default: '3' },
    pg: { type: 'string', default: '15' },
  },
});
const KILLS = Number(args.kills);
const NAME = 'sbbench';

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return `min ${s[0]} ms, median ${median} ms, max ${s[s.length - 1]} ms`;
};

const dirs = tempDirs('tributary-bench-standby-');
const [server, nats] = await Promise.all([startCluster({ version: Number(args.pg) }), NatsCluster.start()]);
const admin = new pg.Client(server.url());
await admin.connect();
await admin.query(`create database ${NAME}`);
await admin.end();
const client = new pg.Client(server.url(NAME));
await client.connect();
const db: TestDatabase = {
  name: NAME,
  url: server.url(NAME),
  query: (sql, params) => client.query(sql, params),
  drop: async () => undefined,
};
const pipe = new StandbyPipeline(db, nats, NAME);
const workload = new AuditedWorkload(db.url);
let exitCode = 0;
try {
  await db.query(AUDITED_TABLES);
  const fail = (p: CliProcess) => (error: Error) => {
    throw new Error(`${error.message}\nstderr: ${p.stderr.slice(-3_000)}`);
  };
  // Both started the same way, as deployed: the first finds the slot free and captures.
  const dataDirs = [dirs.make(), dirs.make()];
  const procs: CliProcess[] = [pipe.start(dataDirs[0]!, ['--standby'])];
  await waitFor(
    () => pipe.status(dataDirs[0]!)?.connected && pipe.status(dataDirs[0]!)?.term === 1,
    'the first capture',
    60_000,
  ).catch(fail(procs[0]!));
  procs.push(pipe.start(dataDirs[1]!, ['--standby']));
  await waitFor(() => pipe.status(dataDirs[1]!)?.role === 'standby', 'the standby', 60_000).catch(
    fail(procs[1]!),
  );
  workload.start(Number(args.clients));
  await waitFor(async () => (await pipe.count()) > 200, 'records from the first capture', 60_000);

  const slotMs: number[] = [];
  const recordMs: number[] = [];
  let active = 0;
  for (let kill = 1; kill <= KILLS; kill++) {
    const before = await pipe.count();
    await waitFor(async () => (await pipe.count()) > before + 100, 'records before the kill', 60_000);
    const oldPid = await waitFor(() => pipe.slotPid(), 'the active capture to hold the slot', 30_000);
    procs[active]!.child.kill('SIGKILL');
    const killedAt = Date.now();
    await procs[active]!.exited;
    const atKill = await pipe.count();
    const next = 1 - active;
    await waitFor(
      async () => {
        const pid = await pipe.slotPid();
        return pid !== undefined && pid !== oldPid;
      },
      'the standby to hold the slot',
      60_000,
    ).catch(fail(procs[next]!));
    slotMs.push(Date.now() - killedAt);
    await waitFor(async () => (await pipe.count()) > atKill, 'records from the new leader', 60_000).catch(
      fail(procs[next]!),
    );
    recordMs.push(Date.now() - killedAt);
    console.log(
      `kill ${kill}: slot held again after ${slotMs.at(-1)} ms, first new record in the log after ${recordMs.at(-1)} ms (term ${kill + 1})`,
    );
    // The killed one comes back on its data directory, as the new standby.
    procs[active] = pipe.start(dataDirs[active]!, ['--standby']);
    await waitFor(
      () =>
        pipe.status(dataDirs[active]!)?.role === 'standby' &&
        pipe.status(dataDirs[active]!)?.term === kill + 1,
      'the restarted capture to wait as the standby',
      60_000,
    ).catch(fail(procs[active]!));
    active = next;
  }
  await workload.stop();
  await pipe.captureMarker();
  for (const p of procs) p.child.kill('SIGTERM');
  const exits = await Promise.all(procs.map((p) => p.exited));
  const { records, term } = await pipe.records();
  const { events, problems } = await auditMismatches(records, (sql) => db.query(sql));
  console.log(`slot held again:      ${stats(slotMs)}`);
  console.log(`first new record:     ${stats(recordMs)}  (target < 10000 ms)`);
  console.log(
    `workload: ${workload.committed} transactions, ${events} change events in the log, final term ${term}, exits ${exits.map((e) => e.code).join(',')}`,
  );
  if (problems.length > 0 || term !== KILLS + 1) {
    console.log(`LOG NOT EXACT (${problems.length} problems):\n${problems.slice(0, 20).join('\n')}`);
    exitCode = 1;
  } else console.log('log exact: every committed change once, in order per key (audit table oracle)');
} finally {
  await workload.stop();
  await pipe.kill();
  await client.end();
  await server.stop();
  await nats.stop();
  dirs.removeAll();
}
process.exit(exitCode);
