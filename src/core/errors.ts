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

/**
 * A failure no retry fixes and no single record is to blame for: the target cannot take what the
 * stream now carries (a column whose type changed incompatibly). The consumer stops: state
 * `failed` with this message, nothing retried one by one, nothing dead-lettered, until it is
 * restarted (`tributary consumers restart`) once the cause is fixed. Told by `stopsConsumer`
 * (a sink module may load its own copy of this class).
 */
export class ConsumerStopError extends TributaryError {
  readonly stopsConsumer = true;
}

/** Whether `error` asks the consumer to stop (see `ConsumerStopError`). */
export function stopsConsumer(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { stopsConsumer?: unknown }).stopsConsumer === true
  );
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

/**
 * The disk of the event log is full (`LOG_DISK_FULL`). Not a lost connection: the capture stops
 * appending, keeps its slot and its position, says so (status, /readyz, metric, alert) and
 * resumes by itself, from its last durable position, once `spaceReturned` resolves.
 */
export class DiskFullError extends LogError {
  /** Free bytes on the log's file system when the append failed. */
  readonly freeBytes: number;
  /** Free bytes the capture waits for before it appends again. */
  readonly neededBytes: number;
  /** Resolves once that much space is free (polls the file system); rejects on abort. */
  readonly spaceReturned: (signal?: AbortSignal) => Promise<void>;

  constructor(
    message: string,
    options: {
      cause?: unknown;
      freeBytes: number;
      neededBytes: number;
      spaceReturned: (signal?: AbortSignal) => Promise<void>;
    },
  ) {
    super('LOG_DISK_FULL', message, {
      cause: options.cause,
      retryable: true,
      hint: `free at least ${Math.ceil(options.neededBytes / 1024 / 1024)} MB on the disk of the data directory (or lower log.retention); capture resumes by itself`,
    });
    this.freeBytes = options.freeBytes;
    this.neededBytes = options.neededBytes;
    this.spaceReturned = options.spaceReturned;
  }
}

export function isTributaryError(error: unknown): error is TributaryError {
  return error instanceof TributaryError;
}
