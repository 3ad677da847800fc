import type { Command } from 'commander';
import { startCapture } from '../capture/capture-runner.ts';
import { loadConfig } from '../config/config-loader.ts';
import { createLogger, untilSignal } from './cli-output.ts';
import { type CaptureFlagValues, captureFlags, flagsToSettings } from './shared-flags.ts';

export function registerRun(program: Command): void {
  captureFlags(
    program
      .command('run')
      .description('Capture changes from a PostgreSQL database into the event log until SIGINT/SIGTERM.'),
  ).action(async (flags: CaptureFlagValues) => {
    const config = loadConfig({
      flags: flagsToSettings(flags),
      ...(flags.config ? { file: flags.config } : {}),
    });
    const logger = createLogger(config.logLevel);
    const running = await startCapture(config, { logger });
    const signal = untilSignal();
    const outcome = await Promise.race([
      signal.then((s) => ({ signal: s })),
      running.done.then(() => ({ signal: null })),
    ]);
    logger.info({ signal: outcome.signal }, 'stopping capture');
    await running.stop();
    await running.done;
    logger.info(
      { lsn: running.capture.stats.durableLsn.toString(), records: running.capture.stats.records },
      'capture stopped',
    );
  });
}
