import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { failure, runningPostmaster } from './embedded-postgres-server.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A data directory whose postmaster.pid names `pid` (the layout PostgreSQL writes). */
function dataDir(pid: number): string {
  const dir = mkdtempSync(join(tmpdir(), 'pm-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'postmaster.pid'),
    `${pid}\n${dir}\n1765065600\n54321\n/tmp\n127.0.0.1\n  5432001  0\nready\n`,
  );
  return dir;
}

describe('a start that fails because the data directory is in use', () => {
  it('names the running postmaster (pid, port, start) and the directory instead of "another server might be running"', () => {
    const dir = dataDir(process.pid);
    expect(runningPostmaster(dir)).toEqual({
      pid: process.pid,
      port: 54321,
      startedAt: new Date(1765065600_000),
    });
    const error = failure(
      dir,
      new Error('pg_ctl: another server might be running; trying to start server anyway'),
    );
    expect(error.code).toBe('EMBEDDED_POSTGRES_IN_USE');
    expect(error.message).toBe(
      `the embedded PostgreSQL data directory ${dir} is in use by a running postmaster (pid ${process.pid}, port 54321, started 2025-12-07T00:00:00.000Z), probably another \`tributary up\` on the same --data-dir`,
    );
    expect(error.hint).toContain(`kill ${process.pid}`);
  });

  it('a stale pid file (its process gone) is no owner: the plain failure with the log file', () => {
    const dir = dataDir(2 ** 22 + 12345);
    expect(runningPostmaster(dir)).toBeUndefined();
    const error = failure(dir, new Error('boom'), join(dir, 'server.log'));
    expect(error.code).toBe('EMBEDDED_POSTGRES_FAILED');
    expect(error.hint).toContain('server.log');
  });
});
