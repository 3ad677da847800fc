import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import type { SnapshotJobState, SnapshotJobStatus } from '../capture/snapshot-tracker.ts';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError, SourceSetupError } from '../core/errors.ts';
import { quoteIdent } from '../source/postgres/replication-protocol.ts';
import { SnapshotReader } from '../source/postgres/snapshot-reader.ts';
import { formatTableName, parseTableName, type TableName } from '../source/postgres/table-name.ts';

interface SnapshotFlags {
  source?: string;
  where?: string;
  publication?: string;
  signalTable?: string;
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
    .option('--config <file>', 'config file')
    .action(async (tableText: string, flags: SnapshotFlags) => {
      const config = loadConfig({
        flags: {
          'source.url': flags.source,
          'source.publication': flags.publication,
          'snapshot.signalTable': flags.signalTable,
        },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const url = config.source.url;
      if (!url) {
        throw new ConfigError('no source database given', {
          hint: 'pass --source postgres://user:password@host:5432/db or set DATABASE_URL',
        });
      }
      const condition = flags.where?.trim() ? flags.where.trim() : null;
      const out = (line: string) => process.stdout.write(`${line}\n`);
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

export interface SnapshotRequest {
  readonly url: string;
  readonly table: TableName;
  readonly condition: string | null;
  readonly publication: string;
  readonly signalTable: TableName;
  /** Told of what was created or changed on the way. */
  readonly say?: (line: string) => void;
}

/**
 * Validates the table and the condition, creates the signal table (and adds it to the
 * publication) when missing, and inserts an `execute-snapshot` signal. Errors name what is wrong.
 */
export async function requestSnapshot(request: SnapshotRequest): Promise<{ id: string; table: string }> {
  const { url, table, condition, publication, signalTable } = request;
  const say = request.say ?? (() => undefined);
  const reader = new SnapshotReader(url);
  try {
    const described = await reader.describe(table);
    if (condition) await reader.checkCondition(described, condition);
    const client = await reader.connection();
    // The reader's connection returns every value as PostgreSQL text: booleans are 't' or 'f'.
    const pub = await client.query<{ puballtables: string; listed: string; signal: string }>(
      `select p.puballtables,
              exists (select 1 from pg_publication_tables t where t.pubname = p.pubname and t.schemaname = $2 and t.tablename = $3) as listed,
              exists (select 1 from pg_publication_tables t where t.pubname = p.pubname and t.schemaname = $4 and t.tablename = $5) as signal
       from pg_publication p where p.pubname = $1`,
      [publication, table.schema, table.table, signalTable.schema, signalTable.table],
    );
    const row = pub.rows[0];
    const name = formatTableName(table);
    if (row && row.listed !== 't') {
      throw new SourceSetupError(
        'SNAPSHOT_TABLE_NOT_CAPTURED',
        `table ${name} is not in publication ${publication}, so capture would not write its rows`,
        {
          hint: `capture it first (--tables, or ALTER PUBLICATION ${quoteIdent(publication)} ADD TABLE ${name})`,
        },
      );
    }
    const signal = `${quoteIdent(signalTable.schema)}.${quoteIdent(signalTable.table)}`;
    const exists = await client.query('select to_regclass($1) is not null as found', [signal]);
    if (exists.rows[0]?.found !== 't') {
      await client.query(
        `create table if not exists ${signal} (id text primary key, type text not null, data jsonb)`,
      );
      say(`created the signal table ${formatTableName(signalTable)} (id text, type text, data jsonb)`);
    }
    if (row && row.puballtables !== 't' && row.signal !== 't') {
      await client.query(`alter publication ${quoteIdent(publication)} add table ${signal}`);
      say(`added ${formatTableName(signalTable)} to publication ${publication}, so capture sees the signals`);
    }
    const id = randomUUID();
    const data = { 'data-collections': [name], ...(condition ? { 'additional-condition': condition } : {}) };
    await client.query(`insert into ${signal} (id, type, data) values ($1, 'execute-snapshot', $2)`, [
      id,
      JSON.stringify(data),
    ]);
    return { id, table: name };
  } finally {
    await reader.close();
  }
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
  const share = total ? ` (${Math.min(100, Math.floor((job.rows * 100) / total))}%)` : '';
  const parts = [
    `${job.table}${job.condition ? ` where ${job.condition}` : ''} ${job.kind} ${job.state}`,
    `${n(job.rows)}${total ? `/${n(total)}` : ''} rows${share}`,
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

/** The line left on the terminal when the snapshot jobs are over. */
export function snapshotDoneText(jobs: readonly SnapshotJobStatus[]): string {
  const n = (x: number) => x.toLocaleString('en');
  return `snapshot finished: ${jobs.map((j) => `${j.table} ${n(j.rows)} rows${j.state === 'failed' ? ' (failed)' : ''}`).join(', ')}`;
}
