import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { PartitionOffset } from '../../core/record.ts';
import type { ConsumerState } from '../consumer-state.ts';
import { OffsetCommitter } from './offset-committer.ts';
import { PartitionTable } from './partition-table.ts';

/** A state whose commits are written only when the test lets them (a store across the network). */
function slowState() {
  const commits: { offsets: readonly PartitionOffset[]; done: () => void }[] = [];
  const waiters: (() => void)[] = [];
  const state: ConsumerState = {
    commit: (_group, offsets) =>
      new Promise<void>((done) => {
        commits.push({ offsets, done });
        waiters.shift()?.();
      }),
    committed: () => [],
    deadLetteredOffsets: () => new Set(),
    addDeadLetter: () => undefined,
  };
  /** The `n`th commit (1-based), once it has been asked for; fails after `ms`. */
  const nth = async (n: number, ms = 2000) => {
    const deadline = Date.now() + ms;
    while (commits.length < n) {
      if (Date.now() > deadline) throw new Error(`commit ${n} never came (${commits.length} so far)`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return commits[n - 1]!;
  };
  return { state, nth };
}

describe('OffsetCommitter', () => {
  it('commits records finished while the previous commit was being written', async () => {
    const { state, nth } = slowState();
    const table = new PartitionTable();
    const partition = table.add({ topic: 't', partition: 0 }, 0, new Set());
    const committer = new OffsetCommitter(state, 'g', pino({ level: 'silent' }), () => [partition]);
    for (let o = 0; o < 10; o++) partition.progress.add(o);
    for (let o = 0; o < 5; o++) partition.progress.finish(o);
    committer.schedule();
    const first = await nth(1);
    expect(first.offsets).toEqual([{ topic: 't', partition: 0, offset: 5 }]);
    // The last records finish while that commit is on its way, and say so.
    for (let o = 5; o < 10; o++) partition.progress.finish(o);
    committer.schedule();
    first.done();
    const second = await nth(2);
    expect(second.offsets).toEqual([{ topic: 't', partition: 0, offset: 10 }]);
    second.done();
    committer.cancel();
  });
});
