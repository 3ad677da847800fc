import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { startCapture } from '../../src/capture/capture-runner.ts';
import type { TributaryConfig } from '../../src/config/config-schema.ts';
import { Supervisor } from '../../src/consumers/supervisor.ts';
import { attachConsumers, captureDeps } from '../../src/server/control-plane.ts';
import type { ControlPlaneDeps } from '../../src/server/control-plane-deps.ts';
import {
  type ControlPlane,
  type ControlPlaneOptions,
  startControlPlane,
} from '../../src/server/http-server.ts';
import { ServerMetrics } from '../../src/server/server-metrics.ts';
import { captureConfig, quietLogger, tempDirs } from '../support/capture-harness.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

export const TOKEN = 'test-token-0123456789abcdef';

export interface Pipeline {
  readonly db: TestDatabase;
  readonly config: TributaryConfig;
  readonly running: RunningCapture;
  readonly server: ControlPlane;
  /** `fetch` against the server; `token: true` sends the right token. */
  request(
    path: string,
    init?: { method?: string; body?: unknown; token?: string | boolean },
    // biome-ignore lint/suspicious/noExplicitAny: responses are JSON, checked field by field by the tests
  ): Promise<{ status: number; body: any; text: string; headers: Headers }>;
  stop(): Promise<void>;
}

/**
 * A real pipeline for the server tests: a fresh database with `items(id, name)`, the capture on
 * its own slot and data directory, and the control plane on a free loopback port.
 */
export async function startPipeline(
  version: number,
  options: {
    settings?: Record<string, unknown>;
    server?: Partial<ControlPlaneOptions>;
    deps?: (running: RunningCapture, config: TributaryConfig) => Partial<ControlPlaneDeps>;
    setup?: (db: TestDatabase) => Promise<void>;
    sourceUrl?: (url: string) => string;
  } = {},
): Promise<Pipeline> {
  const dirs = tempDirs('tributary-server-');
  const db = await createDatabase(version, 'srv');
  let running: RunningCapture | undefined;
  let server: ControlPlane | undefined;
  try {
    await db.query('create table items (id int primary key, name text)');
    await options.setup?.(db);
    const config = captureConfig(options.sourceUrl ? options.sourceUrl(db.url) : db.url, dirs.make(), {
      'source.slot': `s_${db.name}`,
      'source.publication': `p_${db.name}`,
      'snapshot.mode': 'never',
      ...options.settings,
    });
    const metrics = new ServerMetrics();
    running = await startCapture(config, {
      logger: quietLogger,
      statusIntervalMs: 200,
      observer: metrics.captureObserver,
    });
    server = await startControlPlane({
      host: '127.0.0.1',
      port: 0,
      token: TOKEN,
      logger: quietLogger,
      metrics,
      historyIntervalMs: 300,
      ...options.server,
    });
    server.attach({ ...captureDeps(running, config), ...options.deps?.(running, config) });
    const url = server.url;
    const r = running;
    const s = server;
    return {
      db,
      config,
      running: r,
      server: s,
      async request(path, init = {}) {
        const headers: Record<string, string> = {};
        const token = init.token === true ? TOKEN : init.token;
        if (typeof token === 'string') headers.authorization = `Bearer ${token}`;
        if (init.body !== undefined) headers['content-type'] = 'application/json';
        const response = await fetch(new URL(path, url), {
          method: init.method ?? 'GET',
          headers,
          ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
        });
        const text = await response.text();
        let body: unknown = null;
        try {
          body = JSON.parse(text);
        } catch {
          body = null;
        }
        return { status: response.status, body, text, headers: response.headers };
      },
      async stop() {
        await s.stop();
        await r.stop();
        await db.drop();
        dirs.removeAll();
      },
    };
  } catch (error) {
    await server?.stop();
    await running?.stop();
    await db.drop();
    dirs.removeAll();
    throw error;
  }
}

/**
 * A real consumer (supervised child processes) on the pipeline's items topic that fails on the
 * row with id 7 while the `flag` file exists: its records go to the dead letters after 2 tries.
 */
export async function startPoisonConsumer(
  p: Pipeline,
): Promise<{ flag: string; supervisor: Supervisor; stop(): Promise<void> }> {
  const dirs = tempDirs('tributary-consumers-');
  const root = dirs.make();
  const flag = join(root, 'poison.flag');
  writeFileSync(flag, 'on');
  const dir = join(root, 'consumers');
  mkdirSync(join(dir, 'poison'), { recursive: true });
  const topic = `${p.config.topicPrefix}.public.items`;
  writeFileSync(
    join(dir, 'poison', 'index.ts'),
    `import { existsSync } from 'node:fs';
import { defineConsumer } from ${JSON.stringify(resolve('src/consumers/define-consumer.ts'))};

export default defineConsumer({
  topics: [${JSON.stringify(topic)}],
  retry: { attempts: 2, initialDelayMs: 10, maxDelayMs: 20 },
  async handle(batch) {
    for (const r of batch) {
      const after = (r.value as { after?: { id?: number } } | null)?.after;
      if (after?.id === 7 && existsSync(${JSON.stringify(flag)})) throw new Error('item 7 is poison');
    }
  },
});
`,
  );
  const supervisor = new Supervisor({
    dataDir: p.config.dataDir,
    consumersDir: dir,
    logger: quietLogger,
    reconcileMs: 100,
    refreshMs: 200,
    watch: false,
  });
  await supervisor.start();
  attachConsumers(p.server, supervisor, { ...p.config, consumers: { ...p.config.consumers, dir } });
  return {
    flag,
    supervisor,
    async stop() {
      await supervisor.stop();
      dirs.removeAll();
    },
  };
}
