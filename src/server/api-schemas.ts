/**
 * JSON schemas of the API: fastify validates requests with them (a failure is a 400 naming the
 * field) and @fastify/swagger builds /api/openapi.json from the same objects.
 */

export const errorBody = {
  type: 'object',
  description: 'An error: a stable code and a message saying what is wrong.',
  properties: { error: { type: 'string' }, message: { type: 'string' } },
  required: ['error', 'message'],
} as const;

const anyObject = { type: 'object', additionalProperties: true } as const;

export const errors = {
  400: { ...errorBody, description: 'Bad request: the message names the invalid field.' },
  404: { ...errorBody, description: 'Unknown topic, partition, consumer, dead letter...' },
  503: { ...errorBody, description: 'The part of the pipeline behind this endpoint is not running.' },
} as const;

export const mutatingErrors = {
  ...errors,
  401: { ...errorBody, description: 'Missing or wrong bearer token.' },
  403: { ...errorBody, description: 'The server has no token: mutating endpoints are disabled.' },
} as const;

export const topicParam = {
  type: 'object',
  properties: { topic: { type: 'string', minLength: 1, maxLength: 500 } },
  required: ['topic'],
} as const;

export const nameParam = {
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['name'],
} as const;

export const idParam = {
  type: 'object',
  properties: { id: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['id'],
} as const;

export const recordsQuery = {
  type: 'object',
  properties: {
    partition: { type: 'integer', minimum: 0, maximum: 1_000_000, default: 0 },
    offset: {
      type: 'integer',
      minimum: 0,
      maximum: Number.MAX_SAFE_INTEGER,
      description: 'First offset to return; without it, the last `limit` records of the partition.',
    },
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  },
  additionalProperties: false,
} as const;

export const searchQuery = {
  type: 'object',
  properties: {
    key: {
      type: 'string',
      minLength: 1,
      maxLength: 10_000,
      description:
        'The record key as stored (`{"id":42}`), or the value of a one-column key (`42`). Newest records first.',
    },
    limit: { type: 'integer', minimum: 1, maximum: 200, default: 20 },
    scan: {
      type: 'integer',
      minimum: 1,
      maximum: 1_000_000,
      default: 20_000,
      description: 'How many of the newest records of each partition are examined.',
    },
  },
  required: ['key'],
  additionalProperties: false,
} as const;

export const record = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    partition: { type: 'integer' },
    offset: { type: 'integer' },
    key: { description: 'The key, parsed from JSON (text when it is not JSON).' },
    value: { description: 'The value (a Debezium envelope by default), parsed; null = tombstone.' },
    headers: { type: 'object', additionalProperties: { type: 'string' } },
    timestamp: { type: 'integer', description: 'Milliseconds since the epoch (source commit time).' },
  },
} as const;

export const partitionInfo = {
  type: 'object',
  properties: {
    partition: { type: 'integer' },
    startOffset: { type: 'integer' },
    endOffset: { type: 'integer' },
  },
} as const;

export const topicInfo = {
  type: 'object',
  properties: {
    topic: { type: 'string' },
    records: { type: 'integer' },
    bytes: { type: ['integer', 'null'] },
    partitions: { type: 'array', items: partitionInfo },
  },
} as const;

export const scaleBody = {
  type: 'object',
  properties: { replicas: { type: 'integer', minimum: 0, maximum: 64 } },
  required: ['replicas'],
  additionalProperties: false,
} as const;

export const deadLettersQuery = {
  type: 'object',
  properties: {
    consumer: { type: 'string', minLength: 1 },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
    offset: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
  },
  additionalProperties: false,
} as const;

export const snapshotBody = {
  type: 'object',
  properties: {
    tables: {
      type: 'array',
      items: { type: 'string', minLength: 1, maxLength: 200 },
      minItems: 1,
      maxItems: 100,
      description: 'Tables to backfill, as `schema.table` (quoted for mixed case).',
    },
    where: {
      type: 'string',
      minLength: 1,
      maxLength: 10_000,
      description: "Only the rows matching this SQL condition, e.g. `created_at > now() - interval '1 day'`.",
    },
  },
  required: ['tables'],
  additionalProperties: false,
} as const;

export const schemaHistoryQuery = {
  type: 'object',
  properties: { table: { type: 'string', minLength: 1 } },
  additionalProperties: false,
} as const;

export const historyQuery = {
  type: 'object',
  properties: { since: { type: 'integer', minimum: 0, default: 0, description: 'Epoch ms.' } },
  additionalProperties: false,
} as const;

export const accepted = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, message: { type: 'string' } },
} as const;

/** A scale accepted; `note` when some replicas will be idle (more replicas than partitions). */
export const scaled = {
  type: 'object',
  properties: { ok: { type: 'boolean' }, message: { type: 'string' }, note: { type: 'string' } },
} as const;

export { anyObject };
