import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { SourceConnectionError, TributaryError } from '../../core/errors.ts';
import { classifyPgError } from './postgres-errors.ts';

/**
 * A connection opened on first use and opened again after it broke: for the side connections
 * of the capture (catalog, heartbeats, slot polls, snapshot chunks, TOAST lookups) that must not
 * fail the stream when the server drops them between uses. Connection errors are classified (bad
 * URL, password...).
 *
 * One statement at a time: the connection is never handed out bare. `use(work)` and `query()`
 * wait their turn in one FIFO queue, so independent tasks sharing the connection (a heartbeat
 * timer, the status poll, the stream's catalog look-ups) never send a query while another is
 * running on it, which `pg` deprecates and 9.0 will refuse. Work runs in the order asked; a
 * failed one does not stop the queue. `work` must not call back into the same LazyClient (it
 * would wait for itself): that is refused with an error rather than left to hang.
 */
export class LazyClient {
  private client: pg.Client | undefined;
  /** Callers that ask while a connection is being opened share it. */
  private opening: Promise<pg.Client> | undefined;
  /** Settles when the last work asked for is done. */
  private turn: Promise<unknown> = Promise.resolve();
  /** Counts `close()` calls: work asked for before one fails rather than open a new connection. */
  private closes = 0;
  /** Which LazyClient's turn the running code is inside (to refuse re-entry). */
  private static readonly holding = new AsyncLocalStorage<LazyClient>();

  constructor(private readonly config: pg.ClientConfig & { connectionString: string }) {}

  /** Runs `work` with the connection to itself, once all the work asked for before it is done. */
  use<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
    if (LazyClient.holding.getStore() === this) {
      return Promise.reject(
        new TributaryError(
          'CONNECTION_REENTRANT',
          `re-entrant use of the ${this.config.application_name ?? 'side'} connection: work holding it asked for it again, which would wait for itself`,
        ),
      );
    }
    const asked = this.closes;
    const run = this.turn.then(() => {
      if (this.closes !== asked) {
        throw new SourceConnectionError(
          `the ${this.config.application_name ?? 'side'} connection was closed before this statement ran`,
        );
      }
      return LazyClient.holding.run(this, async () => work(await this.get()));
    });
    this.turn = run.catch(() => undefined);
    return run;
  }

  /** One statement, in turn (see `use`). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | pg.QueryConfig,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    return this.use((client) =>
      typeof text === 'string' ? client.query<R>(text, values) : client.query<R>(text),
    );
  }

  private get(): Promise<pg.Client> {
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

  /**
   * Idempotent; ends the connection now: work running on it fails, and so does work asked for
   * before the close and still waiting (SOURCE_CONNECTION, retryable), as on a connection that
   * dropped. Work asked for afterwards opens a new connection. It does not run the queue first;
   * `pg` still ends the connection only once the server has finished the running statement.
   */
  async close(): Promise<void> {
    this.closes++;
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
