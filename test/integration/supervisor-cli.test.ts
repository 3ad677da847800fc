import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeYieldLease } from '../../src/consumers/capture-yield.ts';
import { distinctOffsets, handled, supervisorBed } from '../fixtures/consumers/supervisor-fixtures.ts';
import { waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';

const TOPIC = 'test.public.orders';
const ENV: NodeJS.ProcessEnv = { TRIBUTARY_DATA_DIR: '', TRIBUTARY_CONSUMERS_DIR: '' };
const bed = supervisorBed('supervisor-cli-');

describe('tributary consumers and tributary logs', () => {
  it('lists the consumers, and scale/pause/resume/restart from another process reach the running supervisor', async () => {
    const { dataDir, consumersDir, supervisor } = await bed.run(
      { listed: { topics: [TOPIC] } },
      { preload: { topic: TOPIC, count: 100 } },
    );
    await waitFor(() => handled(dataDir).length === 100, 'handled');
    await waitFor(() => supervisor.api.status('listed')?.lag.records === 0, 'lag 0');
    const table = await cli(['consumers', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    expect(table.code).toBe(0);
    const [header, row] = table.stdout.trim().split('\n');
    expect(header).toMatch(/^NAME\s+STATE\s+REPLICAS\s+RESTARTS\s+LAG\s+LAG_S\s+PROCESSED\s+LAST ERROR$/);
    expect(row).toMatch(/^listed\s+running\s+1\/1\s+0\s+0\s+0\.0\s+100\s+-$/);
    const json = await cli(['consumers', '--json', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    expect(JSON.parse(json.stdout)).toMatchObject([
      {
        name: 'listed',
        state: 'running',
        running: true,
        group: 'listed',
        topics: [TOPIC],
        replicas: { desired: 1, live: 1, ready: 1 },
        restarts: 0,
        lag: { records: 0, seconds: 0 },
        processed: 100,
        lastError: null,
      },
    ]);
    // A capture catching up holds the consumers back: the listing says so under the table.
    expect(table.stdout).not.toMatch(/held back/);
    writeYieldLease(dataDir, Date.now() + 60_000);
    const held = await cli(['consumers', '--data-dir', dataDir], { env: ENV, cwd: consumersDir });
    writeYieldLease(dataDir, 0);
    expect(held.stdout.trim().split('\n').at(-1)).toMatch(/^held back: the capture is catching up/);

    const scale = await cli(['consumers', 'scale', 'listed', '3', '--data-dir', dataDir], { env: ENV });
    expect(scale.stdout).toBe('listed: 3 replicas\n');
    await waitFor(() => supervisor.api.status('listed')?.replicas.ready === 3, '3 replicas');
    expect((await cli(['consumers', 'pause', 'listed', '--data-dir', dataDir], { env: ENV })).code).toBe(0);
    await waitFor(() => supervisor.api.status('listed')?.replicas.live === 0, 'paused');
    expect(supervisor.api.status('listed')!.state).toBe('paused');
    expect((await cli(['consumers', 'resume', 'listed', '--data-dir', dataDir], { env: ENV })).code).toBe(0);
    await waitFor(() => supervisor.api.status('listed')?.replicas.ready === 3, 'resumed with 3 replicas');
    const pids = supervisor.api.status('listed')!.pids;
    expect((await cli(['consumers', 'restart', 'listed', '--data-dir', dataDir], { env: ENV })).code).toBe(0);
    await waitFor(() => {
      const s = supervisor.api.status('listed')!;
      return s.generation === 1 && s.replicas.ready === 3 && s.pids.every((p) => !pids.includes(p)) && s;
    }, 'every replica replaced');
    expect(supervisor.api.status('listed')!.restarts).toBe(0);

    const unknown = await cli(['consumers', 'scale', 'nope', '2', '--data-dir', dataDir], { env: ENV });
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/CONSUMER_NOT_FOUND.*nope[\s\S]*known consumers: listed/);
    const bad = await cli(['consumers', 'scale', 'listed', 'many', '--data-dir', dataDir], { env: ENV });
    expect(bad.code).toBe(2);
  });

  it('writes structured per-consumer logs, rotates them by size, and `tributary logs` prints and follows them', async () => {
    const { dataDir, producer } = await bed.run(
      {
        chatty: {
          topics: [TOPIC],
          before: "for (const r of batch) console.log('handling offset ' + r.offset);",
        },
      },
      { preload: { topic: TOPIC, count: 600 }, logs: { maxBytes: 16_000, files: 2 } },
    );
    await waitFor(() => handled(dataDir).length === 600, 'handled');
    const file = join(dataDir, 'logs', 'chatty.log');
    await waitFor(() => existsSync(`${file}.2`), 'two rotations');
    expect(existsSync(`${file}.3`)).toBe(false);
    for (const f of [file, `${file}.1`, `${file}.2`]) {
      const lines = readFileSync(f, 'utf8').trim().split('\n');
      for (const line of lines) expect(JSON.parse(line)).toHaveProperty('time');
    }
    const entries = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; replica?: number; stream?: string });
    expect(
      entries.some((e) => /^handling offset \d+$/.test(e.msg) && e.replica === 0 && e.stream === 'stdout'),
    ).toBe(true);

    const tail = await cli(['logs', 'chatty', '-n', '3', '--data-dir', dataDir], { env: ENV });
    expect(tail.code).toBe(0);
    const lines = tail.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines.at(-1)).toBe(readFileSync(file, 'utf8').trim().split('\n').at(-1));

    const follow = startCli(['logs', 'chatty', '-f', '-n', '0', '--data-dir', dataDir], { env: ENV });
    try {
      await waitFor(() => follow.stderr.length === 0 && follow.child.pid !== undefined, 'follower started');
      // New lines appear only once the follower is polling; keep producing until one shows.
      await waitFor(async () => {
        await producer.append(TOPIC, 5);
        await new Promise((r) => setTimeout(r, 100));
        return /handling offset (6\d\d|[7-9]\d\d)/.test(follow.stdout);
      }, 'followed line');
    } finally {
      follow.child.kill('SIGINT');
      const exit = await follow.exited;
      expect(exit.code).toBe(0);
    }
    const missing = await cli(['logs', 'nobody', '--data-dir', dataDir], { env: ENV });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/CONSUMER_LOG_NOT_FOUND/);
    const produced = producer.produced;
    await waitFor(() => distinctOffsets(handled(dataDir)) === produced, 'every record handled');
  });
});
