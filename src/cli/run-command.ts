import type { Command } from 'commander';
import { keepCapturing, startCapture } from '../capture/capture-runner.ts';
import { loadConfig } from '../config/config-loader.ts';
import { startConsumers } from '../consumers/supervisor-config.ts';
import { attachConsumers, captureDeps, startControlPlaneFromConfig } from '../server/control-plane.ts';
import { createLogger, untilSignal } from './cli-output.ts';
import { ProgressLine } from './progress-line.ts';
import { type CaptureFlagValues, captureFlags, flagsToSettings } from './shared-flags.ts';
import { snapshotDoneText, snapshotProgressText } from './snapshot-command.ts';

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
    const out = (line: string) => process.stderr.write(`${line}\n`);
    const server = await startControlPlaneFromConfig(config, logger, out);
    if (server) out(`dashboard: ${server.url} (API ${server.url}api, metrics ${server.url}metrics)`);
    const options = { logger, ...(server ? { observer: server.metrics.captureObserver } : {}) };
    let running: Awaited<ReturnType<typeof startCapture>>;
    try {
      running = await startCapture(config, options);
    } catch (error) {
      await server?.stop();
      throw error;
    }
    server?.attach(captureDeps(running, config));
    let consumers: Awaited<ReturnType<typeof startConsumers>>;
    try {
      consumers = await startConsumers(config, logger, out);
    } catch (error) {
      await server?.stop();
      await running.stop();
      throw error;
    }
    if (server) attachConsumers(server, consumers, config);
    // Snapshot progress on a terminal (the JSON log has the same progress in `tributary status`).
    const progress = new ProgressLine(process.stderr);
    let shown = false;
    const progressTimer = process.stderr.isTTY
      ? setInterval(() => {
          const jobs = running.snapshots.status();
          const text = snapshotProgressText(jobs);
          if (text) progress.update(text);
          else if (shown) {
            progress.update(snapshotDoneText(jobs));
            progress.done();
          }
          shown = text !== null;
        }, 500)
      : undefined;
    let received: string | null = null;
    const signal = untilSignal().then((s) => {
      received = s;
    });
    running = await keepCapturing(running, config, options, signal, (restarted) => {
      running = restarted;
      server?.attach(captureDeps(restarted, config));
    }).catch(async (error: unknown) => {
      // The capture failed: the replicas still drain before the error is reported.
      await consumers.stop();
      throw error;
    });
    clearInterval(progressTimer);
    if (shown) progress.done();
    // Consumers first: their replicas drain and commit, then the capture makes its last batch durable.
    await consumers.stop();
    logger.info({ signal: received }, 'stopping capture');
    await server?.stop();
    await running.stop();
    await running.done;
    logger.info(
      { lsn: running.capture.stats.durableLsn.toString(), records: running.capture.stats.records },
      'capture stopped',
    );
  });
}
