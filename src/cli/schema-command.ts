import type { Command } from 'commander';
import { readSchemaHistory, type SchemaHistoryEntry } from '../capture/schema-history.ts';
import { describeDiff, typeText } from '../capture/schema-history-diff.ts';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError } from '../core/errors.ts';
import { openLogForReading } from './log-commands.ts';
import { output } from './stdout-writer.ts';

interface SchemaFlags {
  dataDir?: string;
  config?: string;
  topicPrefix?: string;
  json?: boolean;
}

export function registerSchema(program: Command): void {
  program
    .command('schema <table>')
    .description(
      'Print the schema history of a table (schema.table): each shape it had in the stream, from which LSN, and what changed.',
    )
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--topic-prefix <prefix>', 'topic prefix of the capture (default tributary)')
    .option('--config <file>', 'config file')
    .option('--json', 'print the history entries as a JSON array')
    .action(async (table: string, flags: SchemaFlags) => {
      const config = loadConfig({
        flags: { dataDir: flags.dataDir, topicPrefix: flags.topicPrefix },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const log = await openLogForReading({
        dataDir: config.dataDir,
        ...(flags.config ? { config: flags.config } : {}),
      });
      try {
        const entries = await readSchemaHistory(log, { topicPrefix: config.topicPrefix, table });
        if (flags.json) {
          void output.write(`${JSON.stringify(entries, null, 2)}\n`);
          return;
        }
        if (entries.length === 0) {
          throw new ConfigError(`no schema history for ${table} in ${config.dataDir}`, {
            hint: 'the history starts with the first change captured from the table; check the name (schema.table) and --topic-prefix',
          });
        }
        void output.write(entries.map(formatEntry).join('\n'));
      } finally {
        await log.close();
      }
    });
}

/** One entry as a header line (LSN, commit time, what changed) and a column table. */
export function formatEntry(entry: SchemaHistoryEntry): string {
  const time = new Date(entry.source.ts_ms).toISOString();
  const what = entry.changes ? describeDiff(entry.changes) : 'first seen';
  const lines = [`${entry.lsn}  ${time}  ${entry.type} ${entry.id}  (${what})`];
  const columns = entry.table.columns;
  const nameWidth = Math.max(6, ...columns.map((c) => c.name.length));
  const typeWidth = Math.max(4, ...columns.map((c) => typeText(c).length));
  lines.push(`  ${'COLUMN'.padEnd(nameWidth)}  ${'TYPE'.padEnd(typeWidth)}  KEY  NULLABLE  ATTNUM`);
  for (const c of columns) {
    const nullable = c.nullable === null ? '?' : c.nullable ? 'yes' : 'no';
    lines.push(
      `  ${c.name.padEnd(nameWidth)}  ${typeText(c).padEnd(typeWidth)}  ${(c.key ? 'yes' : '').padEnd(3)}  ${nullable.padEnd(8)}  ${c.attnum ?? '?'}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
