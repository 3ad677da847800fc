import type { FastifyInstance } from 'fastify';
import type { TopicInfo } from '../core/event-log.ts';
import { formatLsn } from '../core/lsn.ts';
import type { StoredRecord } from '../core/record.ts';
import { notFound, unavailable } from './api-errors.ts';
import { errors, record, recordsQuery, searchQuery, topicInfo, topicParam } from './api-schemas.ts';
import type { ControlPlaneDeps } from './control-plane-deps.ts';

export interface LogRouteContext {
  readonly deps: () => Partial<ControlPlaneDeps>;
  readonly startedAt: string;
}

/** Status, topics and records: what the capture wrote, read from the log. */
export function registerLogRoutes(app: FastifyInstance, ctx: LogRouteContext): void {
  const log = () => {
    const l = ctx.deps().log;
    if (!l) throw unavailable('the log', 'capture is starting');
    return l;
  };
  const findTopic = async (topic: string): Promise<TopicInfo> => {
    const info = (await log().topics()).find((t) => t.topic === topic);
    if (!info) throw notFound(`unknown topic ${topic}`);
    return info;
  };

  app.get(
    '/api/status',
    {
      schema: {
        summary: 'Pipeline status: capture, source slot, log totals, consumers',
        tags: ['status'],
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async () => {
      const deps = ctx.deps();
      const capture = deps.capture;
      const slot = capture?.slotState() ?? null;
      const stats = deps.log?.topicStats?.() ?? [];
      const consumers = deps.supervisor ? await deps.supervisor.list().catch(() => null) : null;
      return {
        startedAt: ctx.startedAt,
        role:
          deps.role?.() ?? (capture ? { role: 'active', term: null, leader: null, slotActive: true } : null),
        capture: capture
          ? {
              source: capture.target,
              slot: capture.slot,
              publication: capture.publication,
              connected: capture.source.stats.connected,
              reconnects: capture.source.stats.reconnects,
              confirmedLsn: formatLsn(capture.source.stats.confirmedLsn),
              durableLsn: formatLsn(capture.capture.stats.durableLsn),
              serverLsn: slot ? formatLsn(slot.serverLsn) : null,
              slotLagBytes: slot?.lagBytes ?? null,
              retainedWalBytes: slot?.retainedBytes ?? null,
              transactions: capture.capture.stats.transactions,
              events: capture.capture.stats.events,
              records: capture.capture.stats.records,
              lastCommitAt:
                capture.capture.stats.lastCommitTimeUs > 0n
                  ? new Date(Number(capture.capture.stats.lastCommitTimeUs / 1000n)).toISOString()
                  : null,
            }
          : null,
        log: {
          topics: stats.length,
          records: stats.reduce((n, t) => n + t.records, 0),
          bytes: stats.reduce((n, t) => n + t.bytes, 0),
        },
        consumers: consumers
          ? {
              count: consumers.length,
              running: consumers.filter((c) => c.replicas.running > 0).length,
              crashLooping: consumers.filter((c) => c.crashLooping).length,
            }
          : null,
      };
    },
  );

  app.get(
    '/api/topics',
    {
      schema: {
        summary: 'Topics with their partitions, records and bytes',
        tags: ['log'],
        response: { 200: { type: 'array', items: topicInfo }, 503: errors[503] },
      },
    },
    async () => {
      const l = log();
      const bytes = new Map((l.topicStats?.() ?? []).map((t) => [t.topic, t.bytes]));
      return (await l.topics()).map((t) => describeTopic(t, bytes.get(t.topic) ?? null));
    },
  );

  app.get<{ Params: { topic: string } }>(
    '/api/topics/:topic',
    {
      schema: {
        summary: 'One topic',
        tags: ['log'],
        params: topicParam,
        response: { 200: topicInfo, 404: errors[404], 503: errors[503] },
      },
    },
    async (request) => {
      const info = await findTopic(request.params.topic);
      const bytes = log()
        .topicStats?.()
        .find((t) => t.topic === info.topic)?.bytes;
      return describeTopic(info, bytes ?? null);
    },
  );

  app.get<{ Params: { topic: string }; Querystring: { partition: number; offset?: number; limit: number } }>(
    '/api/topics/:topic/records',
    {
      schema: {
        summary: 'Records of one partition from an offset (or the last ones)',
        tags: ['log'],
        params: topicParam,
        querystring: recordsQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              topic: { type: 'string' },
              partition: { type: 'integer' },
              startOffset: { type: 'integer' },
              endOffset: { type: 'integer' },
              nextOffset: { type: 'integer', description: 'Offset to ask for the next page.' },
              records: { type: 'array', items: record },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { topic } = request.params;
      const { partition, limit } = request.query;
      const info = await findTopic(topic);
      const p = info.partitions.find((x) => x.partition === partition);
      if (!p)
        throw notFound(`topic ${topic} has no partition ${partition} (it has ${info.partitions.length})`);
      const from = request.query.offset ?? Math.max(p.startOffset, p.endOffset - limit);
      const records = await log().read(topic, partition, from, limit);
      return {
        topic,
        partition,
        startOffset: p.startOffset,
        endOffset: p.endOffset,
        nextOffset:
          records.length > 0 ? records[records.length - 1]!.offset + 1 : Math.max(from, p.startOffset),
        records: records.map(present),
      };
    },
  );

  app.get<{ Params: { topic: string }; Querystring: { key: string; limit: number; scan: number } }>(
    '/api/topics/:topic/search',
    {
      schema: {
        summary: 'Records with a given key, newest first',
        tags: ['log'],
        params: topicParam,
        querystring: searchQuery,
        response: {
          200: {
            type: 'object',
            properties: {
              records: { type: 'array', items: record },
              scanned: { type: 'integer' },
              complete: { type: 'boolean', description: 'Whether every stored record was examined.' },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { topic } = request.params;
      const { key, limit, scan } = request.query;
      const info = await findTopic(topic);
      const matches = keyMatcher(key);
      const found: StoredRecord[] = [];
      let scanned = 0;
      let complete = true;
      for (const p of info.partitions) {
        const from = Math.max(p.startOffset, p.endOffset - scan);
        if (from > p.startOffset) complete = false;
        for (let offset = from; offset < p.endOffset; ) {
          const batch = await log().read(topic, p.partition, offset, 1000);
          if (batch.length === 0) break;
          scanned += batch.length;
          for (const r of batch) if (matches(r.key)) found.push(r);
          offset = batch[batch.length - 1]!.offset + 1;
        }
      }
      found.sort((a, b) => b.timestamp - a.timestamp || b.offset - a.offset);
      return { records: found.slice(0, limit).map(present), scanned, complete };
    },
  );
}

function describeTopic(t: TopicInfo, bytes: number | null) {
  return {
    topic: t.topic,
    records: t.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0),
    bytes,
    partitions: t.partitions,
  };
}

function parse(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function present(r: StoredRecord) {
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset,
    key: parse(r.key),
    value: parse(r.value),
    headers: r.headers,
    timestamp: r.timestamp,
  };
}

/**
 * Matches a stored key against what a user typed: the exact stored text, the same JSON written
 * differently, or the value of a one-column key (`42` finds `{"id":42}`).
 */
export function keyMatcher(input: string): (key: string | null) => boolean {
  let normalized: string | undefined;
  try {
    normalized = JSON.stringify(JSON.parse(input));
  } catch {
    normalized = undefined;
  }
  return (key) => {
    if (key === null) return false;
    if (key === input) return true;
    let parsed: unknown;
    try {
      parsed = JSON.parse(key);
    } catch {
      return false;
    }
    if (normalized !== undefined && JSON.stringify(parsed) === normalized) return true;
    if (parsed !== null && typeof parsed === 'object') {
      const values = Object.values(parsed);
      return values.length === 1 && String(values[0]) === input;
    }
    return String(parsed) === input;
  };
}
