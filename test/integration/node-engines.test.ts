/**
 * The README promises Node.js ≥ 20.19 (package.json `engines.node`). Every package the lock file
 * installs must accept the oldest Node version that range allows, or `npm ci` warns
 * (EBADENGINE) and the package may not work there (cookie@2 and @nats-io/nuid@3 need Node 22).
 */
import { readFileSync } from 'node:fs';
import semver from 'semver';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url);
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string } };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as {
  packages: Record<string, { engines?: { node?: string } | string[]; optional?: boolean; os?: string[] }>;
};

describe('dependencies and the Node versions the README names', () => {
  it('every installed package accepts the oldest supported Node and the running one', () => {
    const oldest = semver.minVersion(pkg.engines.node)?.version;
    expect(oldest).toMatch(/^20\./);
    const readme = readFileSync(new URL('README.md', root), 'utf8');
    // The README names the same minimum as package.json.
    expect(readme).toContain(`Node.js ≥ ${oldest?.replace(/\.0$/, '')}`);
    const refused: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
      if (!path || !range) continue;
      // Platform packages for other systems are never installed here.
      if (entry.os && !entry.os.includes(process.platform)) continue;
      for (const version of [oldest as string, process.versions.node]) {
        if (!semver.satisfies(version, range, { includePrerelease: true })) {
          refused.push(`${path.replace(/^.*node_modules\//, '')} needs node ${range} (not ${version})`);
        }
      }
    }
    expect(refused).toEqual([]);
  });
});
