import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderConfigDocs } from './config-docs.ts';
import { SETTINGS } from './config-schema.ts';

describe('configuration docs', () => {
  it('are generated from the schema and up to date (run `npm run docs` after changing a setting)', () => {
    const onDisk = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    expect(onDisk).toBe(renderConfigDocs());
  });
  it('describe every setting', () => {
    for (const s of SETTINGS) expect(s.description.length, s.path).toBeGreaterThan(20);
  });
});
