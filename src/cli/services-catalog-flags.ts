/**
 * How the read-model commands (`search`, `inventory`, `analytics`) find their services: the
 * configured sinks, plus the demo's services when `tributary up` runs them in this data directory.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { type ServiceEntry, serviceCatalog } from '../sinks/service-catalog.ts';
import { sinksDir } from '../sinks/sink-setup.ts';
import { output } from './stdout-writer.ts';
import { demoSinks } from './up-demo-sinks.ts';

export interface CatalogFlags {
  dataDir?: string;
  config?: string;
  json?: boolean;
}

export function catalogOptions(command: Command): Command {
  return command
    .option('--data-dir <dir>', 'data directory of the pipeline (default .tributary)')
    .option('--config <file>', 'config file (its `sinks`)')
    .option('--json', 'print JSON');
}

export function catalogOf(flags: CatalogFlags): ServiceEntry[] {
  const config = loadConfig({
    flags: { dataDir: flags.dataDir },
    ...(flags.config ? { file: flags.config } : {}),
  });
  const running = Object.entries(demoSinks(config)).filter(([name]) =>
    existsSync(join(sinksDir(config.dataDir), name)),
  );
  return serviceCatalog({ ...config, sinks: { ...Object.fromEntries(running), ...config.sinks } });
}

/** Prints rows as an aligned table (or JSON with --json). */
export function printRows(rows: readonly Record<string, unknown>[], json: boolean | undefined): void {
  if (json) {
    void output.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  if (rows.length === 0) {
    void output.write('(none)\n');
    return;
  }
  const columns = Object.keys(rows[0] ?? {});
  const text = rows.map((r) => columns.map((c) => (r[c] === null || r[c] === undefined ? '' : String(r[c]))));
  const widths = columns.map((c, i) => Math.max(c.length, ...text.map((t) => (t[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  void output.write(`${[line(columns), ...text.map(line)].join('\n')}\n`);
}
