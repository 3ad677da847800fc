import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { consumerLogFile, followLog, tailLines } from '../consumers/consumer-logs.ts';
import { validateConsumerName } from '../consumers/discovery.ts';
import { TributaryError } from '../core/errors.ts';
import { untilSignal } from './cli-output.ts';
import { output } from './stdout-writer.ts';

/** `tributary logs <name> [-f] [-n lines]`: a consumer's structured log (JSON lines). */
export function registerLogs(program: Command): void {
  program
    .command('logs <name>')
    .description(
      "Print a consumer's log (JSON lines from its replicas and the supervisor, in <data-dir>/logs/<name>.log, rotated by size).",
    )
    .option('-n, --lines <n>', 'lines to print from the end', '100')
    .option('-f, --follow', 'keep printing new lines (across rotations) until Ctrl-C')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .action(
      async (name: string, flags: { lines: string; follow?: boolean; dataDir?: string; config?: string }) => {
        validateConsumerName(name);
        const count = Number(flags.lines);
        if (!Number.isInteger(count) || count < 0) {
          throw new TributaryError(
            'CONFIG_INVALID',
            `--lines must be a whole number ≥ 0, not ${flags.lines}`,
          );
        }
        const config = loadConfig({
          flags: { dataDir: flags.dataDir },
          ...(flags.config ? { file: flags.config } : {}),
        });
        const file = consumerLogFile(config.dataDir, name);
        if (!existsSync(file) && !flags.follow) {
          throw new TributaryError(
            'CONSUMER_LOG_NOT_FOUND',
            `no log for consumer ${name} in ${config.dataDir}`,
            {
              hint: 'check the consumer name (`tributary consumers`) and --data-dir',
            },
          );
        }
        for (const line of tailLines(file, count)) await output.line(line);
        if (!flags.follow) return;
        const stop = new AbortController();
        void untilSignal().then(() => stop.abort());
        await followLog(file, (line) => void output.line(line), stop.signal);
      },
    );
}
