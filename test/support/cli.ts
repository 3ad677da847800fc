import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/tributary.js', import.meta.url));

/**
 * What every CLI run in the tests starts from: no consumers (the repo's own `./consumers` would
 * otherwise run in every test) and no HTTP server (tests run side by side). A test about either
 * sets the variable itself.
 */
const NO_CONSUMERS = join(tmpdir(), 'tributary-test-no-consumers');
mkdirSync(NO_CONSUMERS, { recursive: true });
const TEST_ENV: NodeJS.ProcessEnv = { TRIBUTARY_CONSUMERS_DIR: NO_CONSUMERS, TRIBUTARY_HTTP_PORT: '0' };

/**
 * An environment for a CLI process that takes nothing from the developer's shell (source, data
 * directory, slot, consumers folder: all empty; an ephemeral HTTP port), plus `extra`.
 */
export function cleanCliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    DATABASE_URL: '',
    TRIBUTARY_DATA_DIR: '',
    TRIBUTARY_SLOT: '',
    TRIBUTARY_CONSUMERS_DIR: '',
    TRIBUTARY_HTTP_PORT: '0',
    ...extra,
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to completion. */
export function cli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ...TEST_ENV, ...options.env },
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tributary ${args.join(' ')} did not finish in time\n${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A long-running CLI process (run, up, read --follow) with its output collected. */
export interface CliProcess {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<CliResult>;
}

/** With `detached`, the process leads its own process group (signal the group as a terminal's Ctrl-C does). */
export function startCli(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean } = {},
): CliProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ...TEST_ENV, ...options.env },
    cwd: options.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  const proc: CliProcess = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => {
      child.on('close', (code, signal) =>
        resolve({ code, signal, stdout: proc.stdout, stderr: proc.stderr }),
      );
    }),
  };
  child.stdout!.on('data', (d) => {
    proc.stdout += d;
  });
  child.stderr!.on('data', (d) => {
    proc.stderr += d;
  });
  return proc;
}
