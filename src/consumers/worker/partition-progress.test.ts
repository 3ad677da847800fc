import { describe, expect, it } from 'vitest';
import { PartitionProgress } from './partition-progress.ts';

describe('PartitionProgress', () => {
  it('commits only up to the lowest contiguous finished offset', () => {
    const p = new PartitionProgress(10);
    for (let o = 10; o < 15; o++) p.add(o);
    expect(p.committable).toBe(10);
    p.finish(12);
    p.finish(11);
    expect(p.committable).toBe(10);
    expect(p.inFlight).toBe(3);
    p.finish(10);
    expect(p.committable).toBe(13);
    p.finish(14);
    expect(p.committable).toBe(13);
    p.finish(13);
    expect(p.committable).toBe(15);
    expect(p.inFlight).toBe(0);
    expect(p.outstanding).toBe(0);
  });

  it('jumps over offsets retention removed when nothing is in flight', () => {
    const p = new PartitionProgress(0);
    p.add(40);
    expect(p.committable).toBe(40);
    p.finish(40);
    expect(p.committable).toBe(41);
  });

  it('rejects offsets out of order', () => {
    const p = new PartitionProgress(0);
    p.add(0);
    expect(() => p.add(0)).toThrow(/offset 0 added after 0/);
  });

  it('stays correct over many records finished in random order', () => {
    const p = new PartitionProgress(0);
    const n = 5000;
    for (let o = 0; o < n; o++) p.add(o);
    const order = Array.from({ length: n }, (_, i) => i).sort(() => Math.random() - 0.5);
    const done = new Set<number>();
    for (const o of order) {
      p.finish(o);
      done.add(o);
      let expected = 0;
      while (done.has(expected)) expected++;
      if (o % 97 === 0) expect(p.committable).toBe(expected);
    }
    expect(p.committable).toBe(n);
  });

  it('finds offsets across gaps and ignores offsets finished twice or never added', () => {
    const p = new PartitionProgress(0);
    for (const o of [3, 4, 9, 10, 11, 20]) p.add(o);
    expect(p.committable).toBe(3);
    p.finish(10);
    p.finish(10);
    p.finish(5);
    expect(p.inFlight).toBe(5);
    p.finish(3);
    p.finish(9);
    expect(p.committable).toBe(4);
    p.finish(4);
    expect(p.committable).toBe(11);
    p.finish(20);
    p.finish(11);
    expect(p.committable).toBe(21);
    expect(p.inFlight).toBe(0);
    expect(p.outstanding).toBe(0);
  });
});
