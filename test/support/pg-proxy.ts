import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that a test can cut and restore (a real network fault).
 * With `muteAfterReplicationStart`, it stops passing the server's bytes on once the server has
 * accepted START_REPLICATION (its CopyBothResponse, message 'W'): the client is streaming and has
 * received nothing yet.
 */
export class CuttableProxy {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  port = 0;
  /** How many connections have had the server's replies muted. */
  muted = 0;

  constructor(
    private readonly host: string,
    private readonly targetPort: number,
    options: { muteAfterReplicationStart?: boolean } = {},
  ) {
    this.muteAfterReplicationStart = options.muteAfterReplicationStart ?? false;
  }

  /** Read when a connection opens. */
  muteAfterReplicationStart: boolean;

  /** The URL `url` with its port replaced by the proxy's. */
  through(url: string): string {
    const u = new URL(url);
    u.port = String(this.port);
    return u.toString();
  }

  async open(): Promise<void> {
    const server = createServer((client) => {
      const upstream = connect(this.targetPort, this.host);
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream);
      if (this.muteAfterReplicationStart) upstream.on('data', this.#muter(client));
      else upstream.pipe(client);
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.port = (server.address() as { port: number }).port;
  }

  /** Passes whole server messages on up to and including the first CopyBothResponse, then nothing. */
  #muter(client: Socket): (chunk: Buffer) => void {
    let pending = Buffer.alloc(0);
    let muted = false;
    return (chunk) => {
      if (muted) return;
      pending = Buffer.concat([pending, chunk]);
      let at = 0;
      while (pending.length - at >= 5) {
        const length = 1 + pending.readInt32BE(at + 1);
        if (pending.length - at < length) break;
        const type = pending[at];
        at += length;
        if (type === 0x57) {
          muted = true;
          this.muted++;
          break;
        }
      }
      client.write(pending.subarray(0, at));
      pending = muted ? Buffer.alloc(0) : pending.subarray(at);
    };
  }

  async cut(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
