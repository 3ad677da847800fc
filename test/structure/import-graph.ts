import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The import graph of src/ and the two rules it keeps (BRIEF.md, "Structure"): no import circles,
 * and layers only look down. Read with TypeScript's own pre-processor, so every form counts:
 * `import`, `import type`, `export ... from`, side-effect imports and `import('...')`.
 */

/**
 * Each top-level folder of src/ and its layer: a file may import from its own layer or a lower
 * one, never a higher one. Folders of one layer (source, encode, log, config) may use each other.
 */
export const LAYERS: Readonly<Record<string, number>> = {
  core: 0,
  source: 1,
  encode: 1,
  log: 1,
  config: 1,
  capture: 2,
  consumers: 3,
  sinks: 4,
  server: 5,
  cli: 6,
};

/** File (relative to the root, `/`-separated) -> the files it imports (same form). */
export type ImportGraph = ReadonlyMap<string, readonly string[]>;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (/\.(ts|mts|cts)$/.test(entry.name) && !/\.test\.ts$/.test(entry.name)) out.push(path);
  }
  return out;
}

/** The graph of the non-test TypeScript files under `root`; imports leaving `root` are left out. */
export function readImportGraph(root: string): ImportGraph {
  const graph = new Map<string, string[]>();
  const name = (path: string) => relative(root, path).split(sep).join('/');
  for (const file of sourceFiles(root)) {
    const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    const targets: string[] = [];
    for (const imported of info.importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      const target = resolve(dirname(file), imported.fileName);
      const rel = relative(root, target);
      if (rel.startsWith('..')) continue;
      targets.push(name(target));
    }
    graph.set(name(file), targets);
  }
  return graph;
}

/** Every import circle (strongly connected component of more than one file, or a file importing itself). */
export function findCycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative so that a deep graph cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let next = 0;
  for (const start of graph.keys()) {
    if (index.has(start)) continue;
    const work: { node: string; edge: number }[] = [{ node: start, edge: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1]!;
      const edges = graph.get(frame.node) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++]!;
        if (!graph.has(to)) continue;
        if (!index.has(to)) {
          index.set(to, next);
          low.set(to, next++);
          stack.push(to);
          onStack.add(to);
          work.push({ node: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.node, Math.min(low.get(frame.node)!, index.get(to)!));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.node, Math.min(low.get(parent.node)!, low.get(frame.node)!));
      if (low.get(frame.node) === index.get(frame.node)) {
        const component: string[] = [];
        let member: string;
        do {
          member = stack.pop()!;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.node);
        if (component.length > 1 || edges.includes(frame.node)) cycles.push(component.sort());
      }
    }
  }
  return cycles;
}

/**
 * Imports that look up (into a higher layer), as `from -> to (layer a -> layer b)`, and files in a
 * folder that has no layer (add it to LAYERS). Files at the root of src/ (the package's entry) may
 * import anything.
 */
export function findLayerViolations(graph: ImportGraph, layers = LAYERS): string[] {
  const folder = (file: string) => (file.includes('/') ? file.slice(0, file.indexOf('/')) : null);
  const problems: string[] = [];
  for (const [from, targets] of graph) {
    const a = folder(from);
    if (a === null) continue;
    const layerA = layers[a];
    if (layerA === undefined) {
      problems.push(
        `${from}: folder ${a}/ has no layer (add it to LAYERS in test/structure/import-graph.ts)`,
      );
      continue;
    }
    for (const to of targets) {
      const b = folder(to);
      if (b === null || b === a) continue;
      const layerB = layers[b];
      if (layerB === undefined) continue; // reported for its own files
      if (layerB > layerA) problems.push(`${from} -> ${to} (${a}, layer ${layerA} -> ${b}, layer ${layerB})`);
    }
  }
  return problems.sort();
}
