import { describe, expect, it } from 'vitest';
import { readEnvelope, readExactJson } from './exact-json-reader.ts';
import { exactJson, parseExactJson } from './sink-records.ts';

/** A random JSON value (seeded): nested objects and arrays, escapes, long and short numbers. */
function randomValue(rnd: () => number, depth: number): unknown {
  const r = rnd();
  if (depth > 0 && r < 0.15) {
    const o: { [k: string]: unknown } = {};
    for (let i = Math.floor(rnd() * 5); i > 0; i--) o[randomString(rnd)] = randomValue(rnd, depth - 1);
    return o;
  }
  if (depth > 0 && r < 0.25)
    return Array.from({ length: Math.floor(rnd() * 4) }, () => randomValue(rnd, depth - 1));
  if (r < 0.45) return randomString(rnd);
  if (r < 0.55) return [null, true, false][Math.floor(rnd() * 3)];
  if (r < 0.7)
    return (
      BigInt(Math.floor(rnd() * 2 ** 31)) * 10n ** BigInt(Math.floor(rnd() * 12)) * (rnd() < 0.3 ? -1n : 1n)
    );
  if (r < 0.8) return Math.floor(rnd() * 2 ** 53) * (rnd() < 0.5 ? -1 : 1);
  if (r < 0.9) return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 40 - 20);
  return rnd() < 0.5 ? 0 : -0.5;
}

function randomString(rnd: () => number): string {
  const alphabet = [
    'a',
    'b',
    '"',
    '\\',
    '\n',
    '\u0001',
    'é',
    '😀',
    '1234567890123456789',
    ' ',
    '/',
    '\u2028',
  ];
  let s = '';
  for (let i = Math.floor(rnd() * 6); i > 0; i--) s += alphabet[Math.floor(rnd() * alphabet.length)];
  return s;
}

describe('exact JSON reader', () => {
  it('reads what parseExactJson reads, for random values', () => {
    let seed = 42;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let i = 0; i < 3000; i++) {
      const text = exactJson(randomValue(rnd, 3));
      const spaced = i % 3 === 0 ? JSON.stringify(JSON.parse(text), null, 2) : text;
      expect(readExactJson(text)).toEqual(parseExactJson(text));
      if (!/\d{16}/.test(text)) expect(readExactJson(spaced)).toEqual(JSON.parse(spaced));
    }
  });

  it('keeps long integers exact and doubles as JSON.parse reads them', () => {
    const text =
      '{"a":12345678901234567890,"s":"x\\"12345678901234567890","f":1.2345678901234567e5,"n":[-92233720368547758080,1],"k":9007199254740991,"d":0.30000000000000004,"z":-0,"e":1E+2}';
    expect(readExactJson(text)).toEqual({
      a: 12345678901234567890n,
      s: 'x"12345678901234567890',
      f: 1.2345678901234567e5,
      n: [-92233720368547758080n, 1],
      k: 9007199254740991,
      d: 0.30000000000000004,
      z: -0,
      e: 100,
    });
    expect(Object.keys(readExactJson('{"__proto__":1}') as object)).toEqual(['__proto__']);
  });

  it('refuses what JSON.parse refuses', () => {
    for (const bad of [
      '',
      '{',
      '{"a":1,}',
      '[1,]',
      '01',
      '1.',
      '-',
      '{"a" 1}',
      'nul',
      '"abc',
      '{"a":1}x',
      '1e',
      '[1 2]',
    ]) {
      expect(() => JSON.parse(bad), bad).toThrow(SyntaxError);
      expect(() => readExactJson(bad), bad).toThrow(SyntaxError);
      expect(() => readEnvelope(bad), bad).toThrow(SyntaxError);
    }
    expect(() => readEnvelope('{"before":null,"source":{"a":[1,{"b":"}"}]')).toThrow(SyntaxError);
  });

  it("reads an envelope's parts and skips the rest", () => {
    const text =
      '{"before":{"id":1,"j":{"source":"x"}},"after":{"id":1,"big":9007199254740993},"source":{"version":"1","ts_ns":1704164645123456789000,' +
      '"seq":"[\\"1\\",\\"2\\"]","schema":"public","table":"t\\"q","txId":7,"lsn":123456,"xmin":null},"transaction":{"id":"7:1","total_order":1},"op":"u","ts_ns":1704164645123456789000}';
    expect(readEnvelope(text)).toEqual({
      before: { id: 1, j: { source: 'x' } },
      after: { id: 1, big: 9007199254740993n },
      op: 'u',
      schema: 'public',
      table: 't"q',
      lsn: 123456,
    });
    expect(readEnvelope('{"id":1,"__op":"c"}')).toMatchObject({ whole: { id: 1, __op: 'c' } });
    expect(readEnvelope('{"before":null,"after":null,"source":null,"op":"t"}')).toMatchObject({
      op: 't',
      table: undefined,
    });
  });
});
