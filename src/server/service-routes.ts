/**
 * The read models over HTTP: `GET /api/services`, `/api/search/<index>?q=`, `/api/inventory/<name>`
 * (and `/products/<id>`, `/alerts`), `/api/analytics/<name>/<report>`. Reads only (the auth hook
 * of the server applies as to every GET: open on loopback, the token beyond it).
 */
import type { FastifyInstance } from 'fastify';
import { ANALYTICS_REPORTS, type AnalyticsReport } from '../sinks/sales-analytics/analytics-queries.ts';
import { findService, type ServiceEntry, type ServiceKind } from '../sinks/service-catalog.ts';
import {
  analyticsReport,
  inventoryAlerts,
  inventoryList,
  inventoryProduct,
  searchIndex,
} from '../sinks/service-queries.ts';
import type { AlertCondition } from './alert-rules.ts';
import { ApiError, notFound, unavailable } from './api-errors.ts';
import { anyObject, errors } from './api-schemas.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';

const name = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1 } },
  required: ['name'],
} as const;
const paging = {
  limit: { type: 'integer', minimum: 1, maximum: 10_000 },
  offset: { type: 'integer', minimum: 0, default: 0 },
} as const;

export function registerServiceRoutes(app: FastifyInstance, deps: () => Partial<ControlPlaneDeps>): void {
  const find = <K extends ServiceKind>(kind: K, n: string) => {
    const catalog = deps().services;
    if (!catalog) throw unavailable('the services', 'the pipeline is starting');
    try {
      return findService(catalog, kind, n);
    } catch (error) {
      throw new ApiError(404, 'NOT_FOUND', (error as Error).message, {
        hint: (error as { hint?: string }).hint ?? '',
      });
    }
  };

  app.get(
    '/api/services',
    {
      schema: {
        summary: 'The read models the sinks keep',
        tags: ['services'],
        response: { 200: { type: 'array', items: anyObject } },
      },
    },
    async () => (deps().services ?? []).map((s) => ({ name: s.name, kind: s.kind })),
  );

  app.get<{
    Params: { name: string };
    Querystring: { q?: string; filter?: string | string[]; limit: number; offset: number };
  }>(
    '/api/search/:name',
    {
      schema: {
        summary:
          'Full-text search of an index: words (all must match), `word*` prefixes, `filter=price:10..20`',
        tags: ['services'],
        params: name,
        querystring: {
          type: 'object',
          properties: {
            q: { type: 'string', maxLength: 1000, default: '' },
            filter: {
              anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }],
              description: 'a numeric range `<column>:<min>..<max>` (repeatable)',
            },
            limit: { ...paging.limit, default: 10, maximum: 1000 },
            offset: paging.offset,
          },
        },
        response: { 200: anyObject, ...errors },
      },
    },
    async (request) => {
      const { q = '', filter, limit, offset } = request.query;
      const filters = filter === undefined ? [] : Array.isArray(filter) ? filter : [filter];
      return searchIndex(find('search', request.params.name), { q, filters, limit, offset });
    },
  );

  app.get<{ Params: { name: string }; Querystring: { low?: boolean; limit?: number; offset: number } }>(
    '/api/inventory/:name',
    {
      schema: {
        summary: 'Stock, units taken and available per product (`low=true`: those with a low-stock alert)',
        tags: ['services'],
        params: name,
        querystring: { type: 'object', properties: { low: { type: 'boolean' }, ...paging } },
        response: { 200: { type: 'array', items: anyObject }, ...errors },
      },
    },
    async (request) => {
      const { low, limit, offset } = request.query;
      return inventoryList(find('inventory', request.params.name), {
        lowOnly: low === true,
        ...(limit !== undefined ? { limit } : {}),
        offset,
      });
    },
  );

  app.get<{ Params: { name: string; id: number } }>(
    '/api/inventory/:name/products/:id',
    {
      schema: {
        summary: "One product's stock",
        tags: ['services'],
        params: {
          type: 'object',
          properties: { name: { type: 'string' }, id: { type: 'integer' } },
          required: ['name', 'id'],
        },
        response: { 200: anyObject, ...errors },
      },
    },
    async (request) => {
      const product = inventoryProduct(find('inventory', request.params.name), request.params.id);
      if (!product) throw notFound(`no product ${request.params.id} in ${request.params.name}`);
      return product;
    },
  );

  app.get<{ Params: { name: string }; Querystring: { after: number; limit: number } }>(
    '/api/inventory/:name/alerts',
    {
      schema: {
        summary: 'Low-stock alert events (raised, resolved), newest first',
        tags: ['services'],
        params: name,
        querystring: {
          type: 'object',
          properties: {
            after: { type: 'integer', minimum: 0, default: 0 },
            limit: { ...paging.limit, default: 100 },
          },
        },
        response: { 200: { type: 'array', items: anyObject }, ...errors },
      },
    },
    async (request) => inventoryAlerts(find('inventory', request.params.name), request.query),
  );

  app.get<{ Params: { name: string; report: AnalyticsReport }; Querystring: { limit: number } }>(
    '/api/analytics/:name/:report',
    {
      schema: {
        summary: 'Sales figures: `daily`, `top-products`, `top-customers` (top 100 by default), `statuses`',
        tags: ['services'],
        params: {
          type: 'object',
          properties: { name: { type: 'string' }, report: { type: 'string', enum: [...ANALYTICS_REPORTS] } },
          required: ['name', 'report'],
        },
        querystring: {
          type: 'object',
          properties: { limit: { type: 'integer', minimum: 1, maximum: 100_000, default: 100 } },
        },
        response: { 200: { type: 'array', items: anyObject }, ...errors },
      },
    },
    async (request) =>
      analyticsReport(
        find('sales-analytics', request.params.name),
        request.params.report,
        request.query.limit,
      ),
  );
}

/**
 * The low-stock alerts of every inventory as alert conditions (rule `low_stock`, one per product):
 * the alert engine raises each once when it appears and resolves it once when it goes, telling
 * the alert webhook both times. An inventory without data yet has none.
 */
export function lowStockConditions(catalog: readonly ServiceEntry[]): AlertCondition[] {
  const out: AlertCondition[] = [];
  for (const entry of catalog) {
    if (entry.kind !== 'inventory') continue;
    let low: ReturnType<typeof inventoryList>;
    try {
      low = inventoryList(entry, { lowOnly: true });
    } catch {
      continue; // no file or no tables yet
    }
    for (const p of low) {
      out.push({
        id: `low_stock:${entry.name}:${p.productId}`,
        rule: 'low_stock',
        severity: 'warning',
        summary: `${entry.name}: product ${p.productId}${p.name ? ` (${p.name})` : ''} is low on stock: ${p.available} available, threshold ${entry.options.threshold}`,
      });
    }
  }
  return out;
}
