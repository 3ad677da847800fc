/**
 * Snapshot benchmark: `tributary run --snapshot-mode initial_only` (chunked keyset reads between
 * watermarks, encoded to Debezium records in the durable embedded log) against
 * `psql -c "COPY (select * from t) TO STDOUT"` of the same table into /dev/null, in one run on a
 * fresh throwaway cluster. See bench/README.md.
 *
 *   npm run bench:snapshot -- [--rows 1000000] [--chunk-rows 20000[,50000...]] [--initial-chunks blocks[,key]] [--baseline <checkout>/bin/tributary.js] [--parallel 2] [--pg 15|18] [--rounds 3] [--profile]
 *
 * `--baseline` adds another checkout's `bin/tributary.js` (say the commit before a change) as a
 * contender in the same rounds.
 *
 * Each round runs COPY and then each of ours, so that a slow spell of a shared machine falls on
 * both; the table gives the median of the rounds and the ratio of the medians.
 *
 * `--profile` runs each of ours under `node --cpu-prof` and prints its top self-time functions
 * (the figures of a profiled run are slower; compare them with a run without it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pgBinDir, startCluster } from '../test/support/pg-cluster.ts';
import { formatProfile, summariseProfile } from './capture/cpu-profile.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'chunk-rows': { type: 'string', default: '20000' },
    'initial-chunks': { type: 'string', default: 'blocks' },
    baseline: { type: 'string' },
    parallel: { type: 'string', default: '2' },
    pg: { type: 'string', default: '15' },
    rounds: { type: 'string', default: '3' },
    profile: { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const chunkSizes = values['chunk-rows'].split(',').map(Number);
const version = Number(values.pg);
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1)
  throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
if (!Number.isInteger(rows) || rows < 1)
  throw new Error(`--rows must be a positive integer, got ${values.rows}`);
if (chunkSizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--chunk-rows: positive integers');
const chunkModes = values['initial-chunks'].split(',');
if (chunkModes.some((m) => m !== 'blocks' && m !== 'key'))
  throw new Error(`--initial-chunks: blocks and/or key, got ${values['initial-chunks']}`);

const BIN = fileURLToPath(new URL('../bin/tributary.js', import.meta.url));

interface Run {
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly peakRssMiB: number | null;
  readonly cpu: number | null;
}

interface Result {
  readonly contender: string;
  readonly seconds: number;
  /** COPY's time in the same round divided by this one's. */
  readonly ratio: number;
  /** CPU seconds of the contender's process (user + sys, start-up included), and of PostgreSQL. */
  readonly cpu: number | null;
  readonly pgCpu: number;
  readonly wallSeconds: number;
  readonly peakRssMiB: number | null;
}

/** Runs a command under GNU time; returns wall seconds, peak RSS and its stderr. */
function timed(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<{ wall: number; rssMiB: number | null; cpu: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'RSS_KB=%M CPU_S=%U+%S', command, ...args], {
      env: { ...process.env, ...env },
      ...(cwd ? { cwd } : {}),
      stdio: ['ignore', openSync('/dev/null', 'w'), 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const wall = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`${command} exited with ${code}\n${stderr.slice(-2000)}`));
      const rss = /RSS_KB=(\d+)/.exec(stderr);
      const cpu = /CPU_S=([\d.]+)\+([\d.]+)/.exec(stderr);
      resolve({
        wall,
        rssMiB: rss ? Number(rss[1]) / 1024 : null,
        cpu: cpu ? Number(cpu[1]) + Number(cpu[2]) : null,
        stderr,
      });
    });
  });
}

const cluster = await startCluster({ version });
const url = cluster.url();

/**
 * CPU seconds PostgreSQL has used so far: the postmaster's own and its ended children's (reaped,
 * so in its cutime/cstime: the backends and walsenders of finished runs), plus its live children.
 */
function pgCpuSeconds(): number {
  const ticks = (stat: string, fields: number[]) => {
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields.reduce((n, i) => n + Number(f[i - 3]), 0);
  };
  const postmaster = Number(readFileSync(join(cluster.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  let total = ticks(readFileSync(`/proc/${postmaster}/stat`, 'utf8'), [14, 15, 16, 17]);
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (ticks(stat, [4]) === postmaster) total += ticks(stat, [14, 15]);
    } catch {
      // ended meanwhile
    }
  }
  return total / 100; // USER_HZ
}
const results: Result[] = [];
try {
  const client = new pg.Client(url);
  await client.connect();
  process.stderr.write(`loading ${rows.toLocaleString('en')} rows ...\n`);
  await client.query(`
    create table bench_snapshot (id bigint primary key, aid int not null, bid int not null,
                                 abalance int not null, created_at timestamptz not null, filler char(84));
    insert into bench_snapshot
      select g, g % 100000, g % 10, (g * 7) % 10000, timestamptz '2026-01-01' + g * interval '1 second', ''
      from generate_series(1, ${rows}) g;
  `);
  await client.query('vacuum analyze bench_snapshot');
  await client.end();

  const psql = join(pgBinDir(15), 'psql');
  const copy = () =>
    timed(psql, [url, '-X', '-q', '-c', 'COPY (select * from bench_snapshot) TO STDOUT']).then((r) => ({
      seconds: r.wall,
      wallSeconds: r.wall,
      peakRssMiB: null,
      cpu: r.cpu,
    }));
  await copy(); // warm-up: the table in shared buffers / page cache for every contender

  /** One run of ours; the slot name is new each time. */
  const ours = async (chunkRows: number, mode: string, slot: string, bin = BIN): Promise<Run> => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-snapshot-'));
    const profileDir = values.profile ? mkdtempSync(join(tmpdir(), 'tributary-bench-profile-')) : null;
    try {
      const run = await timed(
        process.execPath,
        [
          ...(profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : []),
          bin,
          'run',
          '--source',
          url,
          '--data-dir',
          dataDir,
          '--slot',
          slot,
          '--snapshot-mode',
          'initial_only',
        ],
        {
          TRIBUTARY_SNAPSHOT_CHUNK_ROWS: String(chunkRows),
          TRIBUTARY_SNAPSHOT_MAX_PARALLEL_CHUNKS: values.parallel,
          TRIBUTARY_SNAPSHOT_INITIAL_CHUNKS: mode,
          TRIBUTARY_HTTP_PORT: '0',
          TRIBUTARY_HEARTBEAT_INTERVAL_MS: '0',
        },
        // Not the repository: `run` would start the consumers of its ./consumers folder.
        dataDir,
      );
      // Snapshot time: from the first chunk's start to the last chunk durable, from the log lines.
      const times = (message: string) =>
        run.stderr
          .split('\n')
          .filter((l) => l.includes(message))
          .map((l) => (JSON.parse(l) as { time: number }).time);
      const start = Math.min(...times('snapshot started'));
      const end = Math.max(...times('snapshot finished'));
      const seconds = Number.isFinite(start) && Number.isFinite(end) ? (end - start) / 1000 : run.wall;
      const summary = profileDir ? summariseProfile(profileDir, 30) : null;
      if (summary) process.stdout.write(`\n${mode}, chunkRows ${chunkRows}: ${formatProfile(summary)}\n`);
      return { seconds, wallSeconds: run.wall, peakRssMiB: run.rssMiB, cpu: run.cpu };
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      if (profileDir) rmSync(profileDir, { recursive: true, force: true });
    }
  };

  const runs = new Map<string, (Run & { ratio: number; pgCpu: number })[]>();
  let roundCopy = 0;
  /** Runs a contender, with PostgreSQL's CPU over its run. */
  const add = async (contender: string, go: () => Promise<Run>) => {
    const pgBefore = pgCpuSeconds();
    const r = await go();
    const pgCpu = pgCpuSeconds() - pgBefore;
    if (runs.size === 0 || contender.startsWith('COPY')) roundCopy = r.seconds;
    runs.set(contender, [...(runs.get(contender) ?? []), { ...r, ratio: roundCopy / r.seconds, pgCpu }]);
    process.stderr.write(
      `  ${contender}: ${r.seconds.toFixed(2)} s (${(roundCopy / r.seconds).toFixed(2)}× COPY of this round; CPU s: ours ${r.cpu?.toFixed(2) ?? '-'}, PostgreSQL ${pgCpu.toFixed(2)})\n`,
    );
  };
  for (let round = 0; round < rounds; round++) {
    process.stderr.write(`round ${round + 1} of ${rounds}\n`);
    await add('COPY TO STDOUT (psql)', copy);
    for (const [i, chunkRows] of chunkSizes.entries()) {
      for (const [j, mode] of chunkModes.entries()) {
        await add(`tributary (${mode} chunks of ${chunkRows.toLocaleString('en')})`, () =>
          ours(chunkRows, mode, `bench_${round}_${i}_${j}`),
        );
        const baseline = values.baseline;
        if (baseline) {
          await add(`baseline (${mode} chunks of ${chunkRows.toLocaleString('en')})`, () =>
            ours(chunkRows, mode, `bench_${round}_${i}_${j}_base`, baseline),
          );
        }
      }
    }
  }
  const median = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  for (const [contender, rs] of runs) {
    const rss = rs.map((r) => r.peakRssMiB).filter((m): m is number => m !== null);
    const cpus = rs.map((r) => r.cpu).filter((c): c is number => c !== null);
    results.push({
      contender,
      seconds: median(rs.map((r) => r.seconds)),
      ratio: median(rs.map((r) => r.ratio)),
      cpu: cpus.length ? median(cpus) : null,
      pgCpu: median(rs.map((r) => r.pgCpu)),
      wallSeconds: median(rs.map((r) => r.wallSeconds)),
      peakRssMiB: rss.length ? Math.max(...rss) : null,
    });
  }
} finally {
  await cluster.stop();
}

const copySeconds = results[0]!.seconds;
const pad = (s: string, n: number) => s.padStart(n);
process.stdout.write(
  `\nSnapshot of ${rows.toLocaleString('en')} rows, PostgreSQL ${version}, median of ${rounds} round(s), load average ${loadavg()[0]!.toFixed(1)}\n\n` +
    `| contender | seconds | wall s | rows/s | throughput vs COPY | median of rounds' ratios | CPU s | PostgreSQL CPU s | peak RSS MiB |\n| :-- | --: | --: | --: | --: | --: | --: | --: | --: |\n`,
);
for (const r of results) {
  process.stdout.write(
    `| ${r.contender} | ${pad(r.seconds.toFixed(2), 7)} | ${pad(r.wallSeconds.toFixed(2), 6)} | ${pad(Math.round(rows / r.seconds).toLocaleString('en'), 9)} | ${pad(`${(copySeconds / r.seconds).toFixed(2)}×`, 6)} | ${pad(`${r.ratio.toFixed(2)}×`, 6)} | ${r.cpu?.toFixed(2) ?? '-'} | ${r.pgCpu.toFixed(2)} | ${r.peakRssMiB === null ? '-' : r.peakRssMiB.toFixed(0)} |\n`,
  );
}
process.stdout.write(
  "\n`seconds`: ours from the first chunk to the last one durable (log timestamps), COPY its wall time; `wall s` includes process start-up and slot creation; `median of rounds' ratios`: each round's COPY time over the contender's, the median over rounds (a slow spell of the machine weighs on both sides of a ratio); CPU s: user + sys of the contender's process over its whole run (start-up included; psql for COPY); PostgreSQL CPU s: of the server's processes over the same run (medians); peak RSS is the highest of the rounds. Target: throughput at least 0.7× COPY.\n",
);
