import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';

/** A consumer found on disk: `<dir>/<name>/index.ts` (preferred), or another of CONSUMER_MODULE_FILES. */
export interface DiscoveredConsumer {
  readonly name: string;
  /** Absolute path of the consumer's folder. */
  readonly dir: string;
  /** Absolute path of its entry module. */
  readonly module: string;
}

/** Lower-case letters, digits and dashes, starting with a letter: usable as a group, file and label. */
export const CONSUMER_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function validateConsumerName(name: string, where?: string): void {
  if (!CONSUMER_NAME.test(name)) {
    throw new ConfigError(
      `invalid consumer name ${JSON.stringify(name)}${where ? ` (${where})` : ''}: use lower-case letters, digits and dashes, starting with a letter, at most 63 characters`,
      { hint: 'rename the consumer folder, e.g. consumers/order-totals' },
    );
  }
}

/** Entry modules of a consumer folder, in order of preference (TypeScript first). */
export const CONSUMER_MODULE_FILES = [
  'index.ts',
  'index.mts',
  'index.cts',
  'index.js',
  'index.mjs',
  'index.cjs',
] as const;

/** An entry of the consumers directory that is not run, and why (printed by run/up and `consumers`). */
export interface SkippedConsumerFolder {
  readonly name: string;
  readonly path: string;
  readonly reason: string;
}

export interface ConsumerScan {
  readonly found: DiscoveredConsumer[];
  readonly skipped: SkippedConsumerFolder[];
}

/** The entry module of a consumer folder, or undefined. */
export function consumerModuleIn(folder: string): string | undefined {
  return CONSUMER_MODULE_FILES.map((f) => join(folder, f)).find((f) => existsSync(f));
}

/**
 * Every consumer folder under `dir`, sorted by name, and every entry that is not one with the
 * reason. A missing `dir` holds no consumers (a fresh project). Skipped, and named: a folder
 * without an index module (a work in progress), a folder whose name starts with `_` (shared
 * code, by convention), a loose file. Hidden entries and node_modules are passed over in silence.
 * An invalid folder name with an index module is an error that names it, so that a typo never
 * silently disables a consumer.
 */
export function scanConsumers(dir: string): ConsumerScan {
  const root = resolve(dir);
  if (!existsSync(root)) return { found: [], skipped: [] };
  if (!statSync(root).isDirectory()) {
    throw new ConfigError(`consumers directory ${root} is not a directory`, {
      hint: 'pass --consumers <dir> naming a folder that holds one folder per consumer',
    });
  }
  const found: DiscoveredConsumer[] = [];
  const skipped: SkippedConsumerFolder[] = [];
  const files = CONSUMER_MODULE_FILES.join(', ');
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (entry.name.startsWith('.') || entry.name === 'node_modules') continue;
    const path = join(root, entry.name);
    if (!entry.isDirectory()) {
      skipped.push({
        name: entry.name,
        path,
        reason: `a file, not a folder: a consumer is a folder <name>/index.ts`,
      });
      continue;
    }
    if (entry.name.startsWith('_')) {
      skipped.push({ name: entry.name, path, reason: 'its name starts with _ (kept for shared code)' });
      continue;
    }
    const module = consumerModuleIn(path);
    if (!module) {
      skipped.push({ name: entry.name, path, reason: `it has no entry module (one of ${files})` });
      continue;
    }
    validateConsumerName(entry.name, path);
    found.push({ name: entry.name, dir: path, module });
  }
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  return { found: found.sort(byName), skipped: skipped.sort(byName) };
}

/** The consumer folders under `dir` (see scanConsumers). */
export function discoverConsumers(dir: string): DiscoveredConsumer[] {
  return scanConsumers(dir).found;
}

/** One line per skipped entry, for run/up and the `consumers` listing. */
export function skippedLine(s: SkippedConsumerFolder): string {
  return `skipped ${s.path}: ${s.reason}`;
}
