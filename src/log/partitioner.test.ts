import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey, toPositive } from './partitioner.ts';

const utf8 = (text: string) => new TextEncoder().encode(text);

describe('murmur2', () => {
  it("matches Kafka's own test vectors (UtilsTest.testMurmur2)", () => {
    const cases: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [text, hash] of cases) expect(murmur2(utf8(text)), text).toBe(hash);
  });

  it('matches values produced by the Java client for every tail length', () => {
    // Computed with Kafka's Utils.murmur2 (quoted in Akka's Kafka-compatible sharding tests).
    const cases: [string, number][] = [
      ['1', -1993445489],
      ['12', 126087238],
      ['123', -267702483],
      ['1234', -1614185708],
      ['12345', -1188365604],
    ];
    for (const [text, hash] of cases) expect(murmur2(utf8(text)), text).toBe(hash);
  });

  it('hashes only the given length of a reused buffer', () => {
    const buffer = new Uint8Array(64);
    const { written } = new TextEncoder().encodeInto('foobar', buffer);
    expect(murmur2(buffer, written)).toBe(-790332482);
  });
});

describe('partitionForKey', () => {
  it('is toPositive(murmur2(utf8 key)) % partitions, like Kafka', () => {
    expect(toPositive(-790332482)).toBe(-790332482 & 0x7fffffff);
    expect(partitionForKey('foobar', 7)).toBe(toPositive(-790332482) % 7);
    expect(partitionForKey('abc', 3)).toBe(479470107 % 3);
    expect(toPositive(-2147483648)).toBe(0);
  });

  it('hashes UTF-8 bytes, not UTF-16 code units', () => {
    const key = 'clé-😀';
    expect(partitionForKey(key, 13)).toBe(toPositive(murmur2(utf8(key))) % 13);
    const long = 'ü'.repeat(500);
    expect(partitionForKey(long, 13)).toBe(toPositive(murmur2(utf8(long))) % 13);
  });

  it('puts every key in partition 0 of a single-partition topic', () => {
    expect(partitionForKey('anything', 1)).toBe(0);
  });
});
