import pg from 'pg';
import { classifyPgError } from './postgres-errors.ts';

/**
 * A connection opened on first use and opened again after it broke: for the side connections
 * of the capture (catalog, snapshot chunks, TOAST lookups) that must not fail the stream when the
 * server drops them between uses. Connection errors are classified (bad URL, password...).
 */
export class LazyClient {
  private client: pg.Client | undefined;

  constructor(private readonly config: pg.ClientConfig & { connectionString: string }) {}

  async get(): Promise<pg.Client> {
    if (this.client) return this.client;
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
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }
}
