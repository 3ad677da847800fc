import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/core/errors.ts';
import { startControlPlaneFromConfig } from '../../src/server/control-plane.ts';
import { startControlPlane } from '../../src/server/http-server.ts';
import { quietLogger, waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline, TOKEN } from './server-support.ts';

// The API does not depend on the PostgreSQL version: one cluster keeps this file fast.
const VERSION = 15;

describe('HTTP API', () => {
  let p: Pipeline;
  let topic: string;

  beforeAll(async () => {
    p = await startPipeline(VERSION);
    await p.db.query(`insert into items select g, 'item ' || g from generate_series(1, 120) g`);
    topic = `${p.config.topicPrefix}.public.items`;
    await waitFor(async () => (await p.request(`/api/topics/${topic}`)).body?.records >= 120, '120 records');
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('answers /healthz and /readyz', async () => {
    expect(await p.request('/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const ready = await waitFor(async () => {
      const r = await p.request('/readyz');
      return r.status === 200 && r;
    }, 'ready');
    expect(ready.body).toEqual({ ready: true, reasons: [] });
  });

  it('reports the status of the capture and the log', async () => {
    const { status, body } = await p.request('/api/status');
    expect(status).toBe(200);
    expect(body.capture).toMatchObject({
      slot: p.config.source.slot,
      publication: p.config.source.publication,
      connected: true,
    });
    expect(body.capture.records).toBeGreaterThanOrEqual(120);
    expect(body.capture.source).not.toContain('password');
    expect(body.log.records).toBeGreaterThanOrEqual(120);
    expect(body.log.topics).toBeGreaterThanOrEqual(1);
  });

  it('lists topics and describes one; an unknown topic is a 404', async () => {
    const list = await p.request('/api/topics');
    expect(list.status).toBe(200);
    const items = list.body.find((t: { topic: string }) => t.topic === topic);
    expect(items).toMatchObject({
      records: 120,
      partitions: [{ partition: 0, startOffset: 0, endOffset: 120 }],
    });
    expect(items.bytes).toBeGreaterThan(120 * 50);
    expect(await p.request(`/api/topics/${topic}`)).toMatchObject({
      status: 200,
      body: { topic, records: 120 },
    });
    const unknown = await p.request('/api/topics/nope.public.none');
    expect(unknown).toMatchObject({ status: 404, body: { error: 'NOT_FOUND' } });
    expect(unknown.body.message).toContain('nope.public.none');
  });

  it('reads records by offset, pages, and tails without an offset', async () => {
    const first = await p.request(`/api/topics/${topic}/records?partition=0&offset=0&limit=10`);
    expect(first.status).toBe(200);
    expect(first.body.records.map((r: { offset: number }) => r.offset)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    expect(first.body.nextOffset).toBe(10);
    const record = first.body.records[0];
    expect(record.key).toEqual({ id: 1 });
    expect(record.value).toMatchObject({
      op: 'c',
      after: { id: 1, name: 'item 1' },
      source: { table: 'items' },
    });
    const next = await p.request(`/api/topics/${topic}/records?offset=${first.body.nextOffset}&limit=5`);
    expect(next.body.records[0].offset).toBe(10);
    const tail = await p.request(`/api/topics/${topic}/records?limit=3`);
    expect(tail.body.records.map((r: { offset: number }) => r.offset)).toEqual([117, 118, 119]);
    const past = await p.request(`/api/topics/${topic}/records?offset=500`);
    expect(past.body.records).toEqual([]);
  });

  it('rejects bad input with 400 and the reason, unknown partitions with 404', async () => {
    for (const [query, reason] of [
      ['limit=0', 'limit must be >= 1'],
      ['limit=abc', 'limit must be integer'],
      ['limit=5000', 'limit must be <= 1000'],
      ['offset=-1', 'offset must be >= 0'],
      ['partition=x', 'partition must be integer'],
      ['color=red', 'must NOT have additional properties'],
    ]) {
      const r = await p.request(`/api/topics/${topic}/records?${query}`);
      expect(r.status, query).toBe(400);
      expect(r.body.error).toBe('BAD_REQUEST');
      expect(r.body.message, query).toContain(reason);
    }
    const missing = await p.request(`/api/topics/${topic}/search`);
    expect(missing).toMatchObject({ status: 400 });
    expect(missing.body.message).toContain("required property 'key'");
    const partition = await p.request(`/api/topics/${topic}/records?partition=7`);
    expect(partition.status).toBe(404);
    expect(partition.body.message).toContain('no partition 7');
    const scale = await p.request('/api/consumers/x/scale', {
      method: 'POST',
      token: true,
      body: { replicas: -1 },
    });
    expect(scale.status).toBe(400);
    expect(scale.body.message).toContain('replicas must be >= 0');
    expect(await p.request('/api/nothing-here')).toMatchObject({ status: 404, body: { error: 'NOT_FOUND' } });
  });

  it('searches records by key', async () => {
    await p.db.query(`update items set name = 'renamed' where id = 42`);
    const found = await waitFor(async () => {
      const r = await p.request(`/api/topics/${topic}/search?key=42`);
      return r.body.records.length === 2 && r;
    }, 'both records of key 42');
    expect(found.body.records.map((r: { value: { op: string } }) => r.value.op)).toEqual(['u', 'c']);
    expect(found.body.complete).toBe(true);
    const json = await p.request(`/api/topics/${topic}/search?key=${encodeURIComponent('{ "id": 42 }')}`);
    expect(json.body.records).toHaveLength(2);
    const none = await p.request(`/api/topics/${topic}/search?key=4242`);
    expect(none.body.records).toEqual([]);
    const limited = await p.request(`/api/topics/${topic}/search?key=42&limit=1`);
    expect(limited.body.records[0].value.op).toBe('u');
  });

  it('answers 503 with the reason for parts that are not running here', async () => {
    for (const [method, path] of [
      ['GET', '/api/consumers'],
      ['GET', '/api/consumers/orders'],
      ['POST', '/api/consumers/orders/pause'],
      ['GET', '/api/dead-letters'],
      ['POST', '/api/dead-letters/1/replay'],
    ] as const) {
      const r = await p.request(path, { method, token: true });
      expect(r.status, path).toBe(503);
      expect(r.body).toMatchObject({ error: 'UNAVAILABLE' });
      expect(r.body.message, path).toMatch(/not available: /);
    }
  });

  it('serves alerts and chart history', async () => {
    expect(await p.request('/api/alerts')).toMatchObject({ status: 200, body: { active: [], recent: [] } });
    const history = await waitFor(async () => {
      const r = await p.request('/api/history');
      return r.body.samples.length >= 2 && r;
    }, 'two samples');
    expect(history.body.samples.at(-1).records).toBeGreaterThanOrEqual(120);
    const last = history.body.samples.at(-1).t;
    expect((await p.request(`/api/history?since=${last}`)).body.samples).toEqual([]);
    expect((await p.request('/api/history?since=-5')).status).toBe(400);
  });

  it('describes every endpoint in /api/openapi.json', async () => {
    const { status, body } = await p.request('/api/openapi.json');
    expect(status).toBe(200);
    expect(body.openapi).toMatch(/^3\./);
    const paths = Object.keys(body.paths);
    for (const path of [
      '/healthz',
      '/readyz',
      '/api/status',
      '/api/topics',
      '/api/topics/{topic}',
      '/api/topics/{topic}/records',
      '/api/topics/{topic}/search',
      '/api/consumers',
      '/api/consumers/{name}',
      '/api/consumers/{name}/scale',
      '/api/consumers/{name}/pause',
      '/api/consumers/{name}/resume',
      '/api/consumers/{name}/restart',
      '/api/dead-letters',
      '/api/dead-letters/{id}',
      '/api/dead-letters/{id}/replay',
      '/api/dead-letters/{id}/discard',
      '/api/snapshots',
      '/api/schema-history',
      '/api/alerts',
      '/api/history',
    ]) {
      expect(paths, path).toContain(path);
    }
    const records = body.paths['/api/topics/{topic}/records'].get;
    expect(records.parameters.map((x: { name: string }) => x.name)).toEqual(
      expect.arrayContaining(['topic', 'partition', 'offset', 'limit']),
    );
    expect(body.paths['/api/consumers/{name}/scale'].post.security).toEqual([{ bearer: [] }]);
  });

  it('serves the dashboard assets', async () => {
    const page = await p.request('/');
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.text).toContain('<script type="module" src="/dashboard.js">');
    expect(page.text).not.toMatch(/https?:\/\/(?!localhost)/);
    const js = await p.request('/dashboard.js');
    expect(js.headers.get('content-type')).toContain('javascript');
    expect(js.text).not.toMatch(/https?:\/\//);
    expect((await p.request('/dashboard.css')).status).toBe(200);
  });

  it('shows the schema history of the captured tables', async () => {
    await p.db.query('alter table items add column note text');
    await p.db.query(`insert into items values (1000, 'with a note', 'hello')`);
    const all = await waitFor(async () => {
      const r = await p.request('/api/schema-history');
      return r.body.length >= 2 && r;
    }, 'the ALTER entry');
    expect(all.status).toBe(200);
    const one = await p.request('/api/schema-history?table=public.items');
    expect(one.body.map((e: { type: string }) => e.type)).toEqual(['CREATE', 'ALTER']);
    expect(one.body[1]).toMatchObject({ id: 'public.items', changes: { added: ['note'] } });
    expect(one.body[1].table.columns.map((c: { name: string }) => c.name)).toEqual(['id', 'name', 'note']);
    const unknown = await p.request('/api/schema-history?table=public.nope');
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toContain('public.nope');
    expect((await p.request('/api/schema-history?table=a.b.c.d')).status).toBe(400);
  });

  it('starts a backfill and reports its progress', async () => {
    const started = await p.request('/api/snapshots', {
      method: 'POST',
      token: true,
      body: { tables: ['public.items'], where: 'id <= 100' },
    });
    expect(started.status).toBe(202);
    expect(started.body.ids).toHaveLength(1);
    const done = await waitFor(async () => {
      const r = await p.request('/api/snapshots');
      const job = r.body.find((j: { table: string; kind: string }) => j.table === 'public.items');
      return job?.state === 'done' && job;
    }, 'the backfill done');
    expect(done).toMatchObject({ kind: 'backfill', condition: 'id <= 100', rowsDone: 100 });
    const metrics = await p.request('/metrics');
    expect(metrics.text).toContain('tributary_snapshot_rows_done{table="public.items"} 100');
    expect(metrics.text).toContain('tributary_capture_events_total{table="public.items",op="r"} 100');
    const missing = await p.request('/api/snapshots', {
      method: 'POST',
      token: true,
      body: { tables: ['public.nope'] },
    });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toContain('public.nope');
    const badWhere = await p.request('/api/snapshots', {
      method: 'POST',
      token: true,
      body: { tables: ['public.items'], where: 'no_such_column > 1' },
    });
    expect(badWhere.status).toBe(400);
    expect(badWhere.body.error).toBe('SNAPSHOT_CONDITION_INVALID');
    const empty = await p.request('/api/snapshots', { method: 'POST', token: true, body: { tables: [] } });
    expect(empty.status).toBe(400);
  });

  describe('authentication', () => {
    it('asks the token for every mutating endpoint (401 without or with a wrong one)', async () => {
      for (const path of [
        '/api/consumers/orders/scale',
        '/api/consumers/orders/pause',
        '/api/consumers/orders/resume',
        '/api/consumers/orders/restart',
        '/api/dead-letters/1/replay',
        '/api/dead-letters/1/discard',
        '/api/snapshots',
      ]) {
        const none = await p.request(path, { method: 'POST', body: { replicas: 1 } });
        expect(none.status, path).toBe(401);
        expect(none.headers.get('www-authenticate')).toContain('Bearer');
        const wrong = await p.request(path, { method: 'POST', body: { replicas: 1 }, token: `${TOKEN}x` });
        expect(wrong.status, path).toBe(401);
        expect(wrong.body).toEqual({ error: 'UNAUTHORIZED', message: 'wrong bearer token' });
      }
      // Reads on loopback need no token; a wrong one presented is still refused.
      expect((await p.request('/api/topics')).status).toBe(200);
      expect((await p.request('/api/topics', { token: 'wrong-token-wrong-token' })).status).toBe(401);
    });

    it('refuses mutations with 403 when the server has no token', async () => {
      const open = await startControlPlane({ host: '127.0.0.1', port: 0, logger: quietLogger });
      try {
        const r = await fetch(new URL('/api/consumers/orders/pause', open.url), {
          method: 'POST',
          headers: { authorization: 'Bearer anything-at-all-here' },
        });
        expect(r.status).toBe(403);
        expect(((await r.json()) as { message: string }).message).toContain('--token');
        expect((await fetch(new URL('/healthz', open.url))).status).toBe(200);
      } finally {
        await open.stop();
      }
    });

    it('from the config: no server on port 0, a taken port reported, exposure refused', async () => {
      const lines: string[] = [];
      const out = (line: string) => lines.push(line);
      const withServer = (server: Record<string, unknown>) => ({
        ...p.config,
        server: { ...p.config.server, ...server },
      });
      expect(await startControlPlaneFromConfig(withServer({ port: 0 }), quietLogger, out)).toBeUndefined();
      expect(
        await startControlPlaneFromConfig(withServer({ port: p.server.port }), quietLogger, out),
      ).toBeUndefined();
      expect(lines).toEqual([
        expect.stringContaining(`cannot listen on 127.0.0.1:${p.server.port} (EADDRINUSE)`),
      ]);
      await expect(
        startControlPlaneFromConfig(withServer({ host: '0.0.0.0', port: p.server.port }), quietLogger, out),
      ).rejects.toThrow(/without a token/);
    });

    it('refuses to listen beyond loopback without a token, and then asks it everywhere', async () => {
      await expect(startControlPlane({ host: '0.0.0.0', port: 0, logger: quietLogger })).rejects.toThrow(
        ConfigError,
      );
      const exposed = await startControlPlane({
        host: '0.0.0.0',
        port: 0,
        token: TOKEN,
        logger: quietLogger,
      });
      try {
        const base = `http://127.0.0.1:${exposed.port}`;
        for (const path of ['/healthz', '/readyz', '/metrics', '/api/status', '/api/openapi.json']) {
          expect((await fetch(`${base}${path}`)).status, path).toBe(401);
          const ok = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
          expect(ok.status, path).not.toBe(401);
        }
        // The page itself holds no data; its API calls carry the token.
        expect((await fetch(`${base}/`)).status).toBe(200);
      } finally {
        await exposed.stop();
      }
    });
  });
});
