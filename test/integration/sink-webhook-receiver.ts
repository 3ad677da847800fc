/**
 * A webhook receiver for the sink tests: a local HTTP server that checks every request's HMAC
 * signature (`X-Tributary-Signature: sha256=<hex of HMAC(secret, "<timestamp>.<body>")>`), answers
 * as the test says (a non-2xx answer applies nothing), and applies the records it accepts to a
 * replica of `items` in canonical text (as `SOURCE_QUERY` gives), skipping a record it already
 * applied (at-least-once delivery: same topic, partition and offset).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseExactJson } from '../../src/sinks/sink-records.ts';
import { daysToDate, microsToTimestamp } from '../../src/sinks/table/table-values.ts';
import { type CanonicalRow, isoToMicros } from './sink-oracle-support.ts';

type Value = { before: Row | null; after: Row | null; op: string };
type Row = Record<string, unknown>;
export interface Delivered {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Row | null;
  /** null: a delete's tombstone. */
  readonly value: Value | null;
}

export interface Receiver {
  readonly url: string;
  /** Requests by answer status; `badSignatures` counts requests whose signature did not verify. */
  readonly answers: Map<number, number>;
  badSignatures: number;
  /** The highest offset applied (−1 before any). */
  lastOffset: number;
  /** Chooses the answer of a well-signed request (2xx applies it). */
  answer: (records: readonly Delivered[], request: number) => number;
  rows(): CanonicalRow[];
  close(): Promise<void>;
}

const text = (v: unknown) => (v === null || v === undefined ? null : String(v));

function canonical(r: Row): CanonicalRow {
  return {
    id: text(r.id),
    name: text(r.name),
    qty: text(r.qty),
    big: text(r.big),
    price: text(r.price),
    created:
      r.created === null || r.created === undefined
        ? null
        : microsToTimestamp(BigInt(r.created as number), 'created'),
    updated: r.updated === null || r.updated === undefined ? null : isoToMicros(String(r.updated)),
    doc: text(r.doc),
    flag: text(r.flag),
    day: r.day === null || r.day === undefined ? null : daysToDate(BigInt(r.day as number), 'day'),
    note: text(r.note),
  };
}

export async function startReceiver(secret: string): Promise<Receiver> {
  const table = new Map<string, CanonicalRow>();
  const seen = new Set<string>();
  let requests = 0;
  const receiver: Receiver = {
    url: '',
    answers: new Map(),
    badSignatures: 0,
    lastOffset: -1,
    answer: () => 200,
    rows: () => [...table.values()].sort((a, b) => Number(a.id) - Number(b.id)),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const reply = (status: number) => {
        receiver.answers.set(status, (receiver.answers.get(status) ?? 0) + 1);
        res.writeHead(status).end();
      };
      const timestamp = String(req.headers['x-tributary-timestamp'] ?? '');
      const signature = Buffer.from(String(req.headers['x-tributary-signature'] ?? ''));
      const expected = Buffer.from(
        `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`,
      );
      if (timestamp === '' || signature.length !== expected.length || !timingSafeEqual(signature, expected)) {
        receiver.badSignatures++;
        reply(401);
        return;
      }
      const { records } = parseExactJson(body) as { records: Delivered[] };
      const status = receiver.answer(records, requests++);
      if (status < 200 || status > 299) {
        reply(status);
        return;
      }
      for (const r of records) {
        const id = `${r.topic}/${r.partition}@${r.offset}`;
        if (seen.has(id)) continue;
        seen.add(id);
        receiver.lastOffset = Math.max(receiver.lastOffset, r.offset);
        if (r.value === null) continue;
        if (r.value.op === 't') table.clear();
        else if (r.value.op === 'd') table.delete(text((r.value.before ?? r.key)?.id) as string);
        else if (r.value.after) table.set(text(r.value.after.id) as string, canonical(r.value.after));
      }
      reply(200);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(receiver, { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook` });
}
