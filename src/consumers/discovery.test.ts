import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { discoverConsumers, scanConsumers, skippedLine } from './discovery.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tree(files: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'discovery-'));
  dirs.push(root);
  for (const f of files) {
    mkdirSync(join(root, f, '..'), { recursive: true });
    writeFileSync(join(root, f), 'export default {};\n');
  }
  return root;
}

describe('discoverConsumers', () => {
  it('finds index.ts and index.js folders, sorted, preferring index.ts', () => {
    const root = tree([
      'b-two/index.js',
      'a-one/index.ts',
      'a-one/index.js',
      'empty/readme.md',
      '_lib/index.ts',
    ]);
    const found = discoverConsumers(root);
    expect(found.map((c) => c.name)).toEqual(['a-one', 'b-two']);
    expect(found[0]!.module).toBe(join(root, 'a-one', 'index.ts'));
  });

  it('returns nothing for a missing folder', () => {
    expect(discoverConsumers(join(tmpdir(), 'no-such-consumers-dir-xyz'))).toEqual([]);
  });

  it('rejects an invalid name with a clear error', () => {
    const root = tree(['Bad_Name/index.ts']);
    expect(() => discoverConsumers(root)).toThrow(/invalid consumer name "Bad_Name"/);
  });
});

describe('scanConsumers', () => {
  it('accepts every common module extension, TypeScript first', () => {
    const root = tree([
      'm/index.mjs',
      'c/index.cjs',
      't/index.mts',
      'u/index.cts',
      'j/index.js',
      'both/index.mjs',
      'both/index.ts',
    ]);
    const found = scanConsumers(root).found;
    expect(found.map((c) => [c.name, c.module.slice(root.length + 1)])).toEqual([
      ['both', join('both', 'index.ts')],
      ['c', join('c', 'index.cjs')],
      ['j', join('j', 'index.js')],
      ['m', join('m', 'index.mjs')],
      ['t', join('t', 'index.mts')],
      ['u', join('u', 'index.cts')],
    ]);
  });

  it('names every entry that is skipped, and why', () => {
    const root = tree([
      'wip/main.ts',
      '_lib/index.ts',
      'orders.ts',
      '.hidden/index.ts',
      'node_modules/x/index.js',
      'ok/index.ts',
    ]);
    const { found, skipped } = scanConsumers(root);
    expect(found.map((c) => c.name)).toEqual(['ok']);
    expect(skipped.map((s) => [s.name, s.reason])).toEqual([
      ['_lib', 'its name starts with _ (kept for shared code)'],
      ['orders.ts', 'a file, not a folder: a consumer is a folder <name>/index.ts'],
      [
        'wip',
        'it has no entry module (one of index.ts, index.mts, index.cts, index.js, index.mjs, index.cjs)',
      ],
    ]);
    expect(skippedLine(skipped[2]!)).toBe(`skipped ${join(root, 'wip')}: ${skipped[2]!.reason}`);
  });
});
