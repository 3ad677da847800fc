import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/cli/free-port.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const VERSION = 18;
const ENV = { DATABASE_URL: '', TRIBUTARY_TOKEN: '', TRIBUTARY_SOURCE_FILE: '', TRIBUTARY_TOKEN_FILE: '' };

/** The URL with a password in it (the test clusters trust local connections: any password works). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

describe('secrets stay off the command line (issue 14 item 2)', () => {
  const dirs = tempDirs('tributary-secrets-');
  let db: TestDatabase;
  let dir: string;

  beforeAll(async () => {
    db = await createDatabase(VERSION, 'sec');
    await db.query('create table items (id int primary key, name text)');
    dir = dirs.make();
  });
  afterAll(async () => {
    await db?.drop();
    dirs.removeAll();
  });

  it('warns once when a password or token arrives in argv', async () => {
    const r = await cli(
      ['doctor', '--source', withPassword(db.url, 'argv-password-1'), '--slot', 'x', '--publication', 'x'],
      { env: ENV },
    );
    expect(r.stderr.match(/warning: a database password \(in --source\)/g)?.length).toBe(1);
    expect(r.stderr).toContain('--source-file');
    const t = await cli(['run', '--token', 'argv-token-0123456789', '--source-file', join(dir, 'missing')], {
      env: ENV,
    });
    expect(t.stderr.match(/the API token \(--token\)/g)?.length).toBe(1);
    // A file that cannot be read is a configuration error naming the flag.
    expect(t.code).toBe(2);
    expect(t.stderr).toContain(`cannot read --source-file ${join(dir, 'missing')}`);
  });

  it('takes the source and the token from files, and the source from TRIBUTARY_SOURCE_FILE, with no warning', async () => {
    const sourceFile = join(dir, 'source.url');
    const tokenFile = join(dir, 'token');
    const password = 'file-password-2';
    const token = 'file-token-0123456789abcdef';
    writeFileSync(sourceFile, `${withPassword(db.url, password)}\n`, { mode: 0o600 });
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });

    const doctor = await cli(['doctor', '--slot', `s_${db.name}`, '--publication', `p_${db.name}`], {
      env: { ...ENV, TRIBUTARY_SOURCE_FILE: sourceFile },
    });
    expect(doctor.stderr).not.toContain('warning:');
    expect(doctor.stdout + doctor.stderr).toContain(db.name);
    expect(doctor.stdout + doctor.stderr).not.toContain('no source database given');

    const port = await freePort();
    const run = startCli(
      [
        'run',
        '--source-file',
        sourceFile,
        '--token-file',
        tokenFile,
        '--data-dir',
        join(dir, 'data'),
        '--slot',
        `s_${db.name}`,
        '--publication',
        `p_${db.name}`,
        '--snapshot-mode',
        'never',
        '--http-port',
        String(port),
      ],
      { env: ENV },
    );
    try {
      await waitFor(() => run.stderr.includes('dashboard:'), `the dashboard line in:\n${run.stderr}`);
      const cmdline = readFileSync(`/proc/${run.child.pid}/cmdline`, 'utf8');
      expect(cmdline).not.toContain(password);
      expect(cmdline).not.toContain(token);
      const base = `http://127.0.0.1:${port}`;
      await waitFor(async () => (await fetch(`${base}/api/status`)).status === 200, 'the API');
      const post = (t: string) =>
        fetch(`${base}/api/consumers/none/pause`, {
          method: 'POST',
          headers: { authorization: `Bearer ${t}` },
        });
      expect((await post('wrong-token-0123456789abc')).status).toBe(401);
      expect([404, 503]).toContain((await post(token)).status);
      expect(run.stderr).not.toContain('warning:');
      expect(run.stderr).not.toContain(password);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });
});
