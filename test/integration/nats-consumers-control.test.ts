import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { groupKeys, parsePartitionEntry } from '../../src/consumers/nats/group-keys.ts';
import { natsDeadLetters, resolveNatsDeadLetter } from '../../src/consumers/nats/nats-dead-letters.ts';
import { NatsEventLog } from '../../src/log/nats/nats-event-log.ts';
import { NatsLogBucket } from '../../src/log/nats/nats-log-bucket.ts';
import { tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli, startCli } from '../support/cli.ts';
import { natsSuite } from '../support/nats-suite.ts';
import { keyedRecords, writeConsumer } from './consumer-worker-support.ts';

const dirs = tempDirs('nats-control-');
const TOPIC = 'ctl.events';

interface Handled {
  p: number;
  o: number;
  id: number;
  seq: number;
  replica: number;
}

function readHandled(file: string): Handled[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Handled);
}

/** Per key, the first handling of each seq comes after the previous seq's (`skip`: dead-lettered ones). */
function orderProblems(rows: readonly Handled[], skip: (id: number, seq: number) => boolean): string[] {
  const problems: string[] = [];
  const next = new Map<number, number>();
  const seen = new Set<string>();
  for (const r of rows) {
    if (r.replica === -1 || seen.has(`${r.id}/${r.seq}`)) continue;
    seen.add(`${r.id}/${r.seq}`);
    let expected = next.get(r.id) ?? 0;
    while (skip(r.id, expected)) expected++;
    if (r.seq !== expected) problems.push(`key ${r.id}: seq ${r.seq} when ${expected} was next`);
    next.set(r.id, r.seq + 1);
  }
  return problems;
}

describe('consumers run on NATS: dlq show|replay|discard and pause|resume from any machine', () => {
  const nats = natsSuite(dirs);

  const start = (name: string, consumersDir: string, env: NodeJS.ProcessEnv) => {
    const p = startCli(
      [
        ...['consumers', 'run', name, '--log', nats.cluster.url, '--consumers-dir', consumersDir],
        ...['--data-dir', dirs.make(), '--replicas', '1', '--lease-ms', '2000'],
      ],
      { env },
    );
    nats.procs.push(p);
    return p;
  };

  it('dlq show, replay (the handler run again, marked replayed only once it succeeds) and discard, through the CLI', async () => {
    const env = {
      TRIBUTARY_NATS_LOG_NAME: 'natsctldlq',
      TRIBUTARY_DATA_DIR: '',
      TRIBUTARY_CONSUMERS_DIR: '',
    };
    const log = await NatsEventLog.open({
      servers: nats.cluster.urls,
      name: 'natsctldlq',
      defaultPartitions: 4,
    });
    const bucket = await NatsLogBucket.open({ url: nats.cluster.url, name: 'natsctldlq' });
    const consumersDir = dirs.make();
    const work = dirs.make();
    const handledFile = join(work, 'handled.jsonl');
    const fixedFile = join(work, 'fixed');
    // While `gate` exists, a replay's handler notes its entry in `entered`, then waits for `release`.
    const gate = join(work, 'gate');
    const entered = join(work, 'entered');
    const release = join(work, 'release');
    const bad = (id: number, seq: number) => id % 25 === 7 && seq === 1;
    writeConsumer(
      consumersDir,
      'fixer',
      `export default defineConsumer({
  topics: [${JSON.stringify(TOPIC)}],
  batch: { maxRecords: 1 },
  retry: { attempts: 2, initialDelayMs: 5, maxDelayMs: 10 },
  async handle(batch, ctx) {
    for (const r of batch) {
      if (r.value.id % 25 === 7 && r.value.seq === 1 && !existsSync(${JSON.stringify(fixedFile)})) throw new Error('refused ' + r.value.id);
      if (ctx.replica === -1 && existsSync(${JSON.stringify(gate)})) {
        appendFileSync(${JSON.stringify(entered)}, 'x');
        while (!existsSync(${JSON.stringify(release)})) await new Promise((r) => setTimeout(r, 20));
      }
      appendFileSync(${JSON.stringify(handledFile)}, JSON.stringify({ p: r.partition, o: r.offset, id: r.value.id, seq: r.value.seq, replica: ctx.replica }) + '\\n');
    }
  },
});`,
    );
    const dlq = (...args: string[]) =>
      cli(['dlq', ...args, '--log', nats.cluster.url], {
        env: { ...env, TRIBUTARY_CONSUMERS_DIR: consumersDir },
      });
    try {
      start('fixer', consumersDir, env);
      start('fixer', consumersDir, env);
      const records = keyedRecords(TOPIC, 400, 100);
      await log.append(records);
      const failing = records
        .map((r) => JSON.parse(r.value!) as { id: number; seq: number })
        .filter((v) => bad(v.id, v.seq));
      expect(failing.length).toBe(4);
      await waitFor(
        async () =>
          new Set(readHandled(handledFile).map((r) => `${r.p}/${r.o}`)).size === 396 &&
          (await natsDeadLetters(bucket.kv, 'fixer')).length === 4,
        'every record handled or dead-lettered',
        90_000,
      );
      const letters = (await natsDeadLetters(bucket.kv, 'fixer')).map((d) => d.letter);
      const [first, second, third, fourth] = letters;

      // show: the record and its origin, as stored by the replica that dead-lettered it.
      const shown = await dlq('show', 'fixer', String(first!.id), '--json');
      expect(shown.code, shown.stderr).toBe(0);
      const letter = JSON.parse(shown.stdout) as typeof first;
      expect(letter).toEqual(first);
      const source = (await log.read(TOPIC, letter!.partition, letter!.offset, 1))[0]!;
      expect(letter!.value).toBe(source.value);
      expect(letter!.key).toBe(source.key);
      expect(letter!.error).toContain('refused');
      const text = await dlq('show', 'fixer', String(first!.id));
      expect(text.stdout).toContain(
        `origin:    topic ${TOPIC}, partition ${letter!.partition}, offset ${letter!.offset}`,
      );
      const missing = await dlq('show', 'fixer', '999999');
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain('has no dead letter 999999');

      // replay while the handler still refuses: still pending, one attempt more, the new error.
      const refused = await dlq('replay', 'fixer', '--id', String(first!.id));
      expect(refused.code).toBe(1);
      expect(refused.stdout).toContain('replayed 0 of 1; 1 still failing');
      const [again] = await natsDeadLetters(bucket.kv, 'fixer', { ids: [first!.id] });
      expect(again!.letter.status).toBe('pending');
      expect(again!.letter.attempts).toBe(first!.attempts + 1);

      // Fixed: the handler runs again on the record (in the CLI process: replica -1), then it is replayed.
      writeFileSync(fixedFile, '');
      const replayed = await dlq('replay', 'fixer', '--id', `${first!.id},${second!.id}`, '--by', 'ops');
      expect(replayed.code, replayed.stderr).toBe(0);
      expect(replayed.stdout).toContain('replayed 2 of 2; 0 still failing');
      const discarded = await dlq(
        'discard',
        'fixer',
        '--id',
        String(third!.id),
        '--by',
        'ops',
        '--note',
        'obsolete',
      );
      expect(discarded.code, discarded.stderr).toBe(0);
      expect(discarded.stdout).toContain('discarded 1 dead letter of fixer (by ops)');
      // The rest (only the fourth is pending now), by two operators at once: one replay claims it
      // and runs the handler, the other leaves it. The handler is held until the other replay
      // ended or also entered it (the oracle below counts the handler's runs).
      writeFileSync(gate, '');
      const env2 = { ...env, TRIBUTARY_CONSUMERS_DIR: consumersDir };
      const replays = [0, 1].map(() =>
        startCli(['dlq', 'replay', 'fixer', '--log', nats.cluster.url], { env: env2 }),
      );
      nats.procs.push(...replays);
      const enteredCount = () => (existsSync(entered) ? readFileSync(entered, 'utf8').length : 0);
      await waitFor(
        () =>
          enteredCount() === 2 || (enteredCount() === 1 && replays.some((p) => p.child.exitCode !== null)),
        'one replay in the handler and the other done, or both in it',
        60_000,
      );
      writeFileSync(release, '');
      const rest = await Promise.all(replays.map((p) => p.exited));
      expect(enteredCount()).toBe(1);
      const outs = rest.map((r) => r.stdout).sort();
      expect(outs.filter((o) => o.includes('replayed 1 of 1; 0 still failing')).length, outs.join('')).toBe(
        1,
      );
      expect(outs.filter((o) => /replayed 0 of [01]; 0 still failing/.test(o)).length, outs.join('')).toBe(1);
      // Resolved ones are left alone.
      const none = await dlq('discard', 'fixer', '--all');
      expect(none.stdout).toContain('discarded 0 dead letters');

      const after = new Map((await natsDeadLetters(bucket.kv, 'fixer')).map((d) => [d.letter.id, d.letter]));
      expect([...after.values()].map((l) => [l.id, l.status, l.resolvedBy])).toEqual([
        [first!.id, 'replayed', 'ops'],
        [second!.id, 'replayed', 'ops'],
        [third!.id, 'discarded', 'ops'],
        [fourth!.id, 'replayed', expect.any(String)],
      ]);
      expect(after.get(third!.id)!.note).toBe('obsolete');
      // Oracle: the replayed records were handled by the replay exactly once each, the discarded
      // one never; with the rest, every record of the log but the discarded one was handled.
      const rows = readHandled(handledFile);
      const byReplay = rows.filter((r) => r.replica === -1).map((r) => `${r.p}/${r.o}`);
      expect(byReplay.sort()).toEqual(
        [first!, second!, fourth!].map((l) => `${l.partition}/${l.offset}`).sort(),
      );
      const all: string[] = [];
      for (const p of [0, 1, 2, 3])
        for (const r of await log.read(TOPIC, p, 0, 10_000)) all.push(`${r.partition}/${r.offset}`);
      expect(all.length).toBe(400);
      expect(new Set(rows.map((r) => `${r.p}/${r.o}`))).toEqual(
        new Set(all.filter((k) => k !== `${third!.partition}/${third!.offset}`)),
      );
      expect(orderProblems(rows, bad)).toEqual([]);

      // Two operators on the same dead letter: the second's compare-and-set fails.
      const [stale] = await natsDeadLetters(bucket.kv, 'fixer', { ids: [first!.id] });
      const pendingCopy = { ...stale!, letter: { ...stale!.letter, status: 'pending' as const } };
      expect(await resolveNatsDeadLetter(bucket.kv, pendingCopy, 'discarded', 'late', undefined)).toBe(true);
      expect(await resolveNatsDeadLetter(bucket.kv, pendingCopy, 'discarded', 'late', undefined)).toBe(false);
    } finally {
      await bucket.close();
      await log.close();
    }
  }, 240_000);

  it('pause reaches every process: nothing handled while records arrive, partitions kept; resume catches up exactly once', async () => {
    const env = {
      TRIBUTARY_NATS_LOG_NAME: 'natsctlpause',
      TRIBUTARY_DATA_DIR: '',
      TRIBUTARY_CONSUMERS_DIR: '',
    };
    const log = await NatsEventLog.open({
      servers: nats.cluster.urls,
      name: 'natsctlpause',
      defaultPartitions: 4,
    });
    const bucket = await NatsLogBucket.open({ url: nats.cluster.url, name: 'natsctlpause' });
    const consumersDir = dirs.make();
    const handledFile = join(dirs.make(), 'handled.jsonl');
    writeConsumer(
      consumersDir,
      'counter',
      `export default defineConsumer({
  topics: [${JSON.stringify(TOPIC)}],
  batch: { maxRecords: 20 },
  async handle(batch, ctx) {
    appendFileSync(${JSON.stringify(handledFile)}, batch.map((r) => JSON.stringify({ p: r.partition, o: r.offset, id: r.value.id, seq: r.value.seq, replica: ctx.replica })).join('\\n') + '\\n');
  },
});`,
    );
    const control = (verb: string, ...args: string[]) =>
      cli(['consumers', verb, 'counter', ...args, '--log', nats.cluster.url], { env });
    const owners = async () => {
      const out = new Map<number, string | null>();
      for (const p of [0, 1, 2, 3]) {
        const entry = await bucket.kv.get(groupKeys.offset('counter', TOPIC, p));
        if (entry) out.set(p, parsePartitionEntry(entry.string()).owner);
      }
      return out;
    };
    const lag = async () => (await log.lag('counter')).reduce((n, p) => n + p.records, 0);
    try {
      const a = start('counter', consumersDir, env);
      const b = start('counter', consumersDir, env);
      await log.append(keyedRecords(TOPIC, 200, 50));
      // Both processes read (each owns partitions) and everything is committed.
      await waitFor(
        async () => {
          const o = await owners();
          // Balanced: two owners with two partitions each (none released or mid-rebalance).
          const held = [...o.values()];
          const byOwner = new Map<string | null, number>();
          for (const v of held) byOwner.set(v, (byOwner.get(v) ?? 0) + 1);
          const balanced =
            o.size === 4 &&
            !byOwner.has(null) &&
            byOwner.size === 2 &&
            [...byOwner.values()].every((n) => n === 2);
          return balanced && (await lag()) === 0;
        },
        'both processes own partitions, no lag',
        90_000,
      );
      expect(readHandled(handledFile).length).toBe(200);
      const before = await owners();

      const paused = await control('pause');
      expect(paused.code, paused.stderr).toBe(0);
      expect(paused.stdout).toContain(
        'counter: paused; 2 of 2 replicas in 2 process(es) acknowledged (drained',
      );
      await log.append(keyedRecords(TOPIC, 200, 50, 200));
      // Every member has written heartbeats for four more ticks (500 ms each) since the records came.
      const appendedAt = Date.now();
      await waitFor(async () => {
        for (const m of new Set(before.values())) {
          const entry = await bucket.kv.get(groupKeys.member('counter', m!));
          if (!entry || entry.created.getTime() < appendedAt + 2000) return false;
        }
        return true;
      }, 'four ticks of every member while paused');
      expect(readHandled(handledFile).length).toBe(200);
      expect(await lag()).toBe(200);
      // Partitions kept: the owners in the bucket did not change.
      expect(await owners()).toEqual(before);
      const listed = await cli(['consumers', '--log', nats.cluster.url, '--json'], { env });
      const row = (JSON.parse(listed.stdout) as { name: string; paused?: boolean }[]).find(
        (r) => r.name === 'counter',
      );
      expect(row?.paused).toBe(true);

      const resumed = await control('resume');
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.stdout).toContain('counter: resumed; 2 of 2 replicas in 2 process(es) acknowledged');
      await waitFor(async () => (await lag()) === 0, 'caught up after resume');
      // Exact effect: each record handled once (the pause drained and committed), per-key order
      // kept, by the same owners as before.
      const rows = readHandled(handledFile);
      expect(rows.length).toBe(400);
      expect(new Set(rows.map((r) => `${r.p}/${r.o}`)).size).toBe(400);
      expect(orderProblems(rows, () => false)).toEqual([]);
      expect(await owners()).toEqual(before);

      // scale reaches both processes too: each runs two replicas.
      const scale = await control('scale', '2');
      expect(scale.code, scale.stderr).toBe(0);
      expect(scale.stdout).toContain(
        'counter: scaled to 2 replica(s) per process; 4 of 4 replicas in 2 process(es) acknowledged',
      );
      for (const p of [a, b]) p.child.kill('SIGTERM');
      for (const p of [a, b]) expect((await p.exited).code).toBe(0);
    } finally {
      await bucket.close();
      await log.close();
    }
  }, 240_000);
});
