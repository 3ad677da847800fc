/**
 * Catch-up benchmark: how long each contender takes to read the same backlog of WAL from its own
 * slot, and how much memory it needs. Slots are created together before the WAL is generated, so
 * every contender decodes the same transactions; contenders run one after another.
 * See bench/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { formatLsn } from '../../src/core/lsn.ts';
import { NatsCluster } from '../../test/support/nats-cluster.ts';
import { startCluster } from '../../test/support/pg-cluster.ts';
import {
  type CatchUpTarget,
  CONTENDERS,
  type ContenderName,
  type ContenderResult,
  runLibrary,
  runOurs,
  runPgRecvLogical,
} from './contenders.ts';
import { formatProfile, type ProfileSummary, summariseProfile } from './cpu-profile.ts';
import { WalSenderCpu } from './process-stats.ts';
import { createSlots, dropSlots, generateWal, prepareWorkload, type WorkloadName } from './workloads.ts';

export interface CatchUpOptions {
  readonly rows: number;
  readonly txs: number;
  readonly only?: WorkloadName | undefined;
  readonly pg: number;
  /** Also run ours once more, on a slot of its own, under `node --cpu-prof`, and summarise it. */
  readonly profile: boolean;
  /** Also run ours with `log.durable=false`, on a slot of its own: what the log's fsyncs cost. */
  readonly nonDurable: boolean;
  /**
   * Skip the untimed warm-up pass (pg_recvlogical on a slot of its own) that otherwise runs before
   * the timed contenders: without it the first contender pays for a colder server.
   */
  readonly cold: boolean;
  /**
   * Also run ours into an R1 and an R3 stream of a 3-node NATS cluster started on loopback
   * (test/support/nats-cluster.ts), each on a slot of its own (issue 15's benchmark).
   */
  readonly nats?: boolean;
}

/** What we report against. */
export const TARGET = { maxRatio: 1.5, maxPeakRssMiB: 300 } as const;

/** A run: the warm-up, the three contenders, then the optional diagnostic runs of ours (not judged). */
type RunName =
  | ContenderName
  | 'warm-up'
  | 'tributary (durable=false)'
  | 'tributary (--cpu-prof)'
  | 'tributary (NATS R1)'
  | 'tributary (NATS R3)';

/** Into R3: at least this many changes/s and this fraction of the embedded log's throughput. */
export const NATS_TARGET = { minRecordsPerSecond: 50_000, minFractionOfEmbedded: 0.5 } as const;

interface Run {
  readonly name: RunName;
  readonly slotSuffix: string;
}

interface Row extends ContenderResult {
  readonly contender: RunName;
  /** CPU seconds of the server's walsender for this contender's slot (decoding, pgoutput). */
  readonly walSenderCpuSeconds: number | null;
  readonly workload: WorkloadName;
  readonly ratio: number | null;
  readonly recordsPerSecond: number;
  readonly peakRssMiB: number | null;
  readonly expectedChanges: number | null;
  readonly countOk: boolean | null;
}

const SLOT_SUFFIX: Record<ContenderName, string> = {
  pg_recvlogical: 'recvlogical',
  'pg-logical-replication': 'library',
  tributary: 'tributary',
};

function runsFor(options: CatchUpOptions): Run[] {
  const runs: Run[] = options.cold ? [] : [{ name: 'warm-up', slotSuffix: 'warmup' }];
  runs.push(...CONTENDERS.map((name) => ({ name, slotSuffix: SLOT_SUFFIX[name] })));
  if (options.nonDurable) {
    runs.push({ name: 'tributary (durable=false)', slotSuffix: 'nondurable' });
  }
  if (options.profile) runs.push({ name: 'tributary (--cpu-prof)', slotSuffix: 'profile' });
  if (options.nats) {
    runs.push({ name: 'tributary (NATS R1)', slotSuffix: 'nats_r1' });
    runs.push({ name: 'tributary (NATS R3)', slotSuffix: 'nats_r3' });
  }
  return runs;
}
const TIMEOUT_MS = 20 * 60_000;
const MiB = 1024 * 1024;

function fmt(n: number | null, digits: number): string {
  return n === null ? '—' : n.toFixed(digits);
}

export function formatTable(rows: readonly Row[]): string {
  const header = [
    'contender',
    'workload',
    'wall s',
    'ratio',
    'records/s',
    'peak RSS MB',
    'CPU s',
    'walsender CPU s',
    'start-up s',
    'records',
  ];
  const lines = rows.map((r) => [
    r.contender,
    r.workload,
    fmt(r.wallSeconds, 2),
    r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
    Math.round(r.recordsPerSecond).toLocaleString('en-US'),
    fmt(r.peakRssMiB, 1),
    fmt(r.cpuSeconds, 2),
    fmt(r.walSenderCpuSeconds, 2),
    fmt(r.startupSeconds, 2),
    r.changes === null
      ? '—'
      : `${r.changes.toLocaleString('en-US')}${r.countOk === false ? ' (MISMATCH)' : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const pad = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    pad(header),
    `|${widths.map((w, i) => `${i < 2 ? ':' : '-'}${'-'.repeat(w)}${i < 2 ? '-' : ':'}`).join('|')}|`,
    ...lines.map(pad),
  ].join('\n');
}

export async function runCatchUp(options: CatchUpOptions): Promise<void> {
  const workloads: WorkloadName[] = options.only ? [options.only] : ['A', 'B'];
  const size = { rows: options.rows, txs: options.txs };
  const loadBefore = loadavg();
  const cluster = await startCluster({ version: options.pg });
  const nats = options.nats ? await NatsCluster.start() : undefined;
  let natsLogs = 0;
  const profileDir = options.profile ? mkdtempSync(join(tmpdir(), 'bench-cpuprof-')) : undefined;
  const rows: Row[] = [];
  const walInfo: Record<string, unknown>[] = [];
  const profiles: Record<string, ProfileSummary | null> = {};
  let serverVersion = '';
  try {
    const admin = new pg.Client(cluster.url());
    await admin.connect();
    serverVersion = (await admin.query<{ v: string }>('select version() as v')).rows[0]!.v;
    await admin.end();
    console.log(`${serverVersion}`);
    console.log(
      'Server: fsync=off, synchronous_commit=off, full_page_writes=off (the throwaway cluster; it only changes how fast the WAL is written).',
    );
    console.log(
      'Ours: durable log (SQLite synchronous=FULL), every append fsynced with its checkpoint; pg_recvlogical writes to /dev/null; the library keeps nothing.',
    );
    console.log(
      `Machine: ${cpus().length} CPUs, load average ${loadBefore.map((l) => l.toFixed(2)).join(' ')}\n`,
    );

    const runs = runsFor(options);
    for (const name of workloads) {
      const workload = await prepareWorkload(cluster.url(), name, size);
      const slots = runs.map((r) => `bench_${name.toLowerCase()}_${r.slotSuffix}`);
      const slotLsns = await createSlots(workload, slots);
      console.log(`Workload ${name}: ${workload.description}; generating WAL...`);
      const wal = await generateWal(workload, size, slotLsns);
      console.log(
        `  ${(wal.walBytes / MiB).toFixed(0)} MiB of WAL in ${wal.generateSeconds.toFixed(1)} s, slots at ${[...new Set(Object.values(slotLsns))].join(', ')}, end LSN ${formatLsn(wal.endLsn)}`,
      );
      walInfo.push({
        workload: name,
        description: workload.description,
        transactions: workload.transactions,
        changes: workload.changes,
        walBytes: wal.walBytes,
        generateSeconds: wal.generateSeconds,
        slotLsns,
        endLsn: formatLsn(wal.endLsn),
      });
      const monitor = new pg.Client(workload.url);
      await monitor.connect();
      const activePid = async (slot: string) =>
        (
          await monitor.query<{ pid: number | null }>(
            'select active_pid as pid from pg_replication_slots where slot_name = $1',
            [slot],
          )
        ).rows[0]?.pid ?? null;
      let reference: number | null = null;
      try {
        for (const [i, run] of runs.entries()) {
          // Ours stores the marker row too; the library stops at the marker's commit, after its row.
          const expected =
            run.name === 'pg_recvlogical' || run.name === 'warm-up' ? null : workload.changes + 1;
          const target: CatchUpTarget = {
            url: workload.url,
            slot: slots[i]!,
            publication: workload.publication,
            endLsn: wal.endLsn,
            tables: workload.tables,
            expectedChanges: expected ?? 0,
            timeoutMs: TIMEOUT_MS,
          };
          process.stdout.write(`  ${run.name}... `);
          const walSender = new WalSenderCpu(activePid, target.slot);
          walSender.start();
          const profileRunDir =
            run.name === 'tributary (--cpu-prof)' && profileDir ? join(profileDir, name) : undefined;
          if (profileRunDir) mkdirSync(profileRunDir);
          let result: ContenderResult;
          try {
            result =
              run.name === 'pg_recvlogical' || run.name === 'warm-up'
                ? await runPgRecvLogical(target)
                : run.name === 'pg-logical-replication'
                  ? await runLibrary(target)
                  : await runOurs(target, {
                      cpuProfileDir: profileRunDir,
                      ...(run.name === 'tributary (durable=false)'
                        ? { env: { TRIBUTARY_DURABLE: 'false' } }
                        : {}),
                      ...(nats && run.name.startsWith('tributary (NATS')
                        ? {
                            nats: {
                              servers: nats.urls,
                              name: `bench${++natsLogs}`,
                              replicas: run.name === 'tributary (NATS R1)' ? 1 : 3,
                            },
                          }
                        : {}),
                    });
          } finally {
            walSender.stop();
          }
          const walSenderCpuSeconds = walSender.stop();
          if (run.name === 'warm-up') {
            console.log(
              `${result.wallSeconds.toFixed(2)} s, walsender ${fmt(walSenderCpuSeconds, 2)} CPU s (untimed pg_recvlogical pass, not in the table)`,
            );
            continue;
          }
          if (run.name === 'pg_recvlogical') reference = result.wallSeconds;
          const row: Row = {
            ...result,
            contender: run.name,
            workload: name,
            walSenderCpuSeconds,
            ratio: reference === null ? null : result.wallSeconds / reference,
            recordsPerSecond: workload.changes / result.wallSeconds,
            peakRssMiB: result.peakRssBytes === null ? null : result.peakRssBytes / MiB,
            expectedChanges: expected,
            countOk: expected === null || result.changes === null ? null : result.changes === expected,
          };
          rows.push(row);
          console.log(
            `${result.wallSeconds.toFixed(2)} s, ${fmt(row.peakRssMiB, 1)} MB${row.countOk === false ? `, ${result.changes} records, expected ${expected}` : ''}`,
          );
          if (profileRunDir) profiles[name] = summariseProfile(profileRunDir);
        }
      } finally {
        await monitor.end();
      }
      await dropSlots(workload, slots);
      console.log();
    }
  } finally {
    await cluster.stop();
    await nats?.stop();
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  }

  console.log(formatTable(rows));
  const ours = rows.filter((r) => r.contender === 'tributary');
  const verdict = ours.map((r) => ({
    workload: r.workload,
    ratioOk: r.ratio !== null && r.ratio <= TARGET.maxRatio,
    rssOk: r.peakRssMiB !== null && r.peakRssMiB < TARGET.maxPeakRssMiB,
    countOk: r.countOk,
  }));
  console.log(
    `\nTarget: ours within ${TARGET.maxRatio}× of pg_recvlogical wall time, peak RSS under ${TARGET.maxPeakRssMiB} MB.`,
  );
  for (const v of verdict) {
    console.log(
      `  ${v.workload}: ratio ${v.ratioOk ? 'met' : 'MISSED'}, RSS ${v.rssOk ? 'met' : 'MISSED'}, record count ${v.countOk ? 'ok' : 'WRONG'}`,
    );
  }
  if (options.nats) {
    console.log(
      `\nNATS target: into R3 at least ${NATS_TARGET.minRecordsPerSecond.toLocaleString('en-US')} changes/s and ${NATS_TARGET.minFractionOfEmbedded}× the embedded log's throughput.`,
    );
    for (const workload of workloads) {
      const embedded = rows.find((r) => r.workload === workload && r.contender === 'tributary');
      for (const name of ['tributary (NATS R1)', 'tributary (NATS R3)'] as const) {
        const row = rows.find((r) => r.workload === workload && r.contender === name);
        if (!row || !embedded) continue;
        const fraction = embedded.wallSeconds / row.wallSeconds;
        const met =
          row.recordsPerSecond >= NATS_TARGET.minRecordsPerSecond &&
          fraction >= NATS_TARGET.minFractionOfEmbedded;
        console.log(
          `  ${workload} ${name}: ${Math.round(row.recordsPerSecond).toLocaleString('en-US')} changes/s, ${fraction.toFixed(2)}× embedded${name.endsWith('R3)') ? (met ? ' (met)' : ' (MISSED)') : ''}, record count ${row.countOk === false ? 'WRONG' : 'ok'}`,
        );
      }
    }
  }
  // A run whose count is wrong did not measure the claim: it fails, like a failing test.
  if (verdict.some((v) => v.countOk === false)) process.exitCode = 1;
  console.log(
    'Server fsync is off; our log fsyncs every append. Load average after the run: ' +
      loadavg()
        .map((l) => l.toFixed(2))
        .join(' '),
  );
  for (const [name, summary] of Object.entries(profiles)) {
    if (summary) console.log(`\nWorkload ${name}: ${formatProfile(summary)}`);
  }

  const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
  mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = join(resultsDir, `catch-up-${stamp}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        date: new Date().toISOString(),
        options,
        server: { version: serverVersion, fsync: false, synchronousCommit: false },
        ours: { log: 'embedded SQLite, durable (fsync per append)', format: 'debezium' },
        machine: { cpus: cpus().length, node: process.version, loadBefore, loadAfter: loadavg() },
        target: TARGET,
        workloads: walInfo,
        results: rows,
        verdict,
        profiles,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nWrote ${file}`);
}
