import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Capture } from '../../src/capture/capture.ts';
import type { EventLog } from '../../src/core/event-log.ts';
import { formatLsn, type Lsn } from '../../src/core/lsn.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { cpuSeconds, peakRssBytes } from './process-stats.ts';
import { CLIENT_BIN } from './workloads.ts';

export const CONTENDERS = ['pg_recvlogical', 'pg-logical-replication', 'tributary'] as const;
export type ContenderName = (typeof CONTENDERS)[number];

/** What one contender catching up on one slot needs to know. */
export interface CatchUpTarget {
  readonly url: string;
  readonly slot: string;
  readonly publication: string;
  readonly endLsn: Lsn;
  /** The workload's tables (schema `public`): ours counts the records of their topics only. */
  readonly tables: readonly string[];
  /** Change events the contender must deliver (workload plus the marker row, where it is counted). */
  readonly expectedChanges: number;
  readonly timeoutMs: number;
}

export interface ContenderResult {
  readonly wallSeconds: number;
  readonly cpuSeconds: number | null;
  readonly peakRssBytes: number | null;
  /** Change events the contender reports having decoded or stored; null when it cannot say. */
  readonly changes: number | null;
  /** From spawn until streaming began (tributary only: the CLI's start-up, tsx compile included). */
  readonly startupSeconds: number | null;
  readonly note?: string;
}

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const POLL_MS = 20;
/** Ours writes each table's records to `<prefix>.public.<table>`; its other topics are not the workload's. */
const TOPIC_PREFIX = 'bench';

/**
 * Records of the workload's tables, from the log's per-topic counts: the schema-history records
 * (one per table), logical messages and anything else ours writes beside the rows are not counted.
 */
export function workloadRecords(
  topics: readonly { readonly topic: string; readonly records: number }[],
  tables: readonly string[],
): number {
  const wanted = new Set(tables.map((table) => `${TOPIC_PREFIX}.public.${table}`));
  return topics.reduce((sum, t) => sum + (wanted.has(t.topic) ? t.records : 0), 0);
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      resolve({ code: child.exitCode, signal: child.signalCode });
      return;
    }
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

function collect(child: ChildProcess): { stdout: () => string; stderr: () => string } {
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  child.stderr?.on('data', (d) => {
    stderr = (stderr + d).slice(-20_000);
  });
  return { stdout: () => stdout, stderr: () => stderr };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string, child: ChildProcess): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${what} did not reach the end LSN within ${ms / 1000} s`));
      }, ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The raw limit: PostgreSQL's own client, writing the pgoutput stream to /dev/null. */
export async function runPgRecvLogical(target: CatchUpTarget): Promise<ContenderResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-recvlogical-'));
  const timeFile = join(dir, 'time.txt');
  try {
    const started = performance.now();
    const child = spawn(
      '/usr/bin/time',
      [
        '-v',
        '-o',
        timeFile,
        join(CLIENT_BIN, 'pg_recvlogical'),
        '-d',
        target.url,
        '--slot',
        target.slot,
        '--start',
        '--no-loop',
        '-o',
        'proto_version=1',
        '-o',
        `publication_names=${target.publication}`,
        '-f',
        '/dev/null',
        `--endpos=${formatLsn(target.endLsn)}`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const output = collect(child);
    const { code } = await withTimeout(exited(child), target.timeoutMs, 'pg_recvlogical', child);
    const wallSeconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}: ${output.stderr()}`);
    const report = readFileSync(timeFile, 'utf8');
    const rssKb = /Maximum resident set size \(kbytes\): (\d+)/.exec(report)?.[1];
    const user = /User time \(seconds\): ([\d.]+)/.exec(report)?.[1];
    const system = /System time \(seconds\): ([\d.]+)/.exec(report)?.[1];
    return {
      wallSeconds,
      cpuSeconds: user && system ? Number(user) + Number(system) : null,
      peakRssBytes: rssKb ? Number(rssKb) * 1024 : null,
      changes: null,
      startupSeconds: null,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The `pg-logical-replication` library, decoding only, in its own process. */
export async function runLibrary(target: CatchUpTarget): Promise<ContenderResult> {
  const started = performance.now();
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(ROOT, 'bench/capture/library-child.ts'),
      target.url,
      target.slot,
      target.publication,
      formatLsn(target.endLsn),
    ],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const output = collect(child);
  const { code } = await withTimeout(exited(child), target.timeoutMs, 'pg-logical-replication', child);
  const wallSeconds = (performance.now() - started) / 1000;
  if (code !== 0) throw new Error(`pg-logical-replication child exited with ${code}: ${output.stderr()}`);
  const report = JSON.parse(output.stdout().trim()) as {
    changes: number;
    seconds: number;
    cpuSeconds: number;
    peakRssBytes: number | null;
  };
  return {
    wallSeconds,
    cpuSeconds: report.cpuSeconds,
    peakRssBytes: report.peakRssBytes,
    changes: report.changes,
    startupSeconds: wallSeconds - report.seconds,
  };
}

export interface OursOptions {
  /** Directory for a `--cpu-prof` profile of the capture process; none when undefined. */
  readonly cpuProfileDir?: string | undefined;
  /** Settings by environment variable, e.g. `TRIBUTARY_DURABLE=false` for a diagnostic run. */
  readonly env?: Readonly<Record<string, string>>;
  /** Capture into a NATS JetStream stream instead of the embedded log (`--log nats://...`). */
  readonly nats?: { readonly servers: readonly string[]; readonly name: string; readonly replicas: number };
}

/** The log ours writes, opened read-only to poll its checkpoint; null until it exists. */
async function openOursLog(dataDir: string, options: OursOptions): Promise<EventLog | null> {
  if (options.nats) {
    const log = await NatsEventLog.open({
      servers: options.nats.servers,
      name: options.nats.name,
      readonly: true,
    });
    if (log.exists) return log;
    await log.close();
    return null;
  }
  if (!existsSync(join(dataDir, 'log.sqlite'))) return null;
  return EmbeddedEventLog.open({ dataDir, readonly: true });
}

async function oursTopicStats(log: EventLog): Promise<readonly { topic: string; records: number }[]> {
  if (log instanceof NatsEventLog) return log.refreshTopicStats();
  return (log as EmbeddedEventLog).topicStats();
}

/** The environment without our settings, so that only the flags (and `options.env`) configure the run. */
function cleanEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('TRIBUTARY_') && name !== 'DATABASE_URL') env[name] = value;
  }
  // The working directory is not the repository's: point tsx at our tsconfig.
  return { ...env, TSX_TSCONFIG_PATH: join(ROOT, 'tsconfig.json'), ...extra };
}

/**
 * Ours: the real CLI with its durable log. Done when the checkpoint stored with the records (what
 * a restart would resume from) reaches the end LSN; polled read-only every 20 ms.
 */
export async function runOurs(target: CatchUpTarget, options: OursOptions = {}): Promise<ContenderResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-tributary-'));
  const checkpointName = `postgres:${target.slot}`;
  let child: ChildProcess | undefined;
  let log: EventLog | undefined;
  const nats = options.nats;
  const logArgs = nats
    ? ['--log', `nats://${nats.servers.map((u) => u.replace(/^nats:\/\//, '')).join(',')}`]
    : [];
  const logEnv: Record<string, string> = nats
    ? { TRIBUTARY_NATS_LOG_NAME: nats.name, TRIBUTARY_NATS_REPLICAS: String(nats.replicas) }
    : {};
  try {
    const started = performance.now();
    const nodeArgs = options.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir] : [];
    child = spawn(
      process.execPath,
      [
        ...nodeArgs,
        join(ROOT, 'bin/tributary.js'),
        'run',
        '--source',
        target.url,
        '--data-dir',
        dataDir,
        '--slot',
        target.slot,
        '--publication',
        target.publication,
        '--topic-prefix',
        TOPIC_PREFIX,
        // Streaming only, as the references: the slots are created before the workload, and the
        // tables' earlier rows (pgbench -i) are not part of it. The default (initial) would snapshot them.
        '--snapshot-mode',
        'never',
        ...logArgs,
      ],
      // cwd: the data dir, so that no tributary.config.json of the working tree applies.
      { cwd: dataDir, env: cleanEnv({ ...logEnv, ...options.env }), stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const running = child;
    const pid = child.pid!;
    const output = collect(child);
    let startupSeconds: number | null = null;
    child.stderr?.on('data', () => {
      if (startupSeconds === null && output.stderr().includes('replication started')) {
        startupSeconds = (performance.now() - started) / 1000;
      }
    });
    const exit = exited(child);
    let peak: number | null = null;
    let cpu: number | null = null;
    const reached = (async () => {
      for (;;) {
        if (running.exitCode !== null || running.signalCode !== null) {
          throw new Error(
            `tributary exited early (${running.exitCode ?? running.signalCode}): ${output.stderr()}`,
          );
        }
        peak = peakRssBytes(pid) ?? peak;
        cpu = cpuSeconds(pid) ?? cpu;
        if (!log) {
          try {
            log = (await openOursLog(dataDir, options)) ?? undefined;
          } catch {
            // The writer may still be creating the schema; try again at the next poll.
          }
        }
        const position = log ? await Capture.position(log, checkpointName).catch(() => null) : null;
        if (position && position.lsn >= target.endLsn) return (performance.now() - started) / 1000;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    })();
    const wallSeconds = await withTimeout(reached, target.timeoutMs, 'tributary', child);
    peak = peakRssBytes(pid) ?? peak;
    cpu = cpuSeconds(pid) ?? cpu;
    child.kill('SIGTERM');
    const { code, signal } = await withTimeout(exit, 60_000, 'tributary (stopping)', child);
    if (code !== 0)
      throw new Error(`tributary exited with ${code ?? signal} after SIGTERM: ${output.stderr()}`);
    const changes = log ? workloadRecords(await oursTopicStats(log), target.tables) : null;
    return { wallSeconds, cpuSeconds: cpu, peakRssBytes: peak, changes, startupSeconds };
  } finally {
    await log?.close();
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}
