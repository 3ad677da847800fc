import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { warnSecretsInArgv } from './argv-secrets.ts';
import { reportError } from './cli-output.ts';
import { registerConsumers } from './consumers-command.ts';
import { registerConsumersNew } from './consumers-new-command.ts';
import { registerConsumersRun } from './consumers-run-command.ts';
import { registerDlq } from './dlq-command.ts';
import { registerDoctor } from './doctor-command.ts';
import { registerLake } from './lake-command.ts';
import { registerRead, registerTopics } from './log-commands.ts';
import { registerLogs } from './logs-command.ts';
import { registerRun } from './run-command.ts';
import { registerSchema } from './schema-command.ts';
import { registerSearch } from './search-command.ts';
import { registerServices } from './services-commands.ts';
import { registerSnapshot } from './snapshot-command.ts';
import { registerSql } from './sql-command.ts';
import { registerStatus } from './status-command.ts';
import { flushOutput } from './stdout-writer.ts';
import { registerUp } from './up-command.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

const program = new Command('tributary')
  .description('Change data capture from PostgreSQL into a durable log.')
  .version(version)
  .showHelpAfterError()
  .exitOverride();

registerUp(program);
registerRun(program);
registerTopics(program);
registerRead(program);
registerStatus(program);
registerSnapshot(program);
registerSchema(program);
registerDoctor(program);
registerDlq(program);
registerConsumers(program);
registerLogs(program);
registerSearch(program);
registerServices(program);
registerSql(program);
registerLake(program);
// After any other `consumers` registration: it adds `new` to that group.
registerConsumersNew(program);
registerConsumersRun(program);

warnSecretsInArgv(process.argv.slice(2));
try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = error instanceof CommanderError ? error.exitCode : reportError(error);
}
// Commands close what they open; exiting here also ends a command whose error left a handle. The
// output is flushed first: a pipe's reader gets every line (process.exit drops queued writes).
await flushOutput();
process.exit(process.exitCode ?? 0);
