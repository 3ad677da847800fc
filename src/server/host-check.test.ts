import { describe, expect, it } from 'vitest';
import { checkHost, hostName } from './host-check.ts';
import { prototypeKey } from './json-body.ts';

describe('checkHost', () => {
  it('takes the name out of Host values', () => {
    expect(hostName('LOCALHOST:7070')).toBe('localhost');
    expect(hostName('[::1]:7070')).toBe('[::1]');
    expect(hostName('127.0.0.1')).toBe('127.0.0.1');
  });
  it('accepts loopback names and configured ones, refuses others and foreign origins', () => {
    for (const host of ['localhost:1', '127.0.0.1:7070', '127.1.2.3', '[::1]:80', 'proxy.lan:443'])
      expect(checkHost({ host }, ['proxy.lan']).allowed, host).toBe(true);
    for (const host of [
      'evil.example.com',
      'evil.example.com:7070',
      'localhost.evil.com',
      '',
      '0.0.0.0:7070',
    ])
      expect(checkHost({ host }, []).allowed, host).toBe(false);
    expect(checkHost({ host: 'localhost:1', origin: 'http://localhost:1' }, []).allowed).toBe(true);
    expect(checkHost({ host: 'localhost:1', origin: 'https://evil.example.com' }, []).allowed).toBe(false);
    expect(checkHost({ host: 'localhost:1', origin: 'null' }, []).allowed).toBe(false);
    expect(checkHost({}, []).allowed).toBe(true);
  });
});

describe('prototypeKey', () => {
  it('finds __proto__ and constructor.prototype at any depth', () => {
    expect(prototypeKey(JSON.parse('{"a":1}'))).toBeUndefined();
    expect(prototypeKey(JSON.parse('{"a":{"__proto__":{}}}'))).toBe('a.__proto__');
    expect(prototypeKey(JSON.parse('[{"constructor":{"prototype":{}}}]'))).toBe('0.constructor.prototype');
    expect(prototypeKey(JSON.parse('{"constructor":"fine"}'))).toBeUndefined();
  });
});
