import { afterAll, beforeAll } from 'vitest';
import type { CliProcess } from './cli.ts';
import { NatsCluster } from './nats-cluster.ts';

export interface NatsSuite {
  /** The 3-node loopback cluster, set before the suite's first test. */
  cluster: NatsCluster;
  /** CLI processes the tests started: killed (SIGKILL) after the suite. */
  readonly procs: CliProcess[];
}

/**
 * For the tests of a `describe` that run CLI processes against a NATS cluster: starts the cluster
 * before them; after them kills the processes registered in `procs`, stops the cluster and
 * removes `dirs`.
 */
export function natsSuite(dirs: { removeAll(): void }): NatsSuite {
  const suite = { procs: [] as CliProcess[] } as unknown as NatsSuite;
  beforeAll(async () => {
    suite.cluster = await NatsCluster.start();
  }, 60_000);
  afterAll(async () => {
    for (const p of suite.procs) p.child.kill('SIGKILL');
    await Promise.all(suite.procs.map((p) => p.exited));
    await suite.cluster?.stop();
    dirs.removeAll();
  });
  return suite;
}
