import { describe, expect, it } from 'vitest';
import { isTributaryError } from '../../core/errors.ts';
import { escapeToken, LogNames, parseNatsUrl, unescapeToken } from './nats-names.ts';

describe('NATS names', () => {
  it('escapes any name into one subject token and KV key, reversibly', () => {
    for (const name of ['shop.public.orders', 'a b*c>d', 'Zoë 😀', 'x=y', '__schema-history', '']) {
      const token = escapeToken(name);
      expect(token).toMatch(/^[A-Za-z0-9_=-]*$/);
      expect(unescapeToken(token)).toBe(name);
    }
    expect(escapeToken('shop.public.orders')).toBe('shop=2Epublic=2Eorders');
    // Distinct names never share a token (the escape character itself is escaped).
    expect(escapeToken('a=2E')).not.toBe(escapeToken('a.'));
  });

  it('names the stream, bucket and subjects of a log', () => {
    const names = new LogNames('prod-eu');
    expect(names.stream).toBe('TRIBUTARY_PROD_EU');
    expect(names.bucket).toBe('tributary_prod_eu');
    expect(names.records('shop.public.orders', 3)).toBe('trib.prod-eu.r.shop=2Epublic=2Eorders.3');
    expect(names.checkpoint('postgres:slot')).toBe('trib.prod-eu.c.postgres=3Aslot');
    expect(LogNames.offsetKey('g.1', 't', 0)).toBe('o.g=2E1.t.0');
    expect(() => new LogNames('Bad Name')).toThrow(/log name "Bad Name" is not valid/);
  });

  it('parses nats:// URLs with one or several servers, and refuses others naming the fix', () => {
    expect(parseNatsUrl('nats://a:4222,b:4223, c')).toEqual([
      'nats://a:4222',
      'nats://b:4223',
      'nats://c:4222',
    ]);
    expect(parseNatsUrl('nats://10.0.0.1:4222,nats://10.0.0.2:4222')).toEqual([
      'nats://10.0.0.1:4222',
      'nats://10.0.0.2:4222',
    ]);
    for (const bad of ['http://a:4222', 'nats://', 'nats://a:99999', 'nats://a:b']) {
      let error: unknown;
      try {
        parseNatsUrl(bad);
      } catch (e) {
        error = e;
      }
      expect(isTributaryError(error) && error.hint, bad).toMatch(/nats:\/\//);
    }
  });
});
