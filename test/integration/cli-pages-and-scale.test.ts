import { describe, expect, it } from 'vitest';
import { ConsumerStore } from '../../src/consumers/consumer-store.ts';
import { supervisorBed } from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';

const TOPIC = 'test.public.orders';
const ENV: NodeJS.ProcessEnv = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
const bed = supervisorBed('cli-pages-');

describe('tributary consumers scale and dlq list, as a user runs them', () => {
  it('scale beyond the partitions says how many replicas will be idle and how to get more partitions', async () => {
    const { dataDir, supervisor } = await bed.run(
      { wide: { topics: [TOPIC] } },
      { preload: { topic: TOPIC, count: 10 } },
    );
    await waitFor(() => supervisor.api.status('wide')?.partitions === 4, '4 partitions seen');
    const six = await cli(['consumers', 'scale', 'wide', '6', '--data-dir', dataDir], { env: ENV });
    expect(six.code).toBe(0);
    expect(six.stdout).toMatch(
      /^wide: 6 replicas\nnote: wide reads 4 partitions, and a partition is read by one replica at a time: 2 of the 6 replicas will be idle\. More partitions: the setting log\.partitions/,
    );
    const two = await cli(['consumers', 'scale', 'wide', '2', '--data-dir', dataDir], { env: ENV });
    expect(two.stdout).toBe('wide: 2 replicas\n');
  });

  it('dlq list pages through the dead letters (--limit, --offset) and says where the next page starts', async () => {
    const { dataDir } = await bed.run({}, {});
    const store = ConsumerStore.open({ dataDir });
    for (let offset = 0; offset < 120; offset++) {
      store.addDeadLetter({
        consumer: 'sink',
        group: 'sink',
        record: { topic: TOPIC, partition: 0, offset, key: null, value: '{}', headers: {}, timestamp: 0 },
        error: `bad record ${offset}`,
        stack: undefined,
        attempts: 3,
        firstFailedAt: Date.now(),
        failedAt: Date.now(),
      });
    }
    store.close();
    const rows = (stdout: string) => stdout.split('\n').filter((l) => /^\d+\s+pending/.test(l));
    const first = await cli(['dlq', 'list', 'sink', '--data-dir', dataDir], { env: ENV });
    expect(first.code).toBe(0);
    expect(rows(first.stdout)).toHaveLength(50);
    expect(rows(first.stdout)[0]).toMatch(/^1\s+pending\s+test\.public\.orders\/0@0 /);
    expect(first.stdout.trim().split('\n').at(-1)).toBe('1-50 of 120; next page: --offset 50');
    const last = await cli(
      ['dlq', 'list', 'sink', '--offset', '100', '--limit', '50', '--data-dir', dataDir],
      {
        env: ENV,
      },
    );
    expect(last.stderr).toBe('');
    expect(rows(last.stdout)).toHaveLength(20);
    expect(rows(last.stdout)[0]).toMatch(/^101\s+pending\s+test\.public\.orders\/0@100 /);
    expect(last.stdout.trim().split('\n').at(-1)).toBe('101-120 of 120');
    const json = await cli(['dlq', 'list', 'sink', '--limit', '5', '--json', '--data-dir', dataDir], {
      env: ENV,
    });
    expect(JSON.parse(json.stdout).map((d: { offset: number }) => d.offset)).toEqual([0, 1, 2, 3, 4]);
    const bad = await cli(['dlq', 'list', 'sink', '--limit', '0', '--data-dir', dataDir], { env: ENV });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--limit must be a whole number of at least 1, not "0"/);
  });

  it('dlq list pages a few thousand dead letters from storage: the last page, the oracle in SQL', async () => {
    const { dataDir } = await bed.run({}, {});
    const store = ConsumerStore.open({ dataDir });
    for (let offset = 0; offset < 3000; offset++) {
      store.addDeadLetter({
        consumer: offset % 2 === 0 ? 'sink' : 'other',
        group: 'sink',
        record: { topic: TOPIC, partition: 1, offset, key: null, value: '{}', headers: {}, timestamp: 0 },
        error: `bad record ${offset}`,
        stack: undefined,
        attempts: 1,
        firstFailedAt: Date.now(),
        failedAt: Date.now(),
      });
    }
    const want = store.deadLetters('sink', { status: 'pending' }).slice(1450, 1500);
    store.close();
    const page = await cli(
      ['dlq', 'list', 'sink', '--offset', '1450', '--limit', '100', '--json', '--data-dir', dataDir],
      { env: ENV },
    );
    expect(page.code, page.stderr).toBe(0);
    expect(JSON.parse(page.stdout).map((d: { id: number }) => d.id)).toEqual(want.map((d) => d.id));
    const table = await cli(['dlq', 'list', 'sink', '--offset', '1490', '--data-dir', dataDir], { env: ENV });
    expect(table.stdout.trim().split('\n').at(-1)).toBe('1491-1500 of 1500');
  });
});
