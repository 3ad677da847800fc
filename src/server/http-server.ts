import { accessSync, constants, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import swagger from '@fastify/swagger';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { AlertEngine, type AlertEngineOptions } from './alert-engine.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';
import { EventLoopStallWatch } from './event-loop-stall.ts';
import { HistorySampler } from './history-sampler.ts';
import { checkHost } from './host-check.ts';
import { errorAnswer } from './http-errors.ts';
import { BODY_LIMIT_BYTES, registerJsonBody } from './json-body.ts';
import { registerLogRoutes } from './log-routes.ts';
import { registerPipelineRoutes } from './pipeline-routes.ts';
import { registerQueryIntegers } from './query-integers.ts';
import { authorize, checkExposure, isLoopback } from './server-auth.ts';
import { ServerMetrics } from './server-metrics.ts';
import { lowStockConditions, registerServiceRoutes } from './service-routes.ts';
import { registerSqlRoutes } from './sql-routes.ts';

export interface ControlPlaneOptions {
  readonly host: string;
  /** 0 = any free port (tests). */
  readonly port: number;
  readonly token?: string;
  /** Host names accepted besides loopback ones when bound to loopback (DNS-rebinding defence). */
  readonly allowedHosts?: readonly string[];
  readonly logger: Logger;
  /** Created by the caller when the capture must be given its observer before the server starts. */
  readonly metrics?: ServerMetrics;
  /** Alert rules; without them no alert is evaluated. */
  readonly alerts?: Omit<AlertEngineOptions, 'inputs' | 'logger'>;
  readonly historyIntervalMs?: number;
  readonly deps?: Partial<ControlPlaneDeps>;
}

/** The HTTP server of the control plane: dashboard, /api, /metrics, /healthz, /readyz. */
export interface ControlPlane {
  /** e.g. `http://127.0.0.1:7070/`. */
  readonly url: string;
  readonly port: number;
  readonly metrics: ServerMetrics;
  readonly alerts: AlertEngine | undefined;
  /**
   * Adds the parts of the pipeline as they start (the server may start before the capture);
   * `cleanup` runs when the server stops (e.g. closing a store opened for it).
   */
  attach(deps: Partial<ControlPlaneDeps>, cleanup?: () => void | Promise<void>): void;
  /** Idempotent: stops the timers and closes the server. */
  stop(): Promise<void>;
}

/** How long a stall of the event loop keeps its alert firing after the loop runs again. */
const STALL_ALERT_HOLD_MS = 60_000;

const DASHBOARD_DIR = fileURLToPath(new URL('./dashboard/', import.meta.url));
const ASSETS: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/sql-page.js': { file: 'sql-page.js', type: 'text/javascript; charset=utf-8' },
  '/services.js': { file: 'services.js', type: 'text/javascript; charset=utf-8' },
  '/uplot.js': {
    file: '../../../node_modules/uplot/dist/uPlot.iife.min.js',
    type: 'text/javascript; charset=utf-8',
  },
  '/uplot.css': { file: '../../../node_modules/uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  checkExposure(options.host, options.token);
  const loopback = isLoopback(options.host);
  let deps: Partial<ControlPlaneDeps> = { ...options.deps };
  const getDeps = () => deps;
  const metrics = options.metrics ?? new ServerMetrics();
  const history = new HistorySampler(getDeps, {
    ...(options.historyIntervalMs ? { intervalMs: options.historyIntervalMs } : {}),
  });
  const stalls = new EventLoopStallWatch();
  stalls.start();
  const alerts = options.alerts
    ? new AlertEngine({
        ...options.alerts,
        logger: options.logger,
        inputs: async () => {
          const d = getDeps();
          return {
            connected: d.capture ? d.capture.source.stats.connected : null,
            slotLagBytes: d.capture?.slotState()?.lagBytes ?? null,
            slot: d.capture?.slot ?? '',
            consumers: d.supervisor ? await d.supervisor.list() : [],
            services: d.services ? lowStockConditions(d.services) : [],
            eventLoopStall: stalls.recent(STALL_ALERT_HOLD_MS),
            diskFull: d.capture?.source.stats.diskFull ?? null,
          };
        },
      })
    : undefined;
  metrics.attach(deps, () => alerts?.active() ?? []);
  const startedAt = new Date().toISOString();

  const app = Fastify({
    bodyLimit: BODY_LIMIT_BYTES,
    // Requests are logged at info: only shown when the log level asks for debugging.
    loggerInstance: options.logger.child(
      { component: 'http' },
      { level: ['debug', 'trace'].includes(options.logger.level) ? options.logger.level : 'warn' },
    ) as FastifyBaseLogger,
    ajv: {
      customOptions: { coerceTypes: true, removeAdditional: false, useDefaults: true, allErrors: false },
    },
  });
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Tributary control plane',
        version: '1',
        description:
          'Status, topics and records, consumers, dead letters, snapshots, schema history and alerts of a running Tributary pipeline. Mutating endpoints need `Authorization: Bearer <token>`; so does every endpoint when the server is bound beyond loopback.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    if (loopback) {
      const host = checkHost(request.headers, options.allowedHosts ?? []);
      if (!host.allowed) return reply.code(403).send({ error: 'HOST_NOT_ALLOWED', message: host.message });
    }
    const path = request.url.split('?')[0] ?? '';
    if (path in ASSETS && request.method === 'GET') return; // the page itself holds no data
    const decision = authorize({
      token: options.token,
      loopback,
      mutating: !['GET', 'HEAD', 'OPTIONS'].includes(request.method),
      authorization: request.headers.authorization,
    });
    if (decision.allowed) return;
    if (decision.status === 401) reply.header('www-authenticate', 'Bearer realm="tributary"');
    return reply
      .code(decision.status)
      .send({ error: decision.status === 401 ? 'UNAUTHORIZED' : 'FORBIDDEN', message: decision.message });
  });

  app.setErrorHandler((error, _request, reply) => {
    const { status, code, message } = errorAnswer(error);
    if (status >= 500 && status !== 503) options.logger.error({ err: error }, 'HTTP request failed');
    return reply.code(status).send({ error: code, message });
  });
  registerJsonBody(app);
  registerQueryIntegers(app);
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .send({ error: 'NOT_FOUND', message: `no endpoint ${request.method} ${request.url.split('?')[0]}` }),
  );

  registerHealth(app, getDeps);
  registerLogRoutes(app, { deps: getDeps, startedAt });
  registerPipelineRoutes(app, { deps: getDeps, alerts, history });
  registerServiceRoutes(app, getDeps);
  registerSqlRoutes(app, { deps: getDeps });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) =>
    reply.type(metrics.contentType).send(await metrics.scrape()),
  );
  for (const [path, asset] of Object.entries(ASSETS)) {
    const body = readFileSync(`${DASHBOARD_DIR}${asset.file}`);
    app.get(path, { schema: { hide: true } }, async (_request, reply) =>
      reply.type(asset.type).header('cache-control', 'no-cache').send(body),
    );
  }

  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = options.host.includes(':') ? `[${options.host}]` : options.host;
  history.start();
  alerts?.start();
  let stopping: Promise<void> | undefined;
  const cleanups: (() => void | Promise<void>)[] = [];
  return {
    url: `http://${shownHost === '0.0.0.0' ? '127.0.0.1' : shownHost}:${port}/`,
    port,
    metrics,
    alerts,
    attach(more, cleanup) {
      deps = { ...deps, ...more };
      metrics.attach(deps);
      if (cleanup) cleanups.push(cleanup);
    },
    stop() {
      stopping ??= (async () => {
        history.stop();
        stalls.stop();
        await alerts?.stop();
        await app.close();
        for (const cleanup of cleanups.splice(0)) await cleanup();
      })();
      return stopping;
    },
  };
}

function registerHealth(app: FastifyInstance, deps: () => Partial<ControlPlaneDeps>): void {
  app.get('/healthz', { schema: { summary: 'The process is alive', tags: ['health'] } }, async () => ({
    status: 'ok',
  }));
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Source connected, log readable and writable, consumers running (503 otherwise)',
        tags: ['health'],
      },
    },
    async (_request, reply) => {
      const d = deps();
      const reasons: string[] = [];
      const failure = d.capture?.failure();
      const role = d.role?.();
      if (role?.role === 'standby') reasons.push('standby: another capture holds the replication slot');
      else if (!d.capture) reasons.push('capture is not running');
      else if (failure) reasons.push(`capture stopped: ${failure.message}`);
      else if (d.capture.source.stats.diskFull) {
        const full = d.capture.source.stats.diskFull;
        reasons.push(
          `disk full: the event log's disk in ${d.capture.dataDir} has ${full.freeBytes} bytes free (since ${full.since}); appending stopped, the slot keeps the changes; free ${full.neededBytes} bytes and capture resumes by itself`,
        );
      } else if (!d.capture.source.stats.connected) reasons.push('the source database is not connected');
      if (d.capture) {
        try {
          accessSync(d.capture.dataDir, constants.W_OK);
        } catch (error) {
          reasons.push(`the log directory ${d.capture.dataDir} is not writable: ${(error as Error).message}`);
        }
      }
      if (!d.log) reasons.push('the log is not open');
      else {
        try {
          await d.log.topics();
        } catch (error) {
          reasons.push(`the log does not answer: ${(error as Error).message}`);
        }
      }
      if (d.supervisor) {
        try {
          for (const c of await d.supervisor.list()) {
            if (c.crashLooping) reasons.push(`consumer ${c.name} is crash-looping`);
            else if (c.state !== 'paused' && c.replicas.desired > 0 && c.replicas.running === 0)
              reasons.push(`consumer ${c.name} has no running replica`);
          }
        } catch (error) {
          reasons.push(`the supervisor does not answer: ${(error as Error).message}`);
        }
      }
      return reply.code(reasons.length ? 503 : 200).send({ ready: reasons.length === 0, reasons });
    },
  );
}
