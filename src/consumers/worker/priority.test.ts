import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { describe, expect, it } from 'vitest';
import { SCHED_IDLE } from './priority.ts';

interface Seen {
  lowered: { niceness: number; idle: boolean; autogroup: boolean } | null;
  policies: number[];
  niceness: number[];
  autogroup: string;
  session: number;
  pid: number;
}

/** Runs `lowerPriority(niceness)` in a fresh Node process and returns what that process then sees. */
function lowerInChild(niceness: number, detached: boolean): Promise<Seen> {
  const script = `
    import { readdirSync, readFileSync } from 'node:fs';
    import { lowerPriority } from ${JSON.stringify(new URL('./priority.ts', import.meta.url).href)};
    const fields = (path) => { const s = readFileSync(path, 'utf8'); return s.slice(s.lastIndexOf(')') + 2).split(' '); };
    const l = lowerPriority(${niceness});
    const autogroup = l ? await l.autogroup : false;
    const tasks = readdirSync('/proc/self/task').map((t) => fields('/proc/self/task/' + t + '/stat'));
    process.stdout.write(JSON.stringify({
      lowered: l ? { niceness: l.niceness, idle: l.idle, autogroup } : null,
      policies: tasks.map((f) => Number(f[38])),
      niceness: tasks.map((f) => Number(f[16])),
      autogroup: (() => { try { return readFileSync('/proc/self/autogroup', 'utf8').trim(); } catch { return ''; } })(),
      session: Number(fields('/proc/self/stat')[3]),
      pid: process.pid,
    }));`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    detached,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => {
    out += d;
  });
  child.stderr.on('data', (d) => {
    err += d;
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out) as Seen) : reject(new Error(`child exited ${code}: ${err}`)),
    );
  });
}

function hasChrt(): boolean {
  try {
    execFileSync('chrt', ['--help'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** '' on kernels built without autogroups. */
function ownAutogroup(): string {
  try {
    return readFileSync('/proc/self/autogroup', 'utf8').trim();
  } catch {
    return '';
  }
}

describe.runIf(process.platform === 'linux' && hasChrt())('lowerPriority', () => {
  it('puts every thread in SCHED_IDLE at the lowered niceness, and leaves a shared autogroup alone', async () => {
    const seen = await lowerInChild(5, false);
    const target = Math.min(19, getPriority() + 5);
    expect(seen.lowered).toEqual({ niceness: target, idle: true, autogroup: false });
    expect(seen.policies.length).toBeGreaterThan(1);
    expect(new Set(seen.policies)).toEqual(new Set([SCHED_IDLE]));
    expect(new Set(seen.niceness)).toEqual(new Set([target]));
    // Same session as this test: lowering the group would have lowered the parent too.
    expect(seen.session).not.toBe(seen.pid);
    expect(seen.autogroup).toBe(ownAutogroup());
  });

  it('gives a detached replica`s own autogroup the niceness, where the kernel has autogroups', async () => {
    const seen = await lowerInChild(7, true);
    const target = Math.min(19, getPriority() + 7);
    expect(seen.session).toBe(seen.pid);
    if (seen.autogroup === '') {
      // A kernel without autogroups (CONFIG_SCHED_AUTOGROUP off), or a process in a cgroup that
      // autogroups do not schedule (the file reads empty there): nothing lowered, and it says so.
      expect(seen.lowered).toEqual({ niceness: target, idle: true, autogroup: false });
      return;
    }
    expect(seen.lowered).toEqual({ niceness: target, idle: true, autogroup: true });
    expect(seen.autogroup).toMatch(new RegExp(`^/autogroup-\\d+ nice ${target}$`));
    // This test's own group reads empty when it is the default one (a process of init's session,
    // as under a CI runner); otherwise the replica's group must be another one.
    const own = ownAutogroup();
    if (own !== '') expect(seen.autogroup.split(' ')[0]).not.toBe(own.split(' ')[0]);
  });

  it('changes nothing at niceness 0', async () => {
    const seen = await lowerInChild(0, true);
    expect(seen.lowered).toBeNull();
    expect(new Set(seen.policies)).toEqual(new Set([0]));
    if (seen.autogroup !== '') expect(seen.autogroup).toMatch(/ nice 0$/);
  });
});
