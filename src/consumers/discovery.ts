import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../core/errors.ts';

/** A consumer found on disk: `<dir>/<name>/index.ts` (preferred) or `index.js`. */
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

/**
 * Every consumer folder under `dir`, sorted by name. A missing `dir` holds no consumers (a fresh
 * project); a folder without an index module is skipped (a work in progress, or a shared library
 * folder whose name starts with `_` or `.`). An invalid folder name with an index module is an
 * error that names it, so that a typo never silently disables a consumer.
 */
export function discoverConsumers(dir: string): DiscoveredConsumer[] {
  const root = resolve(dir);
  if (!existsSync(root)) return [];
  if (!statSync(root).isDirectory()) {
    throw new ConfigError(`consumers directory ${root} is not a directory`, {
      hint: 'pass --consumers <dir> naming a folder that holds one folder per consumer',
    });
  }
  const found: DiscoveredConsumer[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.') || entry.name.startsWith('_')) continue;
    if (entry.name === 'node_modules') continue;
    const folder = join(root, entry.name);
    const module = ['index.ts', 'index.js'].map((f) => join(folder, f)).find((f) => existsSync(f));
    if (!module) continue;
    validateConsumerName(entry.name, folder);
    found.push({ name: entry.name, dir: folder, module });
  }
  return found.sort((a, b) => a.name.localeCompare(b.name));
}
