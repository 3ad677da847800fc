import type { TestProject } from 'vitest/node';
import { type PgCluster, startCluster } from './pg-cluster.ts';

/** PostgreSQL versions the replication tests run on. */
export const PG_VERSIONS = [15, 18] as const;

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrls: Record<string, string>;
  }
}

/** Starts one throwaway cluster per version for the whole run; each test makes its own database. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const clusters: PgCluster[] = [];
  const urls: Record<string, string> = {};
  try {
    for (const version of PG_VERSIONS) {
      const cluster = await startCluster({ version });
      clusters.push(cluster);
      urls[String(version)] = cluster.url();
    }
  } catch (error) {
    await Promise.all(clusters.map((c) => c.stop()));
    throw error;
  }
  project.provide('pgUrls', urls);
  return async () => {
    await Promise.all(clusters.map((c) => c.stop()));
  };
}
