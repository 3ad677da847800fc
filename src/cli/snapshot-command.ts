import type { Command } from 'commander';
import type { SnapshotJobState, SnapshotJobStatus } from '../capture/snapshot-tracker.ts';
import { loadConfig } from '../config/config-loader.ts';
import type { TributaryConfig } from '../config/config-schema.ts';
import { requestSnapshot } from '../source/postgres/snapshot-signal.ts';
import { formatTableName, parseTableName } from '../source/postgres/table-name.ts';
import { runningPipelineSource } from './data-dir-owner.ts';
import { output } from './stdout-writer.ts';

interface SnapshotFlags {
  source?: string;
  where?: string;
  publication?: string;
  signalTable?: string;
  dataDir?: string;
  config?: string;
}

export function registerSnapshot(program: Command): void {
  program
    .command('snapshot <table>')
    .description(
      'Request a backfill (online re-snapshot) of a table: inserts an execute-snapshot signal into the signal table, which a running capture picks up at once (a stopped one at its next start). No locks; streaming goes on.',
    )
    .option(
      '--where <condition>',
      'only the rows matching this SQL condition, e.g. "created_at > now() - interval \'1 day\'"',
    )
    .option('--source <url>', 'PostgreSQL URL of the captured database (env DATABASE_URL)')
    .option('--publication <name>', 'publication of the capture (default tributary)')
    .option('--signal-table <table>', 'signal table (default public.tributary_signal)')
    .option(
      '--data-dir <dir>',
      'without --source: the data directory of the running `run`/`up` (default .tributary)',
    )
    .option('--config <file>', 'config file')
    .action(async (tableText: string, flags: SnapshotFlags) => {
      let config = loadConfig({
        flags: {
          dataDir: flags.dataDir,
          'source.url': flags.source,
          'source.publication': flags.publication,
          'snapshot.signalTable': flags.signalTable,
        },
        ...(flags.config ? { file: flags.config } : {}),
      });
      // No source given: the running pipeline's own, with its publication and signal table.
      if (!config.source.url) config = withRunningSource(config, flags.publication, flags.signalTable);
      const url = config.source.url!;
      const condition = flags.where?.trim() ? flags.where.trim() : null;
      const out = (line: string) => void output.write(`${line}\n`);
      const result = await requestSnapshot({
        url,
        table: parseTableName(tableText),
        condition,
        publication: config.source.publication,
        signalTable: parseTableName(config.snapshot.signalTable),
        say: out,
      });
      out(
        `requested a snapshot of ${result.table}${condition ? ` where ${condition}` : ''} (signal ${result.id}): a running capture starts it now, a stopped one at its next start; follow it with: tributary status`,
      );
    });
}

/** `config` with the source of the pipeline running on its data directory (explicit flags win). */
export function withRunningSource(
  config: TributaryConfig,
  publication: string | undefined,
  signalTable: string | undefined,
): TributaryConfig {
  const owner = runningPipelineSource(config.dataDir);
  return {
    ...config,
    source: {
      ...config.source,
      url: owner.source,
      slot: owner.slot ?? config.source.slot,
      publication: publication ?? owner.publication ?? config.source.publication,
    },
    snapshot: {
      ...config.snapshot,
      signalTable: signalTable ?? owner.signalTable ?? config.snapshot.signalTable,
    },
  };
}

/** Snapshot jobs for `status`: a running capture's own view, else what the stored position still owes. */
export function snapshotReport(
  published: readonly SnapshotJobStatus[],
  stored: readonly SnapshotJobState[],
  running: boolean,
): SnapshotJobStatus[] {
  if (running) return [...published];
  const finished = published.filter((j) => j.state === 'done' || j.state === 'failed');
  const unfinished: SnapshotJobStatus[] = stored.map((job) => ({
    table: formatTableName({ schema: job.schema, table: job.table }),
    kind: job.kind,
    condition: job.condition,
    state: 'queued',
    rows: job.rows,
    totalRows: published.find((p) => p.table === formatTableName(job))?.totalRows ?? null,
    rowsPerSecond: 0,
    etaSeconds: null,
  }));
  return [...finished, ...unfinished];
}

/** `public.orders initial running 12,000/50,000 rows (24%) · 8,000 rows/s · ETA 5s` */
export function snapshotLine(job: SnapshotJobStatus): string {
  const n = (x: number) => x.toLocaleString('en');
  const total = job.totalRows && job.totalRows > 0 ? job.totalRows : null;
  // While a chunk is between its watermarks its rows are read but not yet in the log.
  const rows = job.state === 'running' ? Math.max(job.rows, job.rowsRead ?? 0) : job.rows;
  const share = total ? ` (${Math.min(100, Math.floor((rows * 100) / total))}%)` : '';
  const parts = [
    `${job.table}${job.condition ? ` where ${job.condition}` : ''} ${job.kind} ${job.state}`,
    `${n(rows)}${total ? `/${n(total)}` : ''} rows${share}`,
  ];
  if (job.state === 'running') {
    parts.push(`${n(job.rowsPerSecond)} rows/s`);
    if (job.etaSeconds !== null) parts.push(`ETA ${formatDuration(job.etaSeconds)}`);
  }
  if (job.error) parts.push(job.error);
  return parts.join(' · ');
}

function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}

/** One terminal line for the running snapshot jobs (`run`, `up`); null when none is running. */
export function snapshotProgressText(jobs: readonly SnapshotJobStatus[]): string | null {
  const running = jobs.filter((j) => j.state === 'running' || j.state === 'queued');
  if (running.length === 0) return null;
  return `snapshot ${running.map(snapshotLine).join(' | ')}`;
}

/**
 * What `run` and `up` show of the snapshots: the line to redraw while jobs run, and, once, the
 * line saying they finished (with each table's rows) when the last one ends.
 */
export class SnapshotProgress {
  #shown = false;

  next(jobs: readonly SnapshotJobStatus[]): { running: string | null; finished: string | null } {
    const running = snapshotProgressText(jobs);
    const finished = running === null && this.#shown ? snapshotDoneText(jobs) : null;
    this.#shown = running !== null;
    return { running, finished };
  }
}

/** The line left on the terminal when the snapshot jobs are over. */
export function snapshotDoneText(jobs: readonly SnapshotJobStatus[]): string {
  const n = (x: number) => x.toLocaleString('en');
  return `snapshot finished: ${jobs.map((j) => `${j.table} ${n(j.rows)} rows${j.state === 'failed' ? ' (failed)' : ''}`).join(', ')}`;
}
