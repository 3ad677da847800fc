import { createServer as createHttpServer, type Server } from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/capture-harness.ts';
import { CuttableProxy } from '../support/pg-proxy.ts';
import { type Pipeline, startPipeline } from './server-support.ts';

const VERSION = 15;

/** Collects the webhook's deliveries. */
async function webhookReceiver(): Promise<{
  url: string;
  messages: { text: string; blocks: unknown[] }[];
  server: Server;
}> {
  const messages: { text: string; blocks: unknown[] }[] = [];
  const server = createHttpServer((request, response) => {
    let body = '';
    request.on('data', (d) => {
      body += d;
    });
    request.on('end', () => {
      messages.push(JSON.parse(body));
      response.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`, messages, server };
}

describe('alert webhook', () => {
  let p: Pipeline | undefined;
  let proxy: CuttableProxy | undefined;
  let receiver: Awaited<ReturnType<typeof webhookReceiver>> | undefined;

  afterAll(async () => {
    await proxy?.open().catch(() => undefined);
    await p?.stop();
    await proxy?.cut();
    receiver?.server.close();
  });

  it('fires once when capture stays disconnected, resolves once when it is back', async () => {
    receiver = await webhookReceiver();
    const hook = receiver;
    p = await startPipeline(VERSION, {
      // The capture reaches PostgreSQL through the proxy, opened before it starts.
      setup: async (db) => {
        const u = new URL(db.url);
        proxy = new CuttableProxy(u.hostname, Number(u.port));
        await proxy.open();
      },
      sourceUrl: (url) => {
        const u = new URL(url);
        u.port = String(proxy!.port);
        return u.toString();
      },
      server: {
        alerts: {
          webhookUrl: hook.url,
          slotLagBytes: 0,
          consumerLagSeconds: 0,
          crashLoop: false,
          disconnectedSeconds: 1,
          intervalMs: 100,
        },
      },
      settings: { 'source.heartbeatIntervalMs': 0 },
    });
    const target = proxy!;
    const pipeline = p;
    await waitFor(() => pipeline.running.source.stats.connected, 'the capture connected through the proxy');
    expect(hook.messages).toEqual([]);

    await target.cut();
    await waitFor(() => hook.messages.length >= 1, 'the firing message', 30_000);
    expect(hook.messages[0]!.text).toMatch(/FIRING critical.*disconnected from the source/);
    expect(hook.messages[0]!.blocks).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'section' })]),
    );
    const active = await pipeline.request('/api/alerts');
    expect(active.body.active).toEqual([
      expect.objectContaining({
        id: 'capture_disconnected',
        rule: 'capture_disconnected',
        severity: 'critical',
      }),
    ]);
    expect(await pipeline.request('/metrics')).toMatchObject({
      text: expect.stringContaining('tributary_alerts_active{rule="capture_disconnected"} 1'),
    });
    const readyz = await pipeline.request('/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body.reasons).toEqual(['the source database is not connected']);
    // Several more failed reconnects (and evaluations) while it holds: still one message.
    const reconnects = pipeline.running.source.stats.reconnects;
    await waitFor(
      () => pipeline.running.source.stats.reconnects >= reconnects + 2,
      'two more reconnect attempts',
    );
    expect(hook.messages).toHaveLength(1);

    await target.open();
    await waitFor(() => hook.messages.length >= 2, 'the resolved message', 60_000);
    expect(hook.messages[1]!.text).toMatch(/RESOLVED.*disconnected from the source/);
    expect((await pipeline.request('/api/alerts')).body).toMatchObject({
      active: [],
      recent: [
        expect.objectContaining({ kind: 'resolved', id: 'capture_disconnected' }),
        expect.objectContaining({ kind: 'firing', id: 'capture_disconnected' }),
      ],
    });
    // It stays resolved: more samples pass (the sampler and the rules share the event loop), no message.
    const samples = (await pipeline.request('/api/history')).body.samples.length;
    await waitFor(
      async () => (await pipeline.request('/api/history')).body.samples.length >= Math.min(150, samples + 3),
      'three more samples',
    );
    expect(hook.messages).toHaveLength(2);
  });
});
