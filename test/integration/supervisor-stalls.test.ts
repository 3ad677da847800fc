import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { OFFSETS_TABLE } from '../../src/consumers/transactional.ts';
import { supervisorControl } from '../../src/server/supervisor-control.ts';
import { handled, supervisorBed } from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';

const TOPIC = 'test.public.orders';
const ENV: NodeJS.ProcessEnv = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
const bed = supervisorBed('supervisor-stalls-');
const targets = mkdtempSync(join(tmpdir(), 'supervisor-stalls-targets-'));
afterAll(() => rmSync(targets, { recursive: true, force: true }));
const TRANSACTIONAL = fileURLToPath(new URL('../../src/consumers/transactional.ts', import.meta.url));

/** A target kept from another data directory: offsets far beyond this log's 40 records. */
function staleTarget(file: string, group: string): void {
  const db = new Database(file);
  db.exec(
    `create table ${OFFSETS_TABLE} (group_name text not null, topic text not null, partition integer not null,
       next_offset integer not null, updated_at integer not null, primary key (group_name, topic, partition))`,
  );
  const put = db.prepare(`insert into ${OFFSETS_TABLE} values (?, ?, ?, ?, 0)`);
  for (let p = 0; p < 4; p++) put.run(group, TOPIC, p, 5000 + p);
  db.close();
}

/** The offsets a target stores for `group` (read-only, beside the replica that writes them). */
function storedOffsets(file: string, group: string): number[] {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare(`select next_offset from ${OFFSETS_TABLE} where group_name = ?`).all(group) as {
        next_offset: number;
      }[]
    ).map((r) => r.next_offset);
  } finally {
    db.close();
  }
}

function transactional(file: string, offsetReset?: string) {
  return {
    topics: [TOPIC],
    prelude: `import { sqliteTarget } from ${JSON.stringify(TRANSACTIONAL)};`,
    options: `transactional: sqliteTarget(${JSON.stringify(file)})${offsetReset ? `, offsetReset: '${offsetReset}'` : ''}`,
  };
}

describe('stalls that look healthy', () => {
  it('warns about a subscribed topic that does not exist, naming the closest existing ones', async () => {
    const { dataDir, consumersDir, producer, supervisor } = await bed.run(
      { typo: { topics: ['test.public.order'] } },
      { preload: { topic: TOPIC, count: 10 } },
    );
    await producer.append('test.public.customers', 5);
    await producer.append('test.other.zebras', 5);
    const status = await waitFor(() => {
      const s = supervisor.api.status('typo');
      return s?.warnings?.length ? s : undefined;
    }, 'a warning');
    expect(status.warnings).toEqual([
      expect.stringMatching(
        /^topic test\.public\.order does not exist: nothing to read from it\. Existing topics, closest first: test\.public\.orders, test\.public\.customers, test\.other\.zebras /,
      ),
    ]);
    const [summary] = await supervisorControl(supervisor).list();
    expect(summary!.warnings).toEqual(status.warnings);
    const table = await cli(['consumers', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    expect(table.stdout).toMatch(/^warning: typo: topic test\.public\.order does not exist/m);
    // The consumer's own log says it too (what `tributary logs typo` prints).
    const logs = await cli(['logs', 'typo', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    expect(logs.stdout).toMatch(/topic test\.public\.order does not exist/);
    // Once the topic appears, the warning goes.
    await producer.append('test.public.order', 3);
    await waitFor(() => supervisor.api.status('typo')?.warnings?.length === 0, 'warning gone');
    await waitFor(() => handled(dataDir).length === 3, 'its records handled');
  });

  it('fails a transactional consumer whose stored offsets are beyond the log (offsetReset fail), naming them', async () => {
    const target = join(targets, 'target.db');
    staleTarget(target, 'reused');
    const { supervisor: s2 } = await bed.run(
      { reused: transactional(target) },
      { preload: { topic: TOPIC, count: 40 } },
    );
    const status = await waitFor(() => {
      const s = s2.api.status('reused');
      return s?.state === 'failed' ? s : undefined;
    }, 'failed');
    expect(status.failure).toMatchObject({ reason: 'offset_out_of_range' });
    expect(status.failure!.message).toMatch(
      /stored offsets in sqlite:.*target\.db are beyond the end of the log/,
    );
    expect(status.failure!.message).toMatch(/test\.public\.orders\/0 at 5000 \(the log ends at \d+\)/);
    expect(status.failure!.message).toMatch(/offsetReset: 'earliest'/);
    expect(status.lastError?.message).toBe(status.failure!.message);
    expect(s2.api.alerts().map((a) => a.kind)).toContain('offset_out_of_range');
    const [summary] = await supervisorControl(s2).list();
    expect(summary).toMatchObject({ state: 'failed', failure: { reason: 'offset_out_of_range' } });
    // Not restarted in a loop: failed stays failed, with no live replica.
    await waitFor(() => s2.api.status('reused')?.replicas.live === 0, 'no replica left');
    expect(s2.api.status('reused')!.restarts).toBe(0);
  });

  it('offsetReset earliest handles the log from its start; latest only what comes next', async () => {
    const early = join(targets, 'early.db');
    const late = join(targets, 'late.db');
    staleTarget(early, 'early');
    staleTarget(late, 'late');
    const { dataDir, producer, supervisor } = await bed.run(
      { early: transactional(early, 'earliest'), late: transactional(late, 'latest') },
      { preload: { topic: TOPIC, count: 40 } },
    );
    await waitFor(() => handled(dataDir, 'early').length === 40, 'earliest: the 40 records');
    await waitFor(() => supervisor.api.status('late')?.replicas.ready === 1, 'late ready');
    await waitFor(() => supervisor.api.status('late')?.lag.records === 0, 'late at the end');
    // The reset is stored before the replica reads from its new start: appending earlier would
    // put the 8 records below the end it resets to.
    await waitFor(() => storedOffsets(late, 'late').every((o) => o < 5000), 'late reset to the end');
    await producer.append(TOPIC, 8);
    await waitFor(() => handled(dataDir, 'late').length === 8, 'latest: only the 8 new records');
    await waitFor(() => handled(dataDir, 'early').length === 48, 'earliest: and the 8 new');
    const offsets = new Database(early, { readonly: true })
      .prepare(`select sum(next_offset) as n from ${OFFSETS_TABLE} where group_name = 'early'`)
      .get() as { n: number };
    expect(offsets.n).toBe(48);
    expect(supervisor.api.status('early')!.state).toBe('running');
  });
});
