import type { Command } from 'commander';
import { createSchema, Workload } from '../../examples/ecommerce/workload.ts';
import { keepCapturing, type RunningCapture, startCapture } from '../capture/capture-runner.ts';
import { loadConfig } from '../config/config-loader.ts';
import type { Supervisor } from '../consumers/supervisor.ts';
import { startConsumers } from '../consumers/supervisor-config.ts';
import { ConfigError } from '../core/errors.ts';
import { formatLsn } from '../core/lsn.ts';
import {
  attachConsumers,
  captureDeps,
  NEXT_HTTP_PORTS,
  startControlPlaneFromConfig,
} from '../server/control-plane.ts';
import { checkExposure } from '../server/server-auth.ts';
import { prepareSinks } from '../sinks/sink-setup.ts';
import { createLogger, untilSignal } from './cli-output.ts';
import { claimDataDir, pipelineDetails } from './data-dir-owner.ts';
import type { EmbeddedServer } from './embedded-postgres-server.ts';
import { ProgressLine } from './progress-line.ts';
import { dashboardUrl, withRunToken } from './run-token.ts';
import { type CaptureFlagValues, captureFlags, flagsToSettings } from './shared-flags.ts';
import { SnapshotProgress } from './snapshot-command.ts';
import { withDemoSinks } from './up-demo-sinks.ts';

interface UpFlags extends CaptureFlagValues {
  rate: string;
  workload: boolean;
}

export function registerUp(program: Command): void {
  captureFlags(
    program
      .command('up')
      .description(
        'Run the whole pipeline on this machine: an embedded PostgreSQL with the e-commerce demo and a workload (unless --source is given), capture into the log, live progress. Ctrl-C stops; the next run resumes.',
      ),
  )
    .option('--rate <tps>', 'demo workload, transactions per second (0 = none)', '20')
    .option('--no-workload', 'do not run the demo workload')
    .action(async (flags: UpFlags) => {
      const rate = Number(flags.rate);
      if (!Number.isFinite(rate) || rate < 0)
        throw new ConfigError(`--rate must be a number ≥ 0, not ${JSON.stringify(flags.rate)}`);
      const settings = flagsToSettings(flags);
      const loaded = loadConfig({ flags: settings, ...(flags.config ? { file: flags.config } : {}) });
      checkExposure(loaded.server.host, loaded.server.token);
      let { config, generated } = withRunToken(loaded);
      // Before the embedded PostgreSQL, the slot or the consumers: a second owner is refused here.
      const owner = claimDataDir(config.dataDir, 'up');
      const logger = createLogger(flags.logLevel ?? 'warn');
      const out = (line: string) => process.stderr.write(`${line}\n`);
      // The demo's services only on the demo database: they expect its schema.
      if (!config.source.url) config = withDemoSinks(config);
      const extraConsumerDirs = await prepareSinks(config, out);
      // First, so that the dashboard URL is the first line (the page fills in as parts start);
      // the process exits on an error below, which also closes it.
      const server = await startControlPlaneFromConfig(config, logger, out, NEXT_HTTP_PORTS);
      if (server) out(`dashboard: ${dashboardUrl(server.url, generated)}`);
      let embedded: EmbeddedServer | undefined;
      if (!config.source.url) {
        out(`starting embedded PostgreSQL in ${config.dataDir}/postgres ...`);
        // Loaded only here: the package installs exit hooks that would hijack SIGTERM for `run`.
        const { startEmbeddedPostgres } = await import('./embedded-postgres-server.ts');
        embedded = await startEmbeddedPostgres(config.dataDir, out);
        await createSchema(embedded.url);
        config = { ...config, source: { ...config.source, url: embedded.url } };
        out(`demo database: ${embedded.url}`);
      }
      owner.publish(pipelineDetails(config, server?.url));
      const workload =
        embedded && flags.workload && rate > 0 ? new Workload({ url: config.source.url!, rate }) : undefined;
      let running: RunningCapture | undefined;
      let consumers: Supervisor | undefined;
      const progress = new ProgressLine(process.stderr);
      let timer: NodeJS.Timeout | undefined;
      // Stop in order: the workload, then the capture (final append and acknowledgement), then
      // PostgreSQL; also when capture failed, so that nothing is left running.
      try {
        const options = { logger, ...(server ? { observer: server.metrics.captureObserver } : {}) };
        running = await startCapture(config, options);
        let capture = running;
        server?.attach(captureDeps(running, config));
        out(
          `capturing into ${config.dataDir} (slot ${config.source.slot}); read records with: npx tributary read <topic> --data-dir ${config.dataDir}`,
        );
        consumers = await startConsumers(config, logger, out, { extraConsumerDirs });
        if (server) attachConsumers(server, consumers, config);
        workload?.start();
        const snapshots = new SnapshotProgress();
        timer = setInterval(() => {
          const s = capture.capture.stats;
          const { running: snapshot, finished } = snapshots.next(capture.snapshots.status());
          if (finished) {
            // A line of its own, kept above the redrawn status line.
            progress.done();
            out(finished);
          }
          progress.update(
            `${snapshot ? `${snapshot} · ` : ''}${capture.source.stats.connected ? 'streaming' : 'connecting'} · ${s.transactions.toLocaleString('en')} tx · ${s.records.toLocaleString('en')} records · lsn ${formatLsn(s.durableLsn)}${workload ? ` · workload ${workload.stats.committed.toLocaleString('en')} tx` : ''}`,
          );
        }, 500);
        running = await keepCapturing(running, config, options, untilSignal(), (restarted) => {
          running = restarted;
          capture = restarted;
          server?.attach(captureDeps(restarted, config));
        });
        clearInterval(timer);
        progress.done();
        out('stopping ...');
        await server?.stop();
        await workload?.stop();
        await consumers.stop();
        await running.stop();
        await running.done;
        out(`stopped: ${running.capture.stats.records.toLocaleString('en')} records captured in this run`);
      } finally {
        clearInterval(timer);
        await server?.stop();
        await workload?.stop();
        await consumers?.stop();
        await running?.stop();
        await embedded?.stop();
        owner.release();
      }
    });
}
