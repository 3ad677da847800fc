/**
 * `tributary consumers run <name> --log nats://...`: one consumer's replicas as a standalone
 * process, sharing the consumer's partitions with every other such process of the same log
 * (consumers/nats/standalone-consumer.ts). Exit 0 after SIGTERM/SIGINT (replicas drained,
 * partitions released), 1 when the consumer cannot start (bad module), crash-loops (settings
 * `consumers.crashLoopRestarts|crashLoopWindowMs`), has stored offsets beyond the log, or the log
 * is unreachable.
 */
import { createServer, type Server } from 'node:http';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConsumerMetrics } from '../consumers/consumer-metrics.ts';
import { scanConsumers, validateConsumerName } from '../consumers/discovery.ts';
import { StandaloneConsumer } from '../consumers/nats/standalone-consumer.ts';
import { ConsumerNotFoundError, validateReplicas } from '../consumers/supervisor.ts';
import { ConfigError } from '../core/errors.ts';
import { natsLogRef } from '../log/open-event-log.ts';
import { createLogger, untilSignal } from './cli-output.ts';

interface RunFlags {
  log?: string;
  consumersDir?: string;
  dataDir?: string;
  config?: string;
  replicas: string;
  leaseMs: string;
  logLevel?: string;
  metricsPort?: string;
}

export function registerConsumersRun(program: Command): void {
  const consumers =
    program.commands.find((c) => c.name() === 'consumers') ??
    program.command('consumers').description('Manage consumers.');
  consumers
    .command('run <name>')
    .description(
      'Run one consumer’s replicas in this process against a NATS log (one container); several such processes, on any machines, share its partitions through NATS.',
    )
    .option('--log <url>', 'the NATS log: nats://host:port,... (env TRIBUTARY_LOG_URL)')
    .option('--consumers-dir <dir>', 'folder of consumer folders (default ./consumers)')
    .option('--replicas <n>', 'replicas in this process (1-64)', '1')
    .option('--lease-ms <ms>', 'a process silent this long loses its partitions to the others', '3000')
    .option(
      '--metrics-port <port>',
      'serve Prometheus metrics of this process on http://0.0.0.0:<port>/metrics',
    )
    .option('--data-dir <dir>', 'local directory of the replicas (default .tributary)')
    .option('--config <file>', 'config file')
    .option('--log-level <level>', 'fatal, error, warn, info, debug or trace (default info)')
    .action(async (name: string, _flags: RunFlags, command: Command) => {
      const flags = command.optsWithGlobals() as RunFlags;
      validateConsumerName(name);
      const config = loadConfig({
        flags: {
          dataDir: flags.dataDir,
          'log.url': flags.log,
          'consumers.dir': flags.consumersDir,
          logLevel: flags.logLevel,
        },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const log = natsLogRef(config);
      if (!log) {
        throw new ConfigError('consumers run needs a NATS log: --log nats://host:port,...', {
          hint: 'With the embedded log, consumers run inside `tributary run`/`up` (one machine).',
        });
      }
      const replicas = Number(flags.replicas);
      if (!Number.isInteger(replicas) || replicas < 1) {
        throw new ConfigError(`--replicas must be a whole number from 1 to 64, not ${flags.replicas}`);
      }
      validateReplicas(replicas);
      const leaseMs = Number(flags.leaseMs);
      if (!Number.isInteger(leaseMs) || leaseMs < 500) {
        throw new ConfigError(`--lease-ms must be a whole number of at least 500, not ${flags.leaseMs}`);
      }
      const found = scanConsumers(config.consumers.dir).found;
      const consumer = found.find((c) => c.name === name);
      if (!consumer) throw new ConsumerNotFoundError(name, found.map((c) => c.name).sort());
      const logger = createLogger(config.logLevel);
      const c = config.consumers;
      const metrics = new ConsumerMetrics();
      const server =
        flags.metricsPort === undefined ? undefined : await serveMetrics(flags.metricsPort, metrics);
      const standalone = new StandaloneConsumer({
        name,
        module: resolve(consumer.module),
        dataDir: resolve(config.dataDir),
        log,
        replicas,
        leaseMs,
        logger,
        heartbeatMs: c.heartbeatMs,
        failure: { maxConsecutiveDeadLetters: c.failureThreshold, action: c.failureAction },
        offsetReset: c.offsetReset,
        metrics,
        health: {
          heartbeatTimeoutMs: c.heartbeatTimeoutMs,
          hangTimeoutMs: c.hangTimeoutMs,
          startTimeoutMs: c.startTimeoutMs,
          backoffMaxMs: c.backoffMaxMs,
          crashLoopRestarts: c.crashLoopRestarts,
          crashLoopWindowMs: c.crashLoopWindowMs,
        },
      });
      const stop = new AbortController();
      void untilSignal().then(() => stop.abort());
      logger.info(
        { consumer: name, replicas, members: standalone.members, log: log.url },
        'consumer running',
      );
      try {
        process.exitCode = await standalone.run(stop.signal);
      } finally {
        server?.close();
      }
    });
}

/** `/metrics` of this process (the consumers' metrics, as the API server of `run` serves them). */
async function serveMetrics(port: string, metrics: ConsumerMetrics): Promise<Server> {
  const n = Number(port);
  if (!Number.isInteger(n) || n < 0 || n > 65_535) {
    throw new ConfigError(`--metrics-port must be a port number, not ${JSON.stringify(port)}`);
  }
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    void metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) =>
      reject(new ConfigError(`cannot serve metrics on port ${n}: ${error.message}`, { cause: error })),
    );
    server.listen(n, resolve);
  });
  return server;
}
