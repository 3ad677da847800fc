import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { findCycles, findLayerViolations, readImportGraph } from './import-graph.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

describe('the import graph of src/', () => {
  const graph = readImportGraph(SRC);

  it('reads every module and its imports', () => {
    expect(graph.size).toBeGreaterThan(100);
    expect(graph.get('server/pipeline-adapters.ts')).toContain('source/postgres/snapshot-signal.ts');
  });

  it('has no import circle', () => {
    expect(findCycles(graph)).toEqual([]);
  });

  it('only looks down: core <- source/encode/log/config <- capture <- consumers <- sinks <- server <- cli', () => {
    expect(findLayerViolations(graph)).toEqual([]);
  });
});

describe('the checks themselves, on a tree made for them', () => {
  const root = mkdtempSync(join(tmpdir(), 'import-graph-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  write('core/a.ts', "export type { B } from './b.ts';\n");
  write('core/b.ts', "import type { A } from './a.ts';\nexport type B = A;\n");
  write('capture/c.ts', "import { x } from '../cli/d.ts';\nexport const c = x;\n");
  write('cli/d.ts', "export const x = 1;\nconst lazy = () => import('../core/a.ts');\n");
  write('capture/e.ts', "import '../server/f.ts';\n");
  write('server/f.ts', 'export {};\n');
  write('misc/g.ts', 'export {};\n');
  write('capture/h.test.ts', "import '../cli/d.ts';\n");
  const made = readImportGraph(root);

  it('finds a circle of type-only imports and re-exports', () => {
    expect(findCycles(made)).toEqual([['core/a.ts', 'core/b.ts']]);
  });

  it('finds imports that look up, side-effect ones included, and folders without a layer; tests are left out', () => {
    expect(findLayerViolations(made)).toEqual([
      'capture/c.ts -> cli/d.ts (capture, layer 2 -> cli, layer 6)',
      'capture/e.ts -> server/f.ts (capture, layer 2 -> server, layer 5)',
      'misc/g.ts: folder misc/ has no layer (add it to LAYERS in test/structure/import-graph.ts)',
    ]);
    expect(made.get('cli/d.ts')).toEqual(['core/a.ts']);
  });
});
