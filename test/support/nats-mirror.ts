import { afterAll, beforeAll, expect } from 'vitest';
import { writeConsumer } from '../integration/consumer-worker-support.ts';
import { waitFor } from './capture-harness.ts';
import { type CliProcess, startCli } from './cli.ts';
import { createDatabase, PG_VERSIONS, type TestDatabase } from './databases.ts';
import { type NatsSuite, natsSuite } from './nats-suite.ts';

/**
 * The setup shared by the `consumers run` kill tests: a source table `src`, a sink table `dst`
 * and a table `applied` (one row per record applied, with its partition and offset), a
 * transactional `mirror` consumer that copies `src` into `dst`, and a capture into a NATS log.
 */
export const MIRROR_TABLES = `
  create table src (id int primary key, v int not null);
  create table dst (id int primary key, v int not null);
  create table applied (part int not null, off bigint not null, pid int not null);`;

/** Writes the `mirror` consumer of `topic` into `consumersDir`. */
export function writeMirrorConsumer(consumersDir: string, topic: string, db: TestDatabase): void {
  writeConsumer(
    consumersDir,
    'mirror',
    `export default defineConsumer({
  topics: [${JSON.stringify(topic)}],
  batch: { maxRecords: 20 },
  concurrency: 2,
  transactional: postgresTarget(${JSON.stringify(db.url)}),
  async handle(batch, ctx) {
    for (const r of batch) {
      if (r.value === null) continue;
      const e = r.value;
      if (e.op === 'd') await ctx.tx.query('delete from dst where id = $1', [e.before.id]);
      else await ctx.tx.query('insert into dst values ($1, $2) on conflict (id) do update set v = excluded.v', [e.after.id, e.after.v]);
      await ctx.tx.query('insert into applied values ($1, $2, $3)', [r.partition, r.offset, process.pid]);
    }
  },
});`,
  );
}

/** Starts `tributary run` capturing `src` into the NATS log, once it streams. */
export async function startMirrorCapture(options: {
  db: TestDatabase;
  logUrl: string;
  topicPrefix: string;
  partitions: number;
  makeDir: () => string;
  env: NodeJS.ProcessEnv;
}): Promise<CliProcess> {
  const { db, makeDir } = options;
  const capture = startCli(
    [
      'run',
      ...['--source', db.url, '--data-dir', makeDir(), '--log', options.logUrl],
      ...['--slot', db.name, '--publication', db.name, '--tables', 'public.src'],
      ...['--topic-prefix', options.topicPrefix, '--partitions', String(options.partitions)],
      ...['--consumers', makeDir()],
    ],
    { env: options.env },
  );
  await waitFor(
    () => capture.stderr.includes('"msg":"replication started"') || capture.child.exitCode !== null,
    'replication to start',
    60_000,
  );
  expect(capture.child.exitCode, capture.stderr).toBeNull();
  return capture;
}

/**
 * `natsSuite` plus a PostgreSQL database named after `name` holding `MIRROR_TABLES`, created
 * before the suite and dropped after its processes are killed.
 */
export function natsMirrorSuite(
  dirs: { removeAll(): void },
  name: string,
): NatsSuite & { readonly db: TestDatabase } {
  let db: TestDatabase | undefined;
  beforeAll(async () => {
    db = await createDatabase(PG_VERSIONS.at(-1)!, name);
    await db.query(MIRROR_TABLES);
  }, 60_000);
  // Registered before natsSuite's: after-hooks run last-registered first, so the processes go first.
  afterAll(async () => {
    await db?.drop();
  });
  return Object.defineProperty(natsSuite(dirs), 'db', { get: () => db! }) as NatsSuite & {
    readonly db: TestDatabase;
  };
}
