import { Submittable } from './submittable.ts';

/** The part of `pg`'s internal Connection that a COPY BOTH stream uses. */
interface Connection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/**
 * A `pg` submittable that runs START_REPLICATION and hands every CopyData payload to `onData`
 * synchronously, as the protocol parser emits them. `done` settles when the server ends the
 * stream (after our CopyDone) or fails it.
 */
export class ReplicationStream extends Submittable {
  readonly text: string;
  readonly done: Promise<void>;
  private connection: Connection | undefined;
  private resolveDone!: () => void;
  private rejectDone!: (error: Error) => void;
  private failed: Error | undefined;
  private ended = false;

  constructor(
    command: string,
    private readonly onData: (chunk: Buffer) => void,
  ) {
    super();
    this.text = command;
    this.done = new Promise((resolve, reject) => {
      this.resolveDone = resolve;
      this.rejectDone = reject;
    });
    // A stream nobody awaits yet must not crash the process with an unhandled rejection.
    this.done.catch(() => undefined);
  }

  /** Called by `pg` when the query's turn comes. */
  submit(connection: Connection): void {
    this.connection = connection;
    connection.query(this.text);
  }

  /** Sends one CopyData message (a standby status update) to the server. */
  send(payload: Buffer): void {
    if (!this.ended) this.connection?.sendCopyFromChunk(payload);
  }

  /** Asks the server to end the stream; `done` resolves when it has. */
  end(): void {
    if (this.ended || !this.connection) return;
    this.ended = true;
    this.connection.endCopyFrom();
  }

  get socket(): NodeJS.ReadableStream | undefined {
    return (this.connection as unknown as { stream?: NodeJS.ReadableStream } | undefined)?.stream;
  }

  handleCopyData(message: { chunk: Buffer }): void {
    this.onData(message.chunk);
  }

  /**
   * `pg` detaches a query from the connection when the server reports its error, so the
   * ReadyForQuery that follows never reaches us: an error is the end of the stream.
   */
  handleError(error: Error): void {
    if (this.failed) return;
    this.failed = error;
    this.ended = true;
    this.rejectDone(error);
  }

  handleReadyForQuery(): void {
    this.ended = true;
    if (this.failed) this.rejectDone(this.failed);
    else this.resolveDone();
  }

  /** The connection closed under us: fail the stream. */
  abort(error: Error): void {
    if (this.ended && !this.failed) return;
    this.ended = true;
    this.rejectDone(error);
  }
}
