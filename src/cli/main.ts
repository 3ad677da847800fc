import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { reportError } from './cli-output.ts';
import { registerDoctor } from './doctor-command.ts';
import { registerRead, registerTopics } from './log-commands.ts';
import { registerRun } from './run-command.ts';
import { registerStatus } from './status-command.ts';
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
registerDoctor(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = error instanceof CommanderError ? error.exitCode : reportError(error);
}
// Commands close what they open; exiting here also ends a command whose error left a handle.
process.exit(process.exitCode ?? 0);
