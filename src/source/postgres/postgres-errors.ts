import { ConfigError, SourceConnectionError, SourceSetupError, TributaryError } from '../../core/errors.ts';

/** Where the source is, for messages: never the password. */
export function describeTarget(url: string): string {
  try {
    const u = new URL(url);
    return `${u.username ? `${decodeURIComponent(u.username)}@` : ''}${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return 'the configured source';
  }
}

/** Checks the form of a source URL before connecting, so a typo gets a precise message. */
export function checkSourceUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new ConfigError(`source URL is not a valid URL: ${JSON.stringify(redact(url))}`, {
      cause,
      hint: 'use the form postgres://user:password@host:5432/database',
    });
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(
      `source URL must start with postgres:// or postgresql://, not ${parsed.protocol}//`,
      {
        hint: 'use the form postgres://user:password@host:5432/database',
      },
    );
  }
}

function redact(url: string): string {
  return url.replace(/\/\/([^:/@]*):[^@]*@/, '//$1:***@');
}

interface DriverError {
  code?: string;
  message?: string;
  routine?: string;
}

/**
 * Classifies a `pg` or network error once, at the boundary, into our hierarchy. Setup problems
 * (wrong URL, privileges, configuration) are not retryable; dropped connections are.
 */
export function classifyPgError(error: unknown, url: string): TributaryError {
  if (error instanceof TributaryError) return error;
  const e = (error ?? {}) as DriverError;
  const target = describeTarget(url);
  const message = e.message ?? String(error);
  const setup = (code: string, text: string, hint: string) =>
    new SourceSetupError(code, text, { cause: error, hint });
  switch (e.code) {
    case 'ECONNREFUSED':
      return new SourceConnectionError(`cannot connect to PostgreSQL at ${target}: connection refused`, {
        cause: error,
        hint: 'check the host and port of --source (or DATABASE_URL) and that the server is running',
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return setup(
        'SOURCE_UNREACHABLE',
        `cannot resolve the host of ${target}`,
        'check the host name in --source',
      );
    case '28P01':
    case '28000':
      return setup(
        'SOURCE_AUTH_FAILED',
        `PostgreSQL refused the login to ${target}: ${message}`,
        message.includes('replication')
          ? 'allow replication connections in pg_hba.conf (a line such as: host replication <user> <address> scram-sha-256)'
          : 'check the user name and password in --source, and pg_hba.conf',
      );
    case '3D000':
      return setup(
        'SOURCE_DATABASE_MISSING',
        `database does not exist at ${target}: ${message}`,
        'create it or fix the database name in --source',
      );
    case '42501':
      return setup(
        'NO_REPLICATION_PRIVILEGE',
        `the role lacks the privilege for logical replication: ${message}`,
        'run: ALTER ROLE <user> WITH REPLICATION;  (or connect as a superuser)',
      );
    case '53400':
      return setup(
        'SLOTS_EXHAUSTED',
        `no free replication slot: ${message}`,
        'drop unused slots (SELECT pg_drop_replication_slot(name)) or raise max_replication_slots and restart PostgreSQL',
      );
    case '55006':
      return new SourceConnectionError(`the replication slot is in use by another connection: ${message}`, {
        cause: error,
        hint: 'another capture is running on this slot; stop it or use another --slot',
      });
    case '55000':
      if (/wal_level/.test(message)) {
        return setup(
          'WAL_LEVEL',
          `logical replication is not enabled: ${message}`,
          'run: ALTER SYSTEM SET wal_level = logical;  then restart PostgreSQL',
        );
      }
      return setup('SOURCE_STATE', message, 'see the PostgreSQL message above');
    default:
      break;
  }
  if (
    ['ECONNRESET', 'EPIPE', 'ETIMEDOUT', '57P01', '57P02', '57P03', '08006', '08003', '08001'].includes(
      e.code ?? '',
    ) ||
    /Connection terminated|connection ended|socket hang up|Client has encountered a connection error/i.test(
      message,
    )
  ) {
    return new SourceConnectionError(`lost the connection to ${target}: ${message}`, { cause: error });
  }
  return new TributaryError('SOURCE_ERROR', `PostgreSQL error at ${target}: ${message}`, { cause: error });
}
