/**
 * As subprocesses: `read --from latest|-N|earliest`, `read --follow --from latest` (only what
 * comes after it started), `dlq list <unknown>` failing like other commands, and config JSON
 * errors with line and column.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { tempDir, waitFor } from '../support/capture-harness.ts';
import { type CliProcess, cli, startCli } from '../support/cli.ts';

const TOPIC = 'rs.public.t';
const dir = tempDir('tributary-read-start-');
const consumers = join(dir.path, 'consumers');
const ENV: NodeJS.ProcessEnv = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: consumers };
const started: CliProcess[] = [];
let log: EmbeddedEventLog;

/** Appends records with ids `from..to-1`, the id as key (two partitions, by key hash). */
async function append(from: number, to: number): Promise<void> {
  await log.append(
    Array.from({ length: to - from }, (_, i) => ({
      topic: TOPIC,
      key: JSON.stringify({ id: from + i }),
      value: JSON.stringify({ id: from + i }),
      headers: {},
      timestamp: 1_700_000_000_000 + from + i,
    })),
  );
}

const lines = (stdout: string) =>
  stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { partition: number; offset: number; value: { id: number } });

beforeAll(async () => {
  log = EmbeddedEventLog.open({ dataDir: dir.path, defaultPartitions: 2 });
  await append(0, 40);
  mkdirSync(join(consumers, 'known'), { recursive: true });
  writeFileSync(
    join(consumers, 'known', 'index.mjs'),
    'export default { topics: ["rs.public.t"], async handle() {} };\n',
  );
});

afterAll(async () => {
  for (const p of started)
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  await Promise.all(started.map((p) => p.exited));
  await log.close();
  dir.remove();
});

describe('read --from', () => {
  it('latest prints nothing, -N the last N records of each partition, earliest everything', async () => {
    const topics = (await log.topics()).find((t) => t.topic === TOPIC)!.partitions;
    expect(topics).toHaveLength(2);

    const latest = await cli(['read', TOPIC, '--data-dir', dir.path, '--from', 'latest'], { env: ENV });
    expect(latest.code, latest.stderr).toBe(0);
    expect(latest.stdout).toBe('');

    const tail = await cli(['read', TOPIC, '--data-dir', dir.path, '--from', '-3'], { env: ENV });
    expect(tail.code, tail.stderr).toBe(0);
    const expected = topics.flatMap((p) =>
      [3, 2, 1].map((back) => ({ partition: p.partition, offset: p.endOffset - back })),
    );
    expect(lines(tail.stdout).map(({ partition, offset }) => ({ partition, offset }))).toEqual(expected);

    const earliest = await cli(['read', TOPIC, '--data-dir', dir.path, '--from', 'earliest'], { env: ENV });
    expect(lines(earliest.stdout)).toHaveLength(40);

    const bad = await cli(['read', TOPIC, '--data-dir', dir.path, '--from', 'soon'], { env: ENV });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--from must be an offset, earliest, latest or -N, not "soon"');
  });

  it('--follow --from latest prints only records appended after it started', async () => {
    const follow = startCli(['read', TOPIC, '--data-dir', dir.path, '--from', 'latest', '--follow'], {
      env: ENV,
    });
    started.push(follow);
    // Append one record at a time until the follower prints one: it started before that record.
    let next = 40;
    await waitFor(
      async () => {
        if (follow.stdout.length > 0 || follow.child.exitCode !== null) return true;
        await append(next, next + 1);
        next++;
        return false;
      },
      'the follower to print an appended record',
      60_000,
    );
    await append(next, next + 10);
    next += 10;
    // The partitions are printed in turn: the last record appended may be printed before one of
    // the other partition's. Wait for as many records as ran from the first printed to the last.
    const printedIds = () =>
      lines(follow.stdout)
        .map((l) => l.value.id)
        .sort((a, b) => a - b);
    await waitFor(() => {
      const ids = printedIds();
      return ids.length > 0 && ids.length >= next - ids[0]!;
    }, 'every record from the first printed to the last appended');
    const ids = printedIds();
    // Nothing from before the start; after the first record printed, no gap and no repeat (the
    // partitions are printed in turn, so the first printed is not always the lowest id).
    const first = ids[0]!;
    expect(first).toBeGreaterThanOrEqual(40);
    expect(ids).toEqual(Array.from({ length: next - first }, (_, i) => first + i));
    follow.child.kill('SIGTERM');
    expect((await follow.exited).code).toBe(0);
  });
});

describe('dlq list of an unknown consumer', () => {
  it('fails naming the known consumers, as `consumers scale` does', async () => {
    const unknown = await cli(['dlq', 'list', 'nope', '--data-dir', dir.path], { env: ENV });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/CONSUMER_NOT_FOUND.*"nope"[\s\S]*known consumers: known/);
    const known = await cli(['dlq', 'list', 'known', '--data-dir', dir.path], { env: ENV });
    expect(known.code, known.stderr).toBe(0);
    expect(known.stdout).toBe('no pending dead letters for known\n');
  });
});

describe('a config file that is not valid JSON', () => {
  it('is named with the line and column of the mistake', async () => {
    const file = join(dir.path, 'bad.config.json');
    writeFileSync(file, '{\n  "dataDir": "x",\n  "logLevel": "info"\n  "format": "unwrap"\n}\n');
    const result = await cli(['topics', '--config', file], { env: ENV });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `config file ${file} is not valid JSON at line 4, column 3: Expected ',' or '}' after property value`,
    );
    expect(result.stderr).toContain('line 4 reads: "format": "unwrap"');
  });
});
