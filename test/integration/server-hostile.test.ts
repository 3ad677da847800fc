import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline, TOKEN } from './server-support.ts';

const VERSION = 18;

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked field by field
  readonly body: any;
}

/** A real HTTP request with headers of our choosing (fetch would not let us set Host). */
function raw(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Answer> {
  const target = new URL(path, url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname + target.search,
        method: options.method ?? 'GET',
        headers: options.headers ?? {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => {
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {
            body = null;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

describe('hostile HTTP input on the loopback control plane', () => {
  let p: Pipeline;
  let topic: string;
  let port: string;

  beforeAll(async () => {
    p = await startPipeline(VERSION, { server: { allowedHosts: ['tributary.internal'] } });
    topic = `${p.config.topicPrefix}.public.items`;
    await p.db.query(`insert into items values (1, 'secret row')`);
    await waitFor(async () => (await p.request(`/api/topics/${topic}`)).status === 200, 'the topic');
    port = new URL(p.server.url).port;
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('refuses a foreign Host (DNS rebinding) with a JSON error and no row data', async () => {
    const path = `/api/topics/${topic}/records?offset=0`;
    const evil = await raw(p.server.url, path, { headers: { host: 'evil.example.com' } });
    expect(evil.status).toBe(403);
    expect(evil.body.error).toBe('HOST_NOT_ALLOWED');
    expect(evil.body.message).toContain('evil.example.com');
    expect(evil.body.message).toContain('server.allowedHosts');
    expect(evil.text).not.toContain('secret row');
    expect(evil.headers['access-control-allow-origin']).toBeUndefined();
    // With the port, and on the page and the other endpoints too.
    for (const other of ['/', '/metrics', '/api/status', '/readyz']) {
      const r = await raw(p.server.url, other, { headers: { host: `evil.example.com:${port}` } });
      expect(r.status, other).toBe(403);
    }
    // A rebinding page's request, by name and origin.
    const page = await raw(p.server.url, path, {
      headers: { host: `127.0.0.1:${port}`, origin: 'http://evil.example.com' },
    });
    expect(page.status).toBe(403);
    expect(page.text).not.toContain('secret row');
  });

  it('answers loopback names and the configured public name', async () => {
    const path = `/api/topics/${topic}/records?offset=0`;
    for (const host of [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `LOCALHOST:${port}`,
      `[::1]:${port}`,
      'localhost',
      `tributary.internal:${port}`,
    ]) {
      const r = await raw(p.server.url, path, { headers: { host } });
      expect(r.status, host).toBe(200);
      expect(r.text).toContain('secret row');
      expect(r.headers['access-control-allow-origin'], host).toBeUndefined();
    }
    const sameOrigin = await raw(p.server.url, path, {
      headers: { host: `localhost:${port}`, origin: `http://localhost:${port}` },
    });
    expect(sameOrigin.status).toBe(200);
  });

  it('answers a too-large body with 413 PAYLOAD_TOO_LARGE', async () => {
    const body = JSON.stringify({ tables: ['public.items'], pad: 'x'.repeat(2 * 1024 * 1024) });
    const r = await raw(p.server.url, '/api/snapshots', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    expect(r.status).toBe(413);
    expect(r.body.error).toBe('PAYLOAD_TOO_LARGE');
    expect(r.body.message).toMatch(/body.*larger than/i);
  });

  it('refuses an offset beyond the safe integers, naming the field', async () => {
    for (const offset of ['1e30', '9007199254740993', '1e400']) {
      const r = await p.request(`/api/topics/${topic}/records?offset=${offset}`);
      expect(r.status, offset).toBe(400);
      expect(r.body.error, `${offset}: ${r.text}`).toBe('BAD_REQUEST');
      expect(r.body.message, offset).toContain('offset');
      expect(r.text, offset).not.toContain('e+30');
    }
    for (const path of ['/api/dead-letters?offset=1e30', `/api/topics/${topic}/records?partition=1e30`]) {
      const r = await p.request(path);
      expect(r.status, path).toBe(400);
    }
  });

  it('refuses a JSON body with __proto__ or constructor.prototype, saying what is refused', async () => {
    for (const body of [
      '{"tables":["public.items"],"__proto__":{"polluted":true}}',
      '{"tables":["public.items"],"constructor":{"prototype":{"polluted":true}}}',
    ]) {
      const r = await raw(p.server.url, '/api/snapshots', {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body,
      });
      expect(r.status, body).toBe(400);
      expect(r.body.error).toBe('BAD_REQUEST');
      expect(r.body.message).toMatch(/__proto__|constructor/);
      expect(r.body.message).not.toContain('not valid JSON');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    }
  });
});
