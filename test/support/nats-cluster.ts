import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../src/cli/free-port.ts';

/** The Debian package's binary; `.ci/run` installs it when missing. */
export const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';

interface NodePorts {
  readonly name: string;
  readonly client: number;
  readonly cluster: number;
  readonly http: number;
  readonly storeDir: string;
  readonly configFile: string;
  readonly logFile: string;
}

export interface NatsClusterOptions {
  /** Nodes in the cluster (default 3). One node runs stand-alone, without a cluster block. */
  readonly nodes?: number;
  /** false starts the servers without JetStream (to test that error). Default true. */
  readonly jetstream?: boolean;
}

/**
 * A throwaway NATS cluster with JetStream on loopback: each node has its own free client, route and
 * monitoring ports and its own store dir under one temp dir. Nodes are killed by pid (never by name),
 * a node can be killed with SIGKILL and restarted on the same ports and store.
 */
export class NatsCluster {
  readonly dir: string;
  readonly #nodes: NodePorts[];
  readonly #processes: (ChildProcess | undefined)[];

  private constructor(dir: string, nodes: NodePorts[]) {
    this.dir = dir;
    this.#nodes = nodes;
    this.#processes = nodes.map(() => undefined);
  }

  static async start(options: NatsClusterOptions = {}): Promise<NatsCluster> {
    const count = options.nodes ?? 3;
    const dir = mkdtempSync(join(tmpdir(), 'tributary-nats-'));
    const nodes: NodePorts[] = [];
    // The kernel may hand the same free port out twice in a row: each port of the cluster distinct
    // (a repeated route port makes nats-server refuse its config: "Duplicate route entry").
    const taken = new Set<number>();
    const port = async (): Promise<number> => {
      for (;;) {
        const candidate = await freePort();
        if (!taken.has(candidate)) {
          taken.add(candidate);
          return candidate;
        }
      }
    };
    for (let i = 0; i < count; i++) {
      nodes.push({
        name: `n${i + 1}`,
        client: await port(),
        cluster: await port(),
        http: await port(),
        storeDir: join(dir, `n${i + 1}`, 'store'),
        configFile: join(dir, `n${i + 1}`, 'nats.conf'),
        logFile: join(dir, `n${i + 1}`, 'nats.log'),
      });
    }
    for (const node of nodes) {
      mkdirSync(join(dir, node.name), { recursive: true });
      writeFileSync(node.configFile, configText(node, nodes, options.jetstream ?? true));
    }
    const cluster = new NatsCluster(dir, nodes);
    try {
      await Promise.all(nodes.map((_, i) => cluster.startNode(i)));
      await cluster.waitHealthy();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** Client URLs of every node, e.g. for `nats://a,b,c`. */
  get urls(): readonly string[] {
    return this.#nodes.map((n) => `nats://127.0.0.1:${n.client}`);
  }

  /** The log URL naming every node: `nats://127.0.0.1:p1,127.0.0.1:p2,...`. */
  get url(): string {
    return `nats://${this.#nodes.map((n) => `127.0.0.1:${n.client}`).join(',')}`;
  }

  get names(): readonly string[] {
    return this.#nodes.map((n) => n.name);
  }

  clientPort(index: number): number {
    return this.#nodes[index]!.client;
  }

  indexOf(serverName: string): number {
    const index = this.#nodes.findIndex((n) => n.name === serverName);
    if (index < 0) throw new Error(`no node named ${serverName} (nodes: ${this.names.join(', ')})`);
    return index;
  }

  isRunning(index: number): boolean {
    const child = this.#processes[index];
    return child !== undefined && child.exitCode === null && child.signalCode === null;
  }

  /** Starts node `index` (again) on its ports and store dir; resolves once it answers /healthz. */
  async startNode(index: number): Promise<void> {
    if (this.isRunning(index)) return;
    const node = this.#nodes[index]!;
    const child = spawn(NATS_SERVER, ['-c', node.configFile, '-l', node.logFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const spawned = once(child, 'spawn').then(
      () => undefined,
      (error: Error) => {
        throw new Error(`cannot start ${NATS_SERVER}: ${error.message} (install Debian's nats-server)`);
      },
    );
    this.#processes[index] = child;
    await spawned;
    const deadline = Date.now() + 20_000;
    while (!(await this.#answers(node, '/varz'))) {
      if (!this.isRunning(index)) {
        throw new Error(`nats-server ${node.name} exited: ${stderr.trim()} (log ${node.logFile})`);
      }
      if (Date.now() > deadline)
        throw new Error(`nats-server ${node.name} did not answer on port ${node.http}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** SIGKILL to node `index` (by pid); resolves once the process has exited. */
  async kill(index: number): Promise<void> {
    const child = this.#processes[index];
    if (child === undefined || !this.isRunning(index)) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  /** kill -9 then start again on the same ports and store. */
  async restart(index: number): Promise<void> {
    await this.kill(index);
    await this.startNode(index);
  }

  /** Waits until every running node reports JetStream healthy (meta leader known, streams current). */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const running = this.#nodes.filter((_, i) => this.isRunning(i));
      const healthy = await Promise.all(running.map((n) => this.#answers(n, '/healthz')));
      if (healthy.every(Boolean)) return;
      if (Date.now() > deadline) {
        const sick = running.filter((_, i) => !healthy[i]).map((n) => n.name);
        throw new Error(
          `NATS nodes ${sick.join(', ')} not healthy after ${timeoutMs} ms (logs in ${this.dir})`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kills every node by pid and removes the temp dir. Idempotent. */
  async stop(): Promise<void> {
    await Promise.all(this.#nodes.map((_, i) => this.kill(i)));
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #answers(node: NodePorts, path: string): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${node.http}${path}`, {
        signal: AbortSignal.timeout(2_000),
      });
      await response.arrayBuffer();
      return response.ok;
    } catch {
      return false;
    }
  }
}

function configText(node: NodePorts, all: readonly NodePorts[], jetstream: boolean): string {
  const lines = [
    `server_name: ${node.name}`,
    `listen: "127.0.0.1:${node.client}"`,
    `http: "127.0.0.1:${node.http}"`,
  ];
  if (jetstream) {
    lines.push(
      'jetstream {',
      `  store_dir: ${JSON.stringify(node.storeDir)}`,
      '  max_memory_store: 256MB',
      '  max_file_store: 4GB',
      '}',
    );
  }
  if (all.length > 1) {
    const routes = all.map((n) => `"nats-route://127.0.0.1:${n.cluster}"`).join(', ');
    lines.push(
      'cluster {',
      '  name: tributary-test',
      `  listen: "127.0.0.1:${node.cluster}"`,
      `  routes: [${routes}]`,
      '}',
    );
  }
  return `${lines.join('\n')}\n`;
}
