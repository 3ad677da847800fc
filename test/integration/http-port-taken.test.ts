/**
 * A taken HTTP port: `up` moves on to the next free port and prints it (the dashboard answers
 * there); `run` with an explicitly chosen port keeps it and says the server did not start.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const ENV: NodeJS.ProcessEnv = { DATABASE_URL: '', TRIBUTARY_DATA_DIR: '', TRIBUTARY_SLOT: '' };
const started: CliProcess[] = [];
const dirs = tempDirs('tributary-port-');
let db: TestDatabase;
let occupied: Server;
let port: number;

beforeAll(async () => {
  db = await createDatabase(15, 'port');
  await db.query('create table t (id int primary key)');
  port = await freePort();
  occupied = createServer();
  await new Promise<void>((resolve) => occupied.listen(port, '127.0.0.1', resolve));
}, 60_000);

afterAll(async () => {
  await Promise.all(
    started.map(async (p) => {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }),
  );
  await new Promise((resolve) => occupied?.close(resolve));
  await db?.drop();
  dirs.removeAll();
});

function start(args: string[]): CliProcess {
  const proc = startCli(args, { env: { ...ENV, TRIBUTARY_HTTP_PORT: String(port) } });
  started.push(proc);
  return proc;
}

describe('a taken HTTP port', () => {
  it('up serves the dashboard on the next free port and prints it; a run beside it is refused', async () => {
    const upDir = dirs.make();
    const up = start(['up', '--source', db.url, '--data-dir', upDir, '--slot', 'port_up']);
    await waitFor(
      () => /dashboard: http:\/\/\S+\n/.test(up.stderr) || up.child.exitCode !== null,
      'the dashboard line',
      60_000,
    );
    const url = /dashboard: (http:\/\/\S+)\n/.exec(up.stderr)?.[1];
    expect(url, up.stderr).toBeDefined();
    const listening = Number(new URL(url!).port);
    expect(listening).toBeGreaterThan(port);
    expect(up.stderr).toContain(
      `port ${port} is taken (EADDRINUSE): the dashboard and API listen on port ${listening}`,
    );
    const health = await fetch(new URL('/healthz', url));
    expect(health.status).toBeLessThan(500);
    // The case: a `run` beside a running `up` on its data directory is refused, naming it.
    const beside = await cli(['run', '--source', db.url, '--data-dir', upDir, '--slot', 'port_beside'], {
      env: { ...ENV, TRIBUTARY_HTTP_PORT: '0' },
    });
    expect(beside.code).toBe(1);
    expect(beside.stderr).toContain(`is owned by \`tributary up\` (pid ${up.child.pid}, since `);
    up.child.kill('SIGKILL');
    await up.exited;
  });

  it('run with an explicit port keeps it and says the server did not start', async () => {
    const run = start(['run', '--source', db.url, '--data-dir', dirs.make(), '--slot', 'port_run']);
    await waitFor(
      () => run.stderr.includes('dashboard and API not started') || run.child.exitCode !== null,
      'the message about the port',
      60_000,
    );
    expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port} (EADDRINUSE)`);
    expect(run.stderr).not.toContain('dashboard: http');
    run.child.kill('SIGKILL');
    await run.exited;
  });
});
