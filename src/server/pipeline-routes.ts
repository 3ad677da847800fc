import type { FastifyInstance } from 'fastify';
import type { AlertEngine } from './alert-engine.ts';
import { notFound, unavailable } from './api-errors.ts';
import {
  accepted,
  anyObject,
  deadLettersQuery,
  errors,
  historyQuery,
  idParam,
  mutatingErrors,
  nameParam,
  scaleBody,
  scaled,
  schemaHistoryQuery,
  snapshotBody,
} from './api-schemas.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';
import type { HistorySampler } from './history-sampler.ts';

export interface PipelineRouteContext {
  readonly deps: () => Partial<ControlPlaneDeps>;
  readonly alerts: AlertEngine | undefined;
  readonly history: HistorySampler;
}

const list = { type: 'array', items: anyObject } as const;

/** Consumers, dead letters, snapshots, schema history, alerts and chart history. */
export function registerPipelineRoutes(app: FastifyInstance, ctx: PipelineRouteContext): void {
  const supervisor = () => {
    const s = ctx.deps().supervisor;
    if (!s) {
      throw unavailable(
        'the consumer supervisor',
        'no consumers run in this process (none found in ./consumers, or the supervisor is not wired yet)',
      );
    }
    return s;
  };
  const deadLetters = () => {
    const d = ctx.deps().deadLetters;
    if (!d) throw unavailable('the dead-letter store', 'no consumers run in this process');
    return d;
  };
  const snapshots = () => {
    const s = ctx.deps().snapshots;
    if (!s) throw unavailable('snapshots', 'the snapshot service is not running in this process');
    return s;
  };
  const schemaHistory = () => {
    const s = ctx.deps().schemaHistory;
    if (!s) throw unavailable('the schema history', 'schema history is not recorded by this process');
    return s;
  };

  app.get(
    '/api/consumers',
    {
      schema: {
        summary: 'Consumers with replicas, restarts, lag, last error',
        tags: ['consumers'],
        response: { 200: list, 503: errors[503] },
      },
    },
    async () => supervisor().list(),
  );

  app.get<{ Params: { name: string } }>(
    '/api/consumers/:name',
    {
      schema: {
        summary: 'One consumer',
        tags: ['consumers'],
        params: nameParam,
        response: { 200: anyObject, ...errors },
      },
    },
    async (request) => {
      const found = (await supervisor().list()).find((c) => c.name === request.params.name);
      if (!found) throw notFound(`unknown consumer ${request.params.name}`);
      return found;
    },
  );

  app.post<{ Params: { name: string }; Body: { replicas: number } }>(
    '/api/consumers/:name/scale',
    {
      schema: {
        summary: 'Set the number of replicas',
        tags: ['consumers'],
        params: nameParam,
        body: scaleBody,
        security: [{ bearer: [] }],
        response: { 202: scaled, ...mutatingErrors },
      },
    },
    async (request, reply) => {
      const { name } = request.params;
      const done = await supervisor().scale(name, request.body.replicas);
      if (!done) throw notFound(`unknown consumer ${name}`);
      const message = `${name} scaling to ${request.body.replicas} replicas`;
      return reply
        .code(202)
        .send(
          done.note
            ? { ok: true, message: `${message}. Note: ${done.note}`, note: done.note }
            : { ok: true, message },
        );
    },
  );

  for (const action of ['pause', 'resume', 'restart'] as const) {
    app.post<{ Params: { name: string } }>(
      `/api/consumers/:name/${action}`,
      {
        schema: {
          summary: `${action[0]!.toUpperCase()}${action.slice(1)} a consumer`,
          tags: ['consumers'],
          params: nameParam,
          security: [{ bearer: [] }],
          response: { 202: accepted, ...mutatingErrors },
        },
      },
      async (request, reply) => {
        const { name } = request.params;
        if (!(await supervisor()[action](name))) throw notFound(`unknown consumer ${name}`);
        return reply.code(202).send({ ok: true, message: `${action} of ${name} accepted` });
      },
    );
  }

  app.get<{ Querystring: { consumer?: string; limit: number; offset: number } }>(
    '/api/dead-letters',
    {
      schema: {
        summary: 'Dead letters, newest first',
        tags: ['dead letters'],
        querystring: deadLettersQuery,
        response: {
          200: { type: 'object', properties: { total: { type: 'integer' }, items: list } },
          ...errors,
        },
      },
    },
    async (request) => {
      const { consumer, limit, offset } = request.query;
      return deadLetters().list({ ...(consumer ? { consumer } : {}), limit, offset });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/dead-letters/:id',
    {
      schema: {
        summary: 'One dead letter with its record and error',
        tags: ['dead letters'],
        params: idParam,
        response: { 200: anyObject, ...errors },
      },
    },
    async (request) => {
      const found = await deadLetters().get(request.params.id);
      if (!found) throw notFound(`unknown dead letter ${request.params.id}`);
      return found;
    },
  );

  for (const action of ['replay', 'discard'] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/dead-letters/:id/${action}`,
      {
        schema: {
          summary:
            action === 'replay'
              ? 'Hand the record back to its consumer, then remove the dead letter'
              : 'Remove the dead letter without processing it',
          tags: ['dead letters'],
          params: idParam,
          security: [{ bearer: [] }],
          response: { 200: accepted, ...mutatingErrors },
        },
      },
      async (request) => {
        const { id } = request.params;
        if (!(await deadLetters()[action](id))) throw notFound(`unknown dead letter ${id}`);
        return { ok: true, message: `dead letter ${id} ${action === 'replay' ? 'replayed' : 'discarded'}` };
      },
    );
  }

  app.post<{ Body: { tables: string[]; where?: string } }>(
    '/api/snapshots',
    {
      schema: {
        summary: 'Start a backfill (online snapshot) of some tables, while streaming goes on',
        tags: ['snapshots'],
        body: snapshotBody,
        security: [{ bearer: [] }],
        response: {
          202: { type: 'object', properties: { ids: { type: 'array', items: { type: 'string' } } } },
          ...mutatingErrors,
        },
      },
    },
    async (request, reply) =>
      reply.code(202).send(await snapshots().start(request.body.tables, request.body.where ?? null)),
  );

  app.get(
    '/api/snapshots',
    {
      schema: {
        summary: 'Progress of the current and past snapshots, per table',
        tags: ['snapshots'],
        response: { 200: list, 503: errors[503] },
      },
    },
    async () => snapshots().progress(),
  );

  app.get<{ Querystring: { table?: string } }>(
    '/api/schema-history',
    {
      schema: {
        summary: 'Schema versions seen in the stream, per table',
        tags: ['schema history'],
        querystring: schemaHistoryQuery,
        response: { 200: list, ...errors },
      },
    },
    async (request) => {
      const { table } = request.query;
      const entries = await schemaHistory().list(table);
      if (table !== undefined && entries.length === 0) throw notFound(`no schema history for table ${table}`);
      return entries;
    },
  );

  app.get(
    '/api/alerts',
    {
      schema: {
        summary: 'Active alerts and the last firing/resolved events',
        tags: ['alerts'],
        response: { 200: { type: 'object', properties: { active: list, recent: list } } },
      },
    },
    async () => ({ active: ctx.alerts?.active() ?? [], recent: ctx.alerts?.recent() ?? [] }),
  );

  app.get<{ Querystring: { since: number } }>(
    '/api/history',
    {
      schema: {
        summary: 'Samples of the last minutes for the charts (totals; rates are differences)',
        tags: ['status'],
        querystring: historyQuery,
        response: {
          200: { type: 'object', properties: { intervalMs: { type: 'integer' }, samples: list } },
          400: errors[400],
        },
      },
    },
    async (request) => ({
      intervalMs: ctx.history.intervalMs,
      samples: ctx.history.samples(request.query.since),
    }),
  );
}
