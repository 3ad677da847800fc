/**
 * Snapshot benchmark: `tributary run --snapshot-mode initial_only` (chunked keyset reads between
 * watermarks, encoded to Debezium records in the durable embedded log) against
 * `psql -c "COPY (select * from t) TO STDOUT"` of the same table into /dev/null, in one run on a
 * fresh throwaway cluster. See bench/README.md.
 *
 *   npm run bench:snapshot -- [--rows 1000000] [--chunk-rows 2500[,5000...]] [--parallel 2] [--pg 15|18]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { pgBinDir, startCluster } from '../test/support/pg-cluster.ts';

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    'chunk-rows': { type: 'string', default: '2500' },
    parallel: { type: 'string', default: '2' },
    pg: { type: 'string', default: '15' },
  },
});
const rows = Number(values.rows);
const chunkSizes = values['chunk-rows'].split(',').map(Number);
const version = Number(values.pg);
if (!Number.isInteger(rows) || rows < 1)
  throw new Error(`--rows must be a positive integer, got ${values.rows}`);
if (chunkSizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--chunk-rows: positive integers');

const BIN = fileURLToPath(new URL('../bin/tributary.js', import.meta.url));

interface Result {
  readonly contender: string;
  readonly seconds: number;
  readonly wallSeconds: number;
  readonly peakRssMiB: number | null;
}

/** Runs a command under GNU time; returns wall seconds, peak RSS and its stderr. */
function timed(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd?: string,
): Promise<{ wall: number; rssMiB: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn('/usr/bin/time', ['-f', 'RSS_KB=%M', command, ...args], {
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
      resolve({ wall, rssMiB: rss ? Number(rss[1]) / 1024 : null, stderr });
    });
  });
}

const cluster = await startCluster({ version });
const url = cluster.url();
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
    timed(psql, [url, '-X', '-q', '-c', 'COPY (select * from bench_snapshot) TO STDOUT']).then((r) => r.wall);
  await copy(); // warm-up: the table in shared buffers / page cache for every contender
  const copySeconds = await copy();
  results.push({
    contender: 'COPY TO STDOUT (psql)',
    seconds: copySeconds,
    wallSeconds: copySeconds,
    peakRssMiB: null,
  });

  for (const [i, chunkRows] of chunkSizes.entries()) {
    const dataDir = mkdtempSync(join(tmpdir(), 'tributary-bench-snapshot-'));
    try {
      const run = await timed(
        process.execPath,
        [
          BIN,
          'run',
          '--source',
          url,
          '--data-dir',
          dataDir,
          '--slot',
          `bench_${i}`,
          '--snapshot-mode',
          'initial_only',
        ],
        {
          TRIBUTARY_SNAPSHOT_CHUNK_ROWS: String(chunkRows),
          TRIBUTARY_SNAPSHOT_MAX_PARALLEL_CHUNKS: values.parallel,
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
      results.push({
        contender: `tributary (chunkRows ${chunkRows.toLocaleString('en')})`,
        seconds,
        wallSeconds: run.wall,
        peakRssMiB: run.rssMiB,
      });
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  }
} finally {
  await cluster.stop();
}

const copySeconds = results[0]!.seconds;
const pad = (s: string, n: number) => s.padStart(n);
process.stdout.write(
  `\nSnapshot of ${rows.toLocaleString('en')} rows, PostgreSQL ${version}, load average ${loadavg()[0]!.toFixed(1)}\n\n` +
    `| contender | seconds | wall s | rows/s | throughput vs COPY | peak RSS MiB |\n| :-- | --: | --: | --: | --: | --: |\n`,
);
for (const r of results) {
  process.stdout.write(
    `| ${r.contender} | ${pad(r.seconds.toFixed(2), 7)} | ${pad(r.wallSeconds.toFixed(2), 6)} | ${pad(Math.round(rows / r.seconds).toLocaleString('en'), 9)} | ${pad(`${(copySeconds / r.seconds).toFixed(2)}×`, 6)} | ${r.peakRssMiB === null ? '-' : r.peakRssMiB.toFixed(0)} |\n`,
  );
}
process.stdout.write(
  '\n`seconds`: ours from the first chunk to the last one durable (log timestamps), COPY its wall time; `wall s` includes process start-up and slot creation. Target: throughput at least 0.7× COPY.\n',
);
