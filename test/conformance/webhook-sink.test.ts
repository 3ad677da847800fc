import { createHmac } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../../src/consumers/define-consumer.ts';
import { partitionKey } from '../../src/consumers/transactional.ts';
import type { Sink } from '../../src/sinks/sink.ts';
import { SinkRecordError } from '../../src/sinks/sink.ts';
import { parseExactJson } from '../../src/sinks/sink-records.ts';
import { webhookSinkKind } from '../../src/sinks/webhook/webhook-sink.ts';
import { applyBatch, type ItemRow, itemRecord, sinkConformance } from './sink-conformance.ts';

const SECRET = 'a-test-secret-of-some-length';

/** A receiver that checks signatures, drops what it already applied and keeps the rows. */
class Receiver {
  readonly rows = new Map<string, ItemRow>();
  readonly applied = new Map<string, number>();
  readonly keys: string[] = [];
  failNext = 0;
  server!: Server;
  url = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        const ts = String(req.headers['x-tributary-timestamp']);
        const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`;
        if (req.headers['x-tributary-signature'] !== expected) return res.writeHead(401).end();
        this.keys.push(String(req.headers['idempotency-key']));
        if (this.failNext > 0) {
          this.failNext--;
          return res.writeHead(503).end();
        }
        const batch = parseExactJson(body) as {
          records: { topic: string; partition: number; offset: number; value: Envelope | null }[];
        };
        for (const r of batch.records) {
          const p = partitionKey(r.topic, r.partition);
          if (r.offset < (this.applied.get(p) ?? 0)) continue;
          this.applied.set(p, r.offset + 1);
          const v = r.value;
          if (v === null) continue;
          if (v.op === 't') this.rows.clear();
          else if (v.op === 'd') this.rows.delete(String(v.before?.id));
          else {
            const a = v.after as Record<string, unknown>;
            this.rows.set(String(a.id), {
              name: a.name as string,
              qty: String(a.qty),
              big: String(a.big),
              price: a.price as string,
            });
          }
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }
}

const receivers: Receiver[] = [];
afterAll(() => {
  for (const r of receivers) r.server.close();
});

function webhook(receiver: Receiver, extra: Record<string, unknown> = {}): Sink<unknown> {
  const env = {
    name: 'items-hook',
    dataDir: mkdtempSync(join(tmpdir(), 'webhook-sink-')),
    topicPrefix: 'shop',
    format: 'debezium' as const,
  };
  return webhookSinkKind.create(
    { url: receiver.url, secret: SECRET, backoffMs: 10, ...extra },
    env,
  ) as Sink<unknown>;
}

sinkConformance(
  'webhook (at least once, receiver dedupes by offset)',
  async () => {
    const receiver = new Receiver();
    await receiver.start();
    receivers.push(receiver);
    return { sink: webhook(receiver), rows: async () => receiver.rows, close: async () => {} };
  },
  { atLeastOnce: true },
);

describe('webhook sink', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = new Receiver();
    await receiver.start();
    receivers.push(receiver);
  });

  it('retries a failing answer, then succeeds with the same idempotency key', async () => {
    const sink = webhook(receiver, { retries: 3 });
    const session = await sink.target.open({ connections: 1 });
    receiver.failNext = 2;
    await applyBatch(session, sink, [
      itemRecord(0, 'c', 1, { name: 'a', qty: 1, big: '12345678901234567890', price: '1.00' }),
    ]);
    expect(receiver.rows.get('1')?.big).toBe('12345678901234567890');
    const last = receiver.keys.slice(-3);
    expect(new Set(last).size).toBe(1);
    expect(last[0]).toMatch(/^[0-9a-f]{32}$/);
    await session.close();
  });

  it('a non-2xx after the retries is a SinkRecordError naming the answer; the offset stays', async () => {
    const sink = webhook(receiver, { retries: 1 });
    const session = await sink.target.open({ connections: 1 });
    receiver.failNext = 5;
    const error = await applyBatch(session, sink, [
      itemRecord(0, 'c', 2, { name: 'b', qty: 1, big: '1', price: '1' }),
    ]).catch((e) => e);
    expect(error).toBeInstanceOf(SinkRecordError);
    expect(String(error.message)).toMatch(/answered 503.*after 2 tries/);
    expect(String(error.message)).not.toContain(SECRET);
    expect((await session.offsets('conformance', [{ topic: 'shop.public.items', partition: 0 }])).size).toBe(
      0,
    );
    receiver.failNext = 0;
    await session.close();
  });
});
