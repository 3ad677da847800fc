import type { FastifyInstance } from 'fastify';
import { ApiError } from './api-errors.ts';

/** The largest request body the API reads (bytes); larger ones answer 413 `PAYLOAD_TOO_LARGE`. */
export const BODY_LIMIT_BYTES = 1024 * 1024;

/**
 * Where a parsed JSON value holds a key that would reach an object's prototype if some code
 * merged it into another object (`__proto__`, or `constructor` holding `prototype`), as a path
 * like `tables.0.__proto__`; undefined when there is none.
 */
export function prototypeKey(value: unknown, path = ''): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  for (const [key, inner] of Object.entries(value)) {
    const here = path ? `${path}.${key}` : key;
    if (key === '__proto__') return here;
    if (key === 'constructor' && typeof inner === 'object' && inner !== null && 'prototype' in inner)
      return `${here}.prototype`;
    const found = prototypeKey(inner, here);
    if (found) return found;
  }
  return undefined;
}

/**
 * Replaces fastify's JSON body parser, whose errors all read "not valid JSON": a syntax error
 * says where, and a body with a prototype key says that this key is what is refused.
 */
export function registerJsonBody(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string', bodyLimit: BODY_LIMIT_BYTES },
    (_request, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') return done(null, undefined);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        return done(
          new ApiError(400, 'BAD_REQUEST', `the request body is not valid JSON: ${(error as Error).message}`),
          undefined,
        );
      }
      const key = prototypeKey(parsed);
      if (key) {
        return done(
          new ApiError(
            400,
            'BAD_REQUEST',
            `the request body holds the key ${key}: keys named __proto__, and constructor holding prototype, are refused (they would change the prototype of objects); send the fields the endpoint documents only`,
          ),
          undefined,
        );
      }
      done(null, parsed);
    },
  );
}
