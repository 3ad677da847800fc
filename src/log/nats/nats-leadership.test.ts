import { describe, expect, it } from 'vitest';
import { decodeTerm, supersededError } from './nats-leadership.ts';

const bytes = (text: string) => new TextEncoder().encode(text);

describe('leadership terms', () => {
  it('decodes a term and refuses anything that is not one', () => {
    const term = { term: 3, holder: 'host pid 1 (/data)', since: '2026-01-01T00:00:00.000Z' };
    expect(decodeTerm(bytes(JSON.stringify(term)))).toEqual(term);
    expect(decodeTerm(bytes('{"term":"3"}'))).toBeNull();
    expect(decodeTerm(bytes('not json'))).toBeNull();
  });

  it('names the term that superseded a writer, and what to do', () => {
    const own = { term: 1, holder: 'a', since: 'then' };
    const error = supersededError('TRIBUTARY_X', own, { term: 2, holder: 'b pid 7 (/d)', since: 'now' });
    expect(error.code).toBe('LOG_FENCED');
    expect(error.message).toContain('held term 1, term 2 is held by b pid 7 (/d) since now');
    expect(error.hint).toContain('--standby');
    expect(supersededError('TRIBUTARY_X', own, null).message).toContain('its term is gone');
  });
});
