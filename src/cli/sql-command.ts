/**
 * `tributary sql "<query>"`: one SELECT over the lake (bronze.<table>, silver.<table>,
 * gold.<model>), optionally `--as-of` a timestamp or an LSN, printed as a table, JSON or CSV.
 * Output is written through stdout and drained before the command returns (pipes get it all).
 */
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError } from '../core/errors.ts';
import { lakePath } from '../sinks/lake/lake-options.ts';
import { wholeNumber } from './flag-numbers.ts';

export interface LakeFlags {
  lake?: string;
  dataDir?: string;
  config?: string;
}

/** The lake directory: --lake, else the configured lake sink's path, else <dataDir>/lake. */
export function resolveLakeDir(flags: LakeFlags): string {
  if (flags.lake) return lakePath({ path: flags.lake }, '.');
  const config = loadConfig({
    flags: { dataDir: flags.dataDir },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const sink = Object.values(config.sinks ?? {}).find(
    (s) => (s as { kind?: unknown } | null)?.kind === 'lake',
  ) as { path?: string } | undefined;
  return lakePath({ path: sink?.path }, config.dataDir);
}

/** Writes `text` to stdout and resolves once it is handed to the OS (safe before exit). */
export function writeOut(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(text, (error) => (error ? reject(error) : resolve()));
  });
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function csvCell(value: unknown): string {
  const text = cell(value);
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function formatRows(columns: string[], rows: unknown[][], format: string): string {
  if (format === 'json') {
    return `${JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c, r[i] ?? null]))))}\n`;
  }
  if (format === 'csv') {
    return [columns.map(csvCell).join(','), ...rows.map((r) => r.map(csvCell).join(','))].join('\n') + '\n';
  }
  const text = rows.map((r) => r.map(cell));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join(' | ')
      .trimEnd();
  return [line(columns), widths.map((w) => '-'.repeat(w)).join('-+-'), ...text.map(line)].join('\n') + '\n';
}

export function registerSql(program: Command): void {
  program
    .command('sql <query>')
    .description('Run one SELECT over the lake: bronze.<table>, silver.<table>, gold.<model>.')
    .option(
      '--as-of <when>',
      'time travel: an ISO timestamp (snapshot at that time) or an LSN (X/Y or a number)',
    )
    .option('--format <format>', 'table, json or csv', 'table')
    .option('--max-rows <n>', 'most rows printed', '100000')
    .option('--timeout <ms>', 'stop the query after this many milliseconds', '60000')
    .option('--lake <dir>', 'lake directory (default: the lake sink path, or <dataDir>/lake)')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .action(
      async (
        query: string,
        flags: LakeFlags & { asOf?: string; format: string; maxRows: string; timeout: string },
      ) => {
        if (!['table', 'json', 'csv'].includes(flags.format)) {
          throw new ConfigError(`--format ${flags.format}: unknown format`, {
            hint: 'use table, json or csv',
          });
        }
        const maxRows = wholeNumber('--max-rows', flags.maxRows, 1);
        const timeoutMs = wholeNumber(
          '--timeout',
          flags.timeout,
          1,
          'give milliseconds, e.g. --timeout 5000',
        );
        // Loaded here: every other command would otherwise load DuckDB at start.
        const { queryLake } = await import('../sinks/lake/lake-query.ts');
        const result = await queryLake(resolveLakeDir(flags), query, {
          ...(flags.asOf ? { asOf: flags.asOf } : {}),
          maxRows,
          timeoutMs,
        });
        await writeOut(formatRows(result.columns, result.rows, flags.format));
        if (result.truncated) process.stderr.write(`(only the first ${flags.maxRows} rows: --max-rows)\n`);
      },
    );
}
