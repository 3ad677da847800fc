import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import { diagnoseSource } from '../source/postgres/source-doctor.ts';
import { parseTableName } from '../source/postgres/table-name.ts';
import { withRunningSource } from './snapshot-command.ts';
import { output } from './stdout-writer.ts';

interface DoctorFlags {
  source?: string;
  slot?: string;
  publication?: string;
  tables?: string;
  dataDir?: string;
  config?: string;
  json?: boolean;
}

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Check that a PostgreSQL database is ready for capture, and print the fix of each problem.')
    .option('--source <url>', 'PostgreSQL URL to check (env DATABASE_URL)')
    .option('--slot <name>', 'replication slot (default tributary)')
    .option('--publication <name>', 'publication (default tributary)')
    .option('--tables <list>', 'tables to capture, e.g. public.orders,public.order_items (default all)')
    .option(
      '--data-dir <dir>',
      'without --source: the data directory of the running `run`/`up` (default .tributary)',
    )
    .option('--config <file>', 'config file (default ./tributary.config.json if present)')
    .option('--json', 'print JSON')
    .action(async (flags: DoctorFlags) => {
      let config = loadConfig({
        flags: {
          dataDir: flags.dataDir,
          'source.url': flags.source,
          'source.slot': flags.slot,
          'source.publication': flags.publication,
          'source.tables': flags.tables,
        },
        ...(flags.config ? { file: flags.config } : {}),
      });
      // No source given: the running pipeline's own (its slot and publication unless given).
      if (!config.source.url) {
        config = withRunningSource(config, flags.publication, undefined);
        if (flags.slot) config = { ...config, source: { ...config.source, slot: flags.slot } };
      }
      const url = config.source.url!;
      const results = await diagnoseSource({
        url,
        slot: config.source.slot,
        publication: config.source.publication,
        tables: config.source.tables.map(parseTableName),
      });
      const failed = results.some((r) => r.status === 'fail');
      if (flags.json) {
        void output.write(
          `${JSON.stringify({ source: describeTarget(url), ok: !failed, checks: results }, null, 2)}\n`,
        );
      } else {
        void output.write(`checking ${describeTarget(url)}\n`);
        for (const r of results) {
          void output.write(`${r.status.toUpperCase().padEnd(4)} ${r.check.padEnd(22)} ${r.message}\n`);
          if (r.fix && r.status !== 'ok') void output.write(`     ${''.padEnd(22)} fix: ${r.fix}\n`);
        }
        const count = (s: string) => results.filter((r) => r.status === s).length;
        void output.write(`${count('ok')} ok, ${count('warn')} warnings, ${count('fail')} failures\n`);
      }
      process.exitCode = failed ? 1 : 0;
    });
}
