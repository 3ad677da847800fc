import pino, { type Logger } from 'pino';
import { isTributaryError } from '../core/errors.ts';

/** The structured log goes to stderr so that stdout stays for command output (JSON lines). */
export function createLogger(level: string): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination(2));
}

/** Prints an error the way a person can act on it, and returns the process exit code. */
export function reportError(error: unknown): number {
  if (isTributaryError(error)) {
    process.stderr.write(`error [${error.code}]: ${error.message}\n`);
    if (error.hint) process.stderr.write(`  fix: ${error.hint}\n`);
    if (process.env.TRIBUTARY_DEBUG && error.cause) process.stderr.write(`  cause: ${String(error.cause)}\n`);
    return error.code === 'CONFIG_INVALID' ? 2 : 1;
  }
  process.stderr.write(`error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 1;
}

/** Resolves on the first SIGINT or SIGTERM; a second one exits at once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const on = (signal: NodeJS.Signals) => {
      if (received) process.exit(130);
      received = true;
      resolve(signal);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
