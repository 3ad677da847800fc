import type { Command } from 'commander';
import { keepCapturing, startCapture } from '../capture/capture-runner.ts';
import {
  STANDBY_RECONNECT_MAX_DELAY_MS,
  STANDBY_WAL_SENDER_TIMEOUT_MS,
  type StandbyState,
  waitAsStandby,
} from '../capture/capture-standby.ts';
import { loadConfig } from '../config/config-loader.ts';
import { startConsumers } from '../consumers/supervisor-config.ts';
import { ConfigError } from '../core/errors.ts';
import { isNatsLog } from '../log/open-event-log.ts';
import {
  activeRole,
  attachConsumers,
  captureDeps,
  DEFAULT_HTTP_PORT,
  NEXT_HTTP_PORTS,
  standbyRole,
  startControlPlaneFromConfig,
} from '../server/control-plane.ts';
import { prepareSinks } from '../sinks/sink-setup.ts';
import { createLogger, untilSignal } from './cli-output.ts';
import { claimDataDir, pipelineDetails } from './data-dir-owner.ts';
import { ProgressLine } from './progress-line.ts';
import { type CaptureFlagValues, captureFlags, flagsToSettings } from './shared-flags.ts';
import { SnapshotProgress } from './snapshot-command.ts';

export function registerRun(program: Command): void {
  captureFlags(
    program
      .command('run')
      .description('Capture changes from a PostgreSQL database into the event log until SIGINT/SIGTERM.')
      .option(
        '--standby',
        'wait while another `run` captures the same slot into the same NATS log, and take over when its slot is released (env TRIBUTARY_STANDBY, config capture.standby; docs/nats.md, "Capture active/standby")',
      ),
  ).action(async (flags: CaptureFlagValues & { standby?: boolean }) => {
    const config = loadConfig({
      // The flag only turns standby on; without it, capture.standby / TRIBUTARY_STANDBY decide.
      flags: { ...flagsToSettings(flags), 'capture.standby': flags.standby || undefined },
      ...(flags.config ? { file: flags.config } : {}),
    });
    const standby = config.capture.standby;
    if (standby && !config.source.url) {
      throw new ConfigError('--standby needs the source database to watch its replication slot', {
        hint: 'pass --source-file <file> or --source postgres://..., or set DATABASE_URL',
      });
    }
    if (standby && !isNatsLog(config)) {
      throw new ConfigError('--standby needs a log both captures share', {
        hint: 'pass --log nats://host:port,... (log.url): the embedded log lives in one data directory, which has one owner',
      });
    }
    // Before anything touches the slot or starts consumers: a second owner is refused here.
    const owner = claimDataDir(config.dataDir, 'run');
    const logger = createLogger(config.logLevel);
    const out = (line: string) => process.stderr.write(`${line}\n`);
    const extraConsumerDirs = await prepareSinks(config, out);
    // On the default port a taken port moves on to the next free one; an explicit port stays.
    const nextPorts = config.server.port === DEFAULT_HTTP_PORT ? NEXT_HTTP_PORTS : 0;
    const server = await startControlPlaneFromConfig(config, logger, out, nextPorts);
    if (server) out(`dashboard: ${server.url} (API ${server.url}api, metrics ${server.url}metrics)`);
    owner.publish(pipelineDetails(config, server?.url));
    let received: string | null = null;
    const signal = untilSignal().then((s) => {
      received = s;
    });
    if (standby) {
      const abort = new AbortController();
      void signal.then(() => abort.abort());
      let state: StandbyState | undefined;
      server?.attach({ role: () => standbyRole(state) });
      out(`standby: waiting for slot ${config.source.slot} to be released by the active capture`);
      const waited = Date.now();
      if (!(await waitAsStandby({ config, logger, signal: abort.signal, onState: (s) => (state = s) }))) {
        await server?.stop();
        owner.release();
        return;
      }
      out(
        `standby: slot ${config.source.slot} released after ${Date.now() - waited} ms of waiting; taking over`,
      );
    }
    const options = {
      logger,
      ...(server ? { observer: server.metrics.captureObserver } : {}),
      // A leader cut off from the database loses its slot after this, and a standby takes over.
      ...(standby
        ? {
            walSenderTimeoutMs: STANDBY_WAL_SENDER_TIMEOUT_MS,
            reconnectMaxDelayMs: STANDBY_RECONNECT_MAX_DELAY_MS,
          }
        : {}),
    };
    let running: Awaited<ReturnType<typeof startCapture>>;
    try {
      running = await startCapture(config, options);
    } catch (error) {
      await server?.stop();
      throw error;
    }
    server?.attach({ ...captureDeps(running, config), role: () => activeRole(running) });
    let consumers: Awaited<ReturnType<typeof startConsumers>>;
    try {
      consumers = await startConsumers(config, logger, out, { extraConsumerDirs });
    } catch (error) {
      await server?.stop();
      await running.stop();
      throw error;
    }
    if (server) attachConsumers(server, consumers, config);
    // Snapshot progress on a terminal (the JSON log has the same progress in `tributary status`).
    const progress = new ProgressLine(process.stderr);
    const snapshots = new SnapshotProgress();
    let shown = false;
    const progressTimer = process.stderr.isTTY
      ? setInterval(() => {
          const { running: text, finished } = snapshots.next(running.snapshots.status());
          if (text) progress.update(text);
          else if (finished) {
            progress.update(finished);
            progress.done();
          }
          shown = text !== null;
        }, 500)
      : undefined;
    running = await keepCapturing(running, config, options, signal, (restarted) => {
      running = restarted;
      server?.attach({ ...captureDeps(restarted, config), role: () => activeRole(restarted) });
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
    owner.release();
  });
}
