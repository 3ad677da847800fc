/**
 * `run` with consumers written as index.mjs and index.cjs: both handle every record; a folder
 * without an entry module is named as skipped in run's output and in the `consumers` listing.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';
import { createDatabase, type TestDatabase } from '../support/databases.ts';

const ROWS = 20;
const dir = tempDir('tributary-module-kinds-');
const consumers = join(dir.path, 'consumers');
const dataDir = join(dir.path, 'data');
const ENV: NodeJS.ProcessEnv = {
  DATABASE_URL: '',
  TRIBUTARY_DATA_DIR: '',
  TRIBUTARY_CONSUMERS_DIR: consumers,
  TRIBUTARY_LOG_LEVEL: 'info',
};
let db: TestDatabase;
let proc: CliProcess | undefined;

const handled = (name: string) => {
  const file = join(dir.path, `${name}.out`);
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
};

beforeAll(async () => {
  db = await createDatabase(15, 'kinds');
  await db.query('create table items (id int primary key)');
  await db.query(`insert into items select generate_series(1, ${ROWS})`);
  mkdirSync(join(consumers, 'esm-one'), { recursive: true });
  mkdirSync(join(consumers, 'cjs-one'), { recursive: true });
  mkdirSync(join(consumers, 'wip'), { recursive: true });
  writeFileSync(
    join(consumers, 'esm-one', 'index.mjs'),
    `import { appendFileSync } from 'node:fs';
export default {
  topics: ['mk.public.items'],
  async handle(batch) {
    for (const r of batch) appendFileSync(${JSON.stringify(join(dir.path, 'esm-one.out'))}, r.offset + '\\n');
  },
};
`,
  );
  writeFileSync(
    join(consumers, 'cjs-one', 'index.cjs'),
    `const { appendFileSync } = require('node:fs');
module.exports = {
  topics: ['mk.public.items'],
  async handle(batch) {
    for (const r of batch) appendFileSync(${JSON.stringify(join(dir.path, 'cjs-one.out'))}, r.offset + '\\n');
  },
};
`,
  );
  writeFileSync(join(consumers, 'wip', 'main.ts'), 'export {};\n');
}, 60_000);

afterAll(async () => {
  if (proc && proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
  await proc?.exited;
  await db?.drop();
  dir.remove();
});

describe('consumer modules of every common kind', () => {
  it('runs index.mjs and index.cjs consumers and names the folder it skips', async () => {
    proc = startCli(
      ['run', '--source', db.url, '--data-dir', dataDir, '--slot', 'kinds', '--topic-prefix', 'mk'],
      { env: ENV },
    );
    await waitFor(
      () =>
        (handled('esm-one').length >= ROWS && handled('cjs-one').length >= ROWS) ||
        proc!.child.exitCode !== null,
      'both consumers to handle every record',
      90_000,
    );
    expect(handled('esm-one')).toHaveLength(ROWS);
    expect(handled('cjs-one')).toHaveLength(ROWS);
    const skipped = `skipped ${join(consumers, 'wip')}: it has no entry module (one of index.ts, index.mts, index.cts, index.js, index.mjs, index.cjs)`;
    expect(proc.stderr).toContain(skipped);
    expect(proc.stderr).toContain('consumers: cjs-one, esm-one');

    const listing = await cli(['consumers', '--data-dir', dataDir], { env: ENV });
    expect(listing.code, listing.stderr).toBe(0);
    expect(listing.stdout).toMatch(/^cjs-one\s+running/m);
    expect(listing.stdout).toMatch(/^esm-one\s+running/m);
    expect(listing.stdout).toContain(skipped);
    proc.child.kill('SIGTERM');
    await proc.exited;
  });
});
