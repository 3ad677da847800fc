import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import type { ConsumerMetrics } from './consumer-metrics.ts';
import { Supervisor } from './supervisor.ts';

/** The supervisor of `tributary run` / `up`, from the `consumers.*` settings. */
export function supervisorFromConfig(
  config: TributaryConfig,
  logger: Logger,
  options: { metrics?: ConsumerMetrics } = {},
): Supervisor {
  const c = config.consumers;
  return new Supervisor({
    dataDir: config.dataDir,
    consumersDir: c.dir,
    logger,
    logs: { maxBytes: c.logMaxBytes, files: c.logFiles },
    ...(options.metrics ? { metrics: options.metrics } : {}),
    settings: {
      heartbeatMs: c.heartbeatMs,
      niceness: c.niceness,
      heartbeatTimeoutMs: c.heartbeatTimeoutMs,
      hangTimeoutMs: c.hangTimeoutMs,
      crashLoopRestarts: c.crashLoopRestarts,
      crashLoopWindowMs: c.crashLoopWindowMs,
      backoffMaxMs: c.backoffMaxMs,
      autoscale: {
        upLagSeconds: c.scaleUpLagSeconds,
        downLagSeconds: c.scaleDownLagSeconds,
        cooldownMs: c.scaleCooldownMs,
      },
    },
  });
}

/**
 * Starts the consumers of `consumers.dir` for `run`/`up` and says so on `out`. The supervisor
 * stops with `stop()` (drains every replica), which `run`/`up` call before stopping the capture.
 */
export async function startConsumers(
  config: TributaryConfig,
  logger: Logger,
  out: (line: string) => void,
): Promise<Supervisor> {
  const supervisor = supervisorFromConfig(config, logger);
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  if (supervisor.names.length > 0) {
    out(
      `consumers: ${supervisor.names.join(', ')} (from ${config.consumers.dir}); see them with: npx tributary consumers --data-dir ${config.dataDir}`,
    );
  }
  return supervisor;
}
