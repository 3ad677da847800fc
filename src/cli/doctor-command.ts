import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError } from '../core/errors.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import { diagnoseSource } from '../source/postgres/source-doctor.ts';
import { parseTableName } from '../source/postgres/table-name.ts';

interface DoctorFlags {
  source?: string;
  slot?: string;
  publication?: string;
  tables?: string;
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
    .option('--config <file>', 'config file (default ./tributary.config.json if present)')
    .option('--json', 'print JSON')
    .action(async (flags: DoctorFlags) => {
      const config = loadConfig({
        flags: {
          'source.url': flags.source,
          'source.slot': flags.slot,
          'source.publication': flags.publication,
          'source.tables': flags.tables,
        },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const url = config.source.url;
      if (!url) {
        throw new ConfigError('no source database given', {
          hint: 'pass --source postgres://user:password@host:5432/db or set DATABASE_URL',
        });
      }
      const results = await diagnoseSource({
        url,
        slot: config.source.slot,
        publication: config.source.publication,
        tables: config.source.tables.map(parseTableName),
      });
      const failed = results.some((r) => r.status === 'fail');
      if (flags.json) {
        process.stdout.write(
          `${JSON.stringify({ source: describeTarget(url), ok: !failed, checks: results }, null, 2)}\n`,
        );
      } else {
        process.stdout.write(`checking ${describeTarget(url)}\n`);
        for (const r of results) {
          process.stdout.write(`${r.status.toUpperCase().padEnd(4)} ${r.check.padEnd(22)} ${r.message}\n`);
          if (r.fix && r.status !== 'ok') process.stdout.write(`     ${''.padEnd(22)} fix: ${r.fix}\n`);
        }
        const count = (s: string) => results.filter((r) => r.status === s).length;
        process.stdout.write(`${count('ok')} ok, ${count('warn')} warnings, ${count('fail')} failures\n`);
      }
      process.exitCode = failed ? 1 : 0;
    });
}
