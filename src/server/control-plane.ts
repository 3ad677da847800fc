import type { Logger } from 'pino';
import type { RunningCapture } from '../capture/capture-runner.ts';
import type { StandbyState } from '../capture/capture-standby.ts';
import type { TributaryConfig } from '../config/config-schema.ts';
import { ConsumerStore } from '../consumers/consumer-store.ts';
import type { Supervisor } from '../consumers/supervisor.ts';
import { NatsLogBucket } from '../log/nats/nats-log-bucket.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import { serviceCatalog } from '../sinks/service-catalog.ts';
import { describeTarget } from '../source/postgres/postgres-errors.ts';
import type { CaptureControl, CaptureRole, ControlPlaneDeps } from './control-plane-deps.ts';
import { deadLetterControl, natsLetters, storeLetters } from './dead-letter-adapter.ts';
import { type ControlPlane, startControlPlane } from './http-server.ts';
import { schemaHistoryControl, snapshotControl } from './pipeline-adapters.ts';
import { checkExposure } from './server-auth.ts';
import { ServerMetrics } from './server-metrics.ts';
import { supervisorControl } from './supervisor-control.ts';

/**
 * Starts the control plane for `run` and `up` from the configuration: `undefined` when
 * `server.port` is 0, or when the port is taken (capture matters more than its dashboard: it
 * goes on, and the reason is printed). With `nextPorts` > 0, a taken port is not the end: the
 * next ports are tried in turn (`up` always, `run` only on the default port; an explicitly
 * chosen port is the user's to change), and the one taken is printed. A server bound beyond
 * loopback without a token is refused (ConfigError) before anything starts.
 */
export async function startControlPlaneFromConfig(
  config: TributaryConfig,
  logger: Logger,
  out: (line: string) => void,
  nextPorts = 0,
): Promise<ControlPlane | undefined> {
  const { port, host, token } = config.server;
  if (port === 0) return undefined;
  checkExposure(host, token);
  let code: string | undefined;
  for (let candidate = port; candidate <= Math.min(65_535, port + nextPorts); candidate++) {
    try {
      const server = await startControlPlane({
        host,
        port: candidate,
        ...(token ? { token } : {}),
        allowedHosts: config.server.allowedHosts,
        logger,
        metrics: new ServerMetrics(),
        alerts: {
          ...(config.alerts.webhookUrl ? { webhookUrl: config.alerts.webhookUrl } : {}),
          slotLagBytes: config.alerts.slotLagBytes,
          consumerLagSeconds: config.alerts.consumerLagSeconds,
          crashLoop: config.alerts.crashLoop,
          disconnectedSeconds: config.alerts.disconnectedSeconds,
          eventLoopStallMs: config.alerts.eventLoopStallMs,
          intervalMs: config.alerts.intervalMs,
        },
      });
      if (candidate !== port) {
        out(`port ${port} is taken (${code}): the dashboard and API listen on port ${candidate} instead`);
        logger.warn({ host, port, listening: candidate }, 'HTTP port taken, using the next free one');
      }
      return server;
    } catch (error) {
      code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL' && code !== 'EACCES') throw error;
      if (code !== 'EADDRINUSE') break;
    }
  }
  const tried = nextPorts > 0 ? `${port}-${Math.min(65_535, port + nextPorts)}` : `${port}`;
  out(
    `dashboard and API not started: cannot listen on ${host}:${tried} (${code}); pass --http-port <port> (0 = no server) to use another port`,
  );
  logger.warn({ host, port, code }, 'HTTP server not started');
  return undefined;
}

/** Ports tried after a taken one: by `up` always, by `run` when it uses the default port. */
export const NEXT_HTTP_PORTS = 20;
export const DEFAULT_HTTP_PORT = 7070;

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
    // The same list as the status file (`tributary status`): earlier runs' finished jobs included.
    snapshots: snapshotControl({ status: () => running.snapshotJobs() }, config),
    schemaHistory: schemaHistoryControl(running.log, config.topicPrefix),
    services: serviceCatalog(config),
  };
}

/** Attaches the consumers (supervisor and dead letters) to the server; the store closes with it. */
export function attachConsumers(server: ControlPlane, supervisor: Supervisor, config: TributaryConfig): void {
  const nats = natsLogRef(config);
  // On a NATS log the replicas keep their dead letters in its bucket (opened at the first request).
  let bucket: Promise<NatsLogBucket> | undefined;
  const store = nats ? undefined : ConsumerStore.open({ dataDir: config.dataDir });
  const letters = nats
    ? natsLetters(() => {
        bucket ??= NatsLogBucket.open(nats).catch((error: unknown) => {
          bucket = undefined;
          throw error;
        });
        return bucket;
      }, nats)
    : storeLetters(store!);
  server.attach(
    {
      supervisor: supervisorControl(supervisor),
      deadLetters: deadLetterControl({
        letters,
        consumers: () => supervisor.names,
        dataDir: config.dataDir,
        consumersDir: config.consumers.dir,
      }),
    },
    async () => {
      store?.close();
      await (await bucket?.catch(() => undefined))?.close();
    },
  );
}

/** The role of a capture that runs. */
export function activeRole(running: RunningCapture): CaptureRole {
  return { role: 'active', term: running.term?.term ?? null, leader: null, slotActive: true };
}

/** The role of `run --standby` while it waits (`state` undefined before its first poll). */
export function standbyRole(state: StandbyState | undefined): CaptureRole {
  const leader = state?.leader ?? null;
  return {
    role: 'standby',
    term: leader?.term ?? null,
    leader: leader ? { holder: leader.holder, since: leader.since } : null,
    slotActive: state?.slotActive ?? null,
  };
}
