import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { discoverConsumers } from './discovery.ts';

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
