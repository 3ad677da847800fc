import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { writeConsumer } from '../fixtures/consumers/supervisor-fixtures.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from '../support/databases.ts';

const ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_SLOT: '',
  TRIBUTARY_CONSUMERS_DIR: '',
};
const dirs = tempDirs('supervisor-failing-restart-');
const started: CliProcess[] = [];
let db: TestDatabase | undefined;

afterEach(async () => {
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  await db?.drop();
  db = undefined;
});
afterAll(() => dirs.removeAll());

interface ApiConsumer {
  name: string;
  state: string;
  failure: { reason: string; message: string; paused: boolean } | null;
  lastError: { message: string } | null;
}

describe.each(PG_VERSIONS.slice(-1))(
  'a consumer halted on dead letters, across restarts (PostgreSQL %i)',
  (version) => {
    it('still shows failing (paused) with the reason and the last error after `tributary run` restarts, in `consumers` and the API, until resumed', async () => {
      db = await createDatabase(version, 'failrestart');
      await db.query('create table orders (id int primary key, total numeric(10,2))');
      const dataDir = dirs.make();
      const consumersDir = dirs.make();
      const options = 'retry: { attempts: 1, initialDelayMs: 1 }, batch: { maxRecords: 5 }';
      writeConsumer(consumersDir, 'broken', {
        topics: ['fr.public.orders'],
        options,
        before: "throw new Error('downstream unavailable: connection refused');",
      });
      const run = async () => {
        const port = await freePort();
        const proc = startCli(
          [
            'run',
            '--source',
            db!.url,
            '--data-dir',
            dataDir,
            '--slot',
            db!.name,
            '--publication',
            db!.name,
            '--topic-prefix',
            'fr',
            '--consumers',
            consumersDir,
            '--http-port',
            String(port),
          ],
          { env: ENV },
        );
        started.push(proc);
        const base = `http://127.0.0.1:${port}`;
        await waitFor(
          async () => (await fetch(`${base}/api/status`).catch(() => undefined))?.status === 200,
          `the API of tributary run:\n${proc.stderr}`,
          120_000,
        );
        // 503 until the supervisor runs.
        const consumers = async () => {
          const r = await fetch(`${base}/api/consumers`);
          return r.status === 200 ? ((await r.json()) as ApiConsumer[]) : [];
        };
        return { proc, consumers };
      };

      const first = await run();
      await db.query('insert into orders select g, g * 1.5 from generate_series(1, 60) g');
      await waitFor(async () => {
        const [c] = await first.consumers();
        return c?.state === 'failing' && c.failure?.paused === true;
      }, 'the consumer failing and paused');
      first.proc.child.kill('SIGTERM');
      expect((await first.proc.exited).code).toBe(0);

      const second = await run();
      // The first statuses after the restart already say why (no plain `paused` in between).
      await waitFor(async () => (await second.consumers())[0]?.state !== undefined, 'a status');
      const [after] = await second.consumers();
      expect(after).toMatchObject({
        name: 'broken',
        state: 'failing',
        failure: { reason: 'dead_letters', paused: true },
        lastError: { message: expect.stringContaining('downstream unavailable: connection refused') },
      });
      expect(after!.failure!.message).toMatch(
        /records dead-lettered in a row .*tributary consumers resume broken/,
      );
      const table = await cli(['consumers', '--data-dir', dataDir], { env: ENV });
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/broken\s+failing \(paused\)\s.*downstream unavailable/);

      // Resumed after a fix: the kept failure is forgotten, and it stays forgotten over a restart.
      writeConsumer(consumersDir, 'broken', { topics: ['fr.public.orders'], version: 2, options });
      expect((await cli(['consumers', 'resume', 'broken', '--data-dir', dataDir], { env: ENV })).code).toBe(
        0,
      );
      await waitFor(async () => {
        const [c] = await second.consumers();
        return c?.state === 'running' && c.failure === null;
      }, 'the consumer running again');
      second.proc.child.kill('SIGTERM');
      expect((await second.proc.exited).code).toBe(0);
      const third = await run();
      await waitFor(async () => (await third.consumers())[0]?.state === 'running', 'running after a restart');
      expect((await third.consumers())[0]!.failure).toBeNull();
    });
  },
);
