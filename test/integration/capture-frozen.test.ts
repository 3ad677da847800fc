import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const VERSION = 18;

/**
 * Issue 14 item 7: a capture that stops running (SIGSTOP) is not shown as live: `status` says
 * unresponsive with the age of its figures, and once it runs again the stall raises an alert.
 */
describe('a frozen capture', () => {
  const dirs = tempDirs('tributary-frozen-');
  let db: TestDatabase;
  let run: CliProcess | undefined;
  let dataDir: string;
  let port: number;

  beforeAll(async () => {
    db = await createDatabase(VERSION, 'frz');
    await db.query('create table items (id int primary key, name text)');
    dataDir = join(dirs.make(), 'data');
    port = await freePort();
    run = startCli(
      [
        'run',
        '--data-dir',
        dataDir,
        '--slot',
        `s_${db.name}`,
        '--publication',
        `p_${db.name}`,
        '--snapshot-mode',
        'never',
        '--http-port',
        String(port),
      ],
      {
        env: {
          DATABASE_URL: db.url,
          TRIBUTARY_ALERTS_INTERVAL_MS: '300',
          TRIBUTARY_ALERTS_EVENT_LOOP_STALL_MS: '3000',
        },
      },
    );
  });
  afterAll(async () => {
    if (run && run.child.exitCode === null) {
      run.child.kill('SIGCONT');
      run.child.kill('SIGTERM');
      await run.exited;
    }
    await db?.drop();
    dirs.removeAll();
  });

  const status = async () => {
    const r = await cli(['status', '--data-dir', dataDir, '--json']);
    try {
      return JSON.parse(r.stdout) as { state: string; ageSeconds: number | null; reason?: string };
    } catch {
      // Before the capture made its log, status has nothing to read yet.
      return { state: `no answer (${r.code}): ${r.stderr.trim()}`, ageSeconds: null };
    }
  };

  it('is shown unresponsive with the age of its figures, and the stall raises an alert', async () => {
    await waitFor(async () => (await status()).state === 'running', `running:\n${run!.stderr}`);
    process.kill(run!.child.pid!, 'SIGSTOP');
    try {
      const frozen = await waitFor(async () => {
        const s = await status();
        return s.state === 'unresponsive' ? s : undefined;
      }, 'status to say unresponsive');
      expect(frozen.ageSeconds).toBeGreaterThanOrEqual(10);
      expect(frozen.reason).toMatch(/stopped/);
      const text = await cli(['status', '--data-dir', dataDir]);
      expect(text.stdout).toMatch(
        /^state\s+unresponsive \(pid \d+\): no report for [\d.]+ s; the process is stopped/m,
      );
      expect(text.stdout).toMatch(/^updated\s+[\d.]+ s ago$/m);
      expect(text.stdout).not.toMatch(/^state\s+running/m);
    } finally {
      process.kill(run!.child.pid!, 'SIGCONT');
    }
    await waitFor(async () => (await status()).state === 'running', 'running again');
    const alerts = await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${port}/api/alerts`);
      const body = (await r.json()) as { active: { rule: string; summary: string }[] };
      return body.active.find((a) => a.rule === 'event_loop_stall');
    }, 'the event_loop_stall alert');
    expect(alerts.summary).toMatch(/did not run for \d+\.\d s/);
  });
});
