/**
 * `POST /api/sql`: one read-only SELECT over the lake (`bronze.*`, `silver.*`, `gold.*`), with
 * optional time travel. The same token rules as other mutating routes apply (a POST), and the
 * query runs under `queryLake`'s guarantees: anything but a SELECT is refused (400), files outside
 * the lake cannot be read, it is stopped after `timeoutMs` (at most 30 s) and returns at most
 * `maxRows` rows (at most 10,000; `truncated` says when there were more).
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { ApiError, unavailable } from './api-errors.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';

export interface SqlRouteContext {
  readonly deps: () => Partial<ControlPlaneDeps>;
  /** The lake directory; default `<dataDir>/lake` of the running capture. */
  readonly lakeDir?: string;
}

const MAX_ROWS = 10_000;
const MAX_TIMEOUT_MS = 30_000;

export function registerSqlRoutes(app: FastifyInstance, ctx: SqlRouteContext): void {
  app.post(
    '/api/sql',
    {
      schema: {
        summary: 'Run one read-only SELECT over the lake (bronze.<table>, silver.<table>, gold.<model>)',
        tags: ['lake'],
        body: {
          type: 'object',
          required: ['query'],
          additionalProperties: false,
          properties: {
            query: { type: 'string', minLength: 1, maxLength: 100_000 },
            asOf: { type: 'string', description: 'ISO timestamp (snapshot at that time) or LSN (X/Y)' },
            maxRows: { type: 'integer', minimum: 1, maximum: MAX_ROWS, default: 1000 },
            timeoutMs: { type: 'integer', minimum: 1, maximum: MAX_TIMEOUT_MS, default: 10_000 },
          },
        },
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async (request) => {
      const body = request.body as { query: string; asOf?: string; maxRows: number; timeoutMs: number };
      const dataDir = ctx.deps().capture?.dataDir;
      const lake = ctx.lakeDir ?? (dataDir ? join(dataDir, 'lake') : undefined);
      if (!lake) throw unavailable('the lake', 'the capture is starting');
      // DuckDB is loaded on the first query, not in every process that serves the API.
      const { LakeQueryError, queryLake } = await import('../sinks/lake/lake-query.ts');
      try {
        return await queryLake(lake, body.query, {
          ...(body.asOf ? { asOf: body.asOf } : {}),
          maxRows: body.maxRows,
          timeoutMs: body.timeoutMs,
        });
      } catch (error) {
        if (error instanceof LakeQueryError) {
          const status = error.code === 'LAKE_NOT_FOUND' ? 404 : 400;
          throw new ApiError(status, error.code, error.message, error.hint ? { hint: error.hint } : {});
        }
        throw error;
      }
    },
  );
}
