import { describe, expect, it } from 'vitest';
import { jsonErrorPosition } from './json-error-position.ts';

describe('jsonErrorPosition', () => {
  it('is null for valid JSON', () => {
    expect(jsonErrorPosition('{"a": [1, -2.5e3, true, false, null, "x\\n\\u00e9"], "b": {}}')).toBeNull();
  });

  it.each([
    ['{\n  "a": 1\n  "b": 2\n}', 3, 3, '"b": 2'],
    ['{\n "a": }', 2, 7, '"a": }'],
    ['{"a": 1,}', 1, 9, '{"a": 1,}'],
    ["{\n  'a': 1\n}", 2, 3, "'a': 1"],
    ['{"a": tru}', 1, 10, '{"a": tru}'],
    ['{"a": 1', 1, 8, '{"a": 1'],
    ['{"a": 1} x', 1, 10, '{"a": 1} x'],
    ['{"a": 01}', 1, 8, '{"a": 01}'],
  ])('finds the first bad character of %j', (text, line, column, lineText) => {
    expect(JSON.parse.bind(null, text)).toThrow();
    const at = jsonErrorPosition(text);
    expect(at).toMatchObject({ line, column });
    expect(at?.lineText.trim()).toBe(lineText);
  });
});
