import type { Logger } from 'pino';
import type { RunningCapture } from '../capture/capture-runner.ts';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConsumerStore } from '../consumers/consumer-store.ts';
import type { Supervisor } from '../consumers/supervisor.ts';
import { supervisorControl } from '../consumers/supervisor-control.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import type { CaptureControl, ControlPlaneDeps } from './control-plane-deps.ts';
import { deadLetterControl } from './dead-letter-adapter.ts';
import { type ControlPlane, startControlPlane } from './http-server.ts';
import { schemaHistoryControl, snapshotControl } from './pipeline-adapters.ts';
import { checkExposure } from './server-auth.ts';
import { ServerMetrics } from './server-metrics.ts';

/**
 * Starts the control plane for `run` and `up` from the configuration: `undefined` when
 * `server.port` is 0, or when the port is taken (capture matters more than its dashboard: it
 * goes on, and the reason is printed). A server bound beyond loopback without a token is refused
 * (ConfigError) before anything starts.
 */
export async function startControlPlaneFromConfig(
  config: TributaryConfig,
  logger: Logger,
  out: (line: string) => void,
): Promise<ControlPlane | undefined> {
  const { port, host, token } = config.server;
  if (port === 0) return undefined;
  checkExposure(host, token);
  try {
    return await startControlPlane({
      host,
      port,
      ...(token ? { token } : {}),
      logger,
      metrics: new ServerMetrics(),
      alerts: {
        ...(config.alerts.webhookUrl ? { webhookUrl: config.alerts.webhookUrl } : {}),
        slotLagBytes: config.alerts.slotLagBytes,
        consumerLagSeconds: config.alerts.consumerLagSeconds,
        crashLoop: config.alerts.crashLoop,
        disconnectedSeconds: config.alerts.disconnectedSeconds,
        intervalMs: config.alerts.intervalMs,
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL' && code !== 'EACCES') throw error;
    out(
      `dashboard and API not started: cannot listen on ${host}:${port} (${code}); pass --http-port <port> (0 = no server) to use another port`,
    );
    logger.warn({ host, port, code }, 'HTTP server not started');
    return undefined;
  }
}

/** What the control plane reads of a running capture. */
export function captureControl(running: RunningCapture, config: TributaryConfig): CaptureControl {
  let failure: Error | undefined;
  running.done.catch((error: unknown) => {
    failure = error instanceof Error ? error : new Error(String(error));
  });
  return {
    dataDir: config.dataDir,
    failure: () => failure,
    capture: running.capture,
    source: running.source,
    consumerYield: running.consumerYield,
    slotState: () => running.slotState(),
    slot: config.source.slot,
    publication: config.source.publication,
    target: config.source.url ? describeTarget(config.source.url) : '',
  };
}

/** The parts of the control plane a running capture provides: itself, its log, snapshots, schema history. */
export function captureDeps(running: RunningCapture, config: TributaryConfig): Partial<ControlPlaneDeps> {
  return {
    capture: captureControl(running, config),
    log: running.log,
    snapshots: snapshotControl(running.snapshots, config),
    schemaHistory: schemaHistoryControl(running.log, config.topicPrefix),
  };
}

/** Attaches the consumers (supervisor and dead letters) to the server; the store closes with it. */
export function attachConsumers(server: ControlPlane, supervisor: Supervisor, config: TributaryConfig): void {
  const store = ConsumerStore.open({ dataDir: config.dataDir });
  server.attach(
    {
      supervisor: supervisorControl(supervisor),
      deadLetters: deadLetterControl({
        store,
        consumers: () => supervisor.names,
        dataDir: config.dataDir,
        consumersDir: config.consumers.dir,
      }),
    },
    () => store.close(),
  );
}
