/**
 * One error hierarchy for the whole program. Every error has a stable `code` (for logs, the API
 * and tests), says whether retrying can help, and keeps its `cause`. Driver errors are classified
 * once, where they enter (see `source/postgres/postgres-errors.ts`), never flattened to strings.
 */
export class TributaryError extends Error {
  readonly code: string;
  readonly retryable: boolean;
  /** What the user can do about it, printed under the message by the CLI. */
  readonly hint: string | undefined;

  constructor(
    code: string,
    message: string,
    options: { cause?: unknown; retryable?: boolean; hint?: string } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
    this.hint = options.hint;
  }
}

/** Invalid configuration: a flag, a file entry or an environment variable. Never retryable. */
export class ConfigError extends TributaryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super('CONFIG_INVALID', message, options);
  }
}

/** The source database cannot be used as configured (wal_level, privileges, slots, identity...). */
export class SourceSetupError extends TributaryError {}

/** The connection to the source dropped or timed out; capture reconnects with backoff. */
export class SourceConnectionError extends TributaryError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super('SOURCE_CONNECTION', message, { ...options, retryable: true });
  }
}

/** The replication stream carried something the decoder does not understand. */
export class DecodeError extends TributaryError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super('DECODE_FAILED', message, options);
  }
}

/** The event log could not be opened, read or written. */
export class LogError extends TributaryError {}

export function isTributaryError(error: unknown): error is TributaryError {
  return error instanceof TributaryError;
}
