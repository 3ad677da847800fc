/**
 * The `webhook` sink: POSTs each batch as JSON to a URL, signed with HMAC-SHA256.
 *
 * Guarantees:
 * - At least once towards the receiver: a batch's offsets are committed (in a local SQLite file,
 *   `<dataDir>/webhook-offsets/<sink>.db`) only after the receiver answered 2xx, so after a crash
 *   a batch may be sent again. Every POST carries `Idempotency-Key`, the same for the same records
 *   (a hash of the group and each partition's first and last offset), and every record its topic,
 *   partition and offset, so the receiver can drop what it already has.
 * - Order: batches of one partition are sent one after the other, in log order.
 * - Retries: a network error, a timeout (`timeoutMs`) or a non-2xx answer is retried `retries`
 *   times with exponential backoff (`backoffMs`, doubling, at most 30 s). After that the batch
 *   fails with a `SinkRecordError` naming the answer: the worker retries its records one by one
 *   (`retryAttempts`) and dead-letters each that still fails, with that reason.
 * - Signature: header `X-Tributary-Signature: sha256=<hex>`, the HMAC-SHA256 of
 *   `<X-Tributary-Timestamp>.<body>` with the secret (`secret`, or the variable named by
 *   `secretEnv`). The secret is never logged nor written in errors.
 * - Body: `{"sink", "idempotencyKey", "records": [{"topic", "partition", "offset", "key", "value",
 *   "timestamp"}]}`; `key` and `value` are the record's JSON as captured (every digit kept).
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { z } from 'zod';
import type { ConsumerRecord } from '../../consumers/define-consumer.ts';
import { sqliteTarget } from '../../consumers/transactional.ts';
import { recordValueText } from '../../consumers/worker/lazy-record.ts';
import { ConfigError } from '../../core/errors.ts';
import { type Sink, type SinkKind, SinkRecordError } from '../sink.ts';

const WEBHOOK_OPTIONS = z
  .object({
    url: z.url().describe('Where batches are POSTed (http or https).'),
    secret: z
      .string()
      .min(16)
      .optional()
      .describe('HMAC-SHA256 key (16 characters at least). Prefer `secretEnv`.'),
    secretEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional()
      .describe('Name of the environment variable holding the HMAC key (read by each replica).'),
    timeoutMs: z
      .number()
      .int()
      .min(100)
      .max(300_000)
      .optional()
      .describe('Timeout of one POST (default 10000).'),
    retries: z.number().int().min(0).max(20).optional().describe('Retries of a failed POST (default 3).'),
    backoffMs: z
      .number()
      .int()
      .min(1)
      .max(60_000)
      .optional()
      .describe('Delay before the first retry (default 500), doubling.'),
    headers: z.record(z.string(), z.string()).optional().describe('Extra request headers.'),
  })
  .strict();

type WebhookOptions = z.infer<typeof WEBHOOK_OPTIONS>;

export const webhookSinkKind: SinkKind<WebhookOptions> = {
  kind: 'webhook',
  description: 'POSTs batches as signed JSON to a URL, at least once, with an idempotency key',
  options: WEBHOOK_OPTIONS,
  async check(options, env) {
    if (!options.secret && !options.secretEnv) {
      throw new ConfigError(`sinks.${env.name}.secret: the webhook needs a signing secret`, {
        hint: 'set secretEnv to the name of an environment variable holding it (or secret)',
      });
    }
    if (options.secretEnv && !process.env[options.secretEnv]) {
      throw new ConfigError(`sinks.${env.name}.secretEnv: the variable ${options.secretEnv} is not set`, {
        hint: `export ${options.secretEnv}=<secret> before starting`,
      });
    }
  },
  create(options, env) {
    const secret = options.secret ?? process.env[options.secretEnv ?? ''];
    if (!secret) throw new ConfigError(`sinks.${env.name}.secret: no signing secret`);
    const dir = join(env.dataDir, 'webhook-offsets');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const sink: Sink<Database.Database> = {
      target: sqliteTarget(join(dir, `${env.name}.db`)),
      async write(batch, _tx, ctx) {
        await post(options, secret, env.name, batch, ctx.signal);
      },
    };
    return sink as Sink<unknown>;
  },
};

/** The idempotency key of a batch: the same records give the same key. */
export function idempotencyKey(group: string, batch: readonly ConsumerRecord<unknown>[]): string {
  const ranges = new Map<string, [number, number]>();
  for (const r of batch) {
    const id = `${r.topic}/${r.partition}`;
    const range = ranges.get(id);
    if (!range) ranges.set(id, [r.offset, r.offset]);
    else range[1] = Math.max(range[1], r.offset);
  }
  const text = [...ranges]
    .map(([id, [a, b]]) => `${id}:${a}-${b}`)
    .sort()
    .join(',');
  return createHash('sha256').update(`${group}|${text}`).digest('hex').slice(0, 32);
}

/** The body, built from the records' JSON text so no digit is lost. */
export function webhookBody(sink: string, key: string, batch: readonly ConsumerRecord<unknown>[]): string {
  const records = batch.map((r) => {
    const value = recordValueText(r) ?? JSON.stringify(r.value ?? null);
    return `{"topic":${JSON.stringify(r.topic)},"partition":${r.partition},"offset":${r.offset},"key":${r.key ?? 'null'},"value":${value ?? 'null'},"timestamp":${r.timestamp}}`;
  });
  return `{"sink":${JSON.stringify(sink)},"idempotencyKey":"${key}","records":[${records.join(',')}]}`;
}

export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

async function post(
  options: WebhookOptions,
  secret: string,
  sink: string,
  batch: readonly ConsumerRecord<unknown>[],
  stop: AbortSignal,
): Promise<void> {
  const key = idempotencyKey(sink, batch);
  const body = webhookBody(sink, key, batch);
  const retries = options.retries ?? 3;
  let delay = options.backoffMs ?? 500;
  let reason = '';
  for (let attempt = 0; attempt <= retries; attempt++) {
    if (attempt > 0) {
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, delay);
        stop.addEventListener('abort', () => resolve(clearTimeout(timer)), { once: true });
      });
      delay = Math.min(delay * 2, 30_000);
    }
    if (stop.aborted) throw new Error('the replica is stopping; the batch will be sent again');
    const timestamp = String(Math.floor(Date.now() / 1000));
    try {
      const response = await fetch(options.url, {
        method: 'POST',
        headers: {
          ...options.headers,
          'content-type': 'application/json',
          'idempotency-key': key,
          'x-tributary-timestamp': timestamp,
          'x-tributary-signature': signature(secret, timestamp, body),
        },
        body,
        signal: AbortSignal.any([stop, AbortSignal.timeout(options.timeoutMs ?? 10_000)]),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return;
      reason = `answered ${response.status} ${response.statusText}`.trim();
    } catch (error) {
      const e = error as Error;
      reason = e.name === 'TimeoutError' ? `no answer within ${options.timeoutMs ?? 10_000} ms` : e.message;
    }
  }
  throw new SinkRecordError(
    `webhook ${new URL(options.url).origin}${new URL(options.url).pathname} ${reason} after ${retries + 1} tries`,
    {
      hint: 'the records are in the dead letters; replay them with `tributary dlq replay` once the receiver is fixed',
    },
  );
}
