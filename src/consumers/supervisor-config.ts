import type { Logger } from 'pino';
import type { TributaryConfig } from '../config/config-schema.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import type { ConsumerMetrics } from './consumer-metrics.ts';
import { scanConsumers, skippedLine } from './discovery.ts';
import { Supervisor } from './supervisor.ts';

/** The supervisor of `tributary run` / `up`, from the `consumers.*` settings. */
export function supervisorFromConfig(
  config: TributaryConfig,
  logger: Logger,
  options: { metrics?: ConsumerMetrics; extraConsumerDirs?: readonly string[] } = {},
): Supervisor {
  const c = config.consumers;
  return new Supervisor({
    dataDir: config.dataDir,
    consumersDir: c.dir,
    ...(options.extraConsumerDirs ? { extraConsumerDirs: options.extraConsumerDirs } : {}),
    logger,
    logs: { maxBytes: c.logMaxBytes, files: c.logFiles },
    ...(options.metrics ? { metrics: options.metrics } : {}),
    settings: {
      ...(natsLogRef(config) ? { log: natsLogRef(config)! } : {}),
      heartbeatMs: c.heartbeatMs,
      niceness: c.niceness,
      heartbeatTimeoutMs: c.heartbeatTimeoutMs,
      hangTimeoutMs: c.hangTimeoutMs,
      startTimeoutMs: c.startTimeoutMs,
      crashLoopRestarts: c.crashLoopRestarts,
      crashLoopWindowMs: c.crashLoopWindowMs,
      backoffMaxMs: c.backoffMaxMs,
      failure: { maxConsecutiveDeadLetters: c.failureThreshold, action: c.failureAction },
      offsetReset: c.offsetReset,
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
  options: { extraConsumerDirs?: readonly string[] } = {},
): Promise<Supervisor> {
  // Folders that look like consumers but will not run are named, not passed over in silence.
  for (const dir of [config.consumers.dir, ...(options.extraConsumerDirs ?? [])]) {
    for (const skipped of scanConsumers(dir).skipped) {
      out(skippedLine(skipped));
      logger.warn({ folder: skipped.path, reason: skipped.reason }, 'consumer folder skipped');
    }
  }
  const supervisor = supervisorFromConfig(config, logger, options);
  try {
    await supervisor.start();
  } catch (error) {
    await supervisor.stop();
    throw error;
  }
  if (supervisor.names.length > 0) {
    const folders = new Set(scanConsumers(config.consumers.dir).found.map((c) => c.name));
    const own = supervisor.names.filter((n) => folders.has(n));
    const others = supervisor.names.filter((n) => !folders.has(n));
    out(
      `consumers: ${[
        ...(own.length > 0 ? [`${own.join(', ')} (from ${config.consumers.dir})`] : []),
        ...(others.length > 0 ? [`sinks ${others.join(', ')}`] : []),
      ].join('; ')}; see them with: npx tributary consumers --data-dir ${config.dataDir}`,
    );
  }
  return supervisor;
}
