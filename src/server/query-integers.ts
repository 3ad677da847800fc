import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-errors.ts';

const PLAIN_INTEGER = /^-?\d{1,16}$/;

/**
 * Integer query parameters must be written as plain decimal integers within the safe range:
 * JSON-schema coercion alone takes `1e30` for an integer (and `1e400` for Infinity), which would
 * then be echoed back as `1e+30` or reach the log as a position no record can have.
 */
export function registerQueryIntegers(app: FastifyInstance): void {
  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema?.querystring as
      | { properties?: Record<string, { type?: unknown }> }
      | undefined;
    const query = request.query as Record<string, unknown> | undefined;
    if (!schema?.properties || !query) return;
    for (const [name, spec] of Object.entries(schema.properties)) {
      const value = query[name];
      if (spec.type !== 'integer' || typeof value !== 'string') continue;
      // Text that is no number at all is left to the schema ("must be integer").
      if (value.trim() === '' || Number.isNaN(Number(value))) continue;
      if (!PLAIN_INTEGER.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new ApiError(
          400,
          'BAD_REQUEST',
          `querystring/${name} must be a whole number written in digits, at most ${Number.MAX_SAFE_INTEGER}; got ${JSON.stringify(value.slice(0, 40))}`,
        );
      }
    }
  });
}
