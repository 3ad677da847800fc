import pg from 'pg';
import { classifyPgError } from './postgres-errors.ts';

/**
 * A connection opened on first use and opened again after it broke: for the side connections
 * of the capture (catalog, snapshot chunks, TOAST lookups) that must not fail the stream when the
 * server drops them between uses. Connection errors are classified (bad URL, password...).
 */
export class LazyClient {
  private client: pg.Client | undefined;
  /** Callers that ask while a connection is being opened share it: their queries stay in order. */
  private opening: Promise<pg.Client> | undefined;

  constructor(private readonly config: pg.ClientConfig & { connectionString: string }) {}

  get(): Promise<pg.Client> {
    if (this.client) return Promise.resolve(this.client);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<pg.Client> {
    const client = new pg.Client(this.config);
    client.on('error', () => {
      if (this.client === client) this.client = undefined;
    });
    try {
      await client.connect();
    } catch (error) {
      throw classifyPgError(error, this.config.connectionString);
    }
    this.client = client;
    return client;
  }

  /** Idempotent; a later `get()` opens a new connection. */
  async close(): Promise<void> {
    const client = this.client;
    const opening = this.opening;
    this.client = undefined;
    await client?.end().catch(() => undefined);
    // A connection still being opened is closed once open, unless someone took it since.
    const late = await opening?.catch(() => undefined);
    if (late && (this.client as pg.Client | undefined) === late) {
      this.client = undefined;
      await late.end().catch(() => undefined);
    }
  }
}
