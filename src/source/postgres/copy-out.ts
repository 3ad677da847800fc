import type pg from 'pg';
import type { CopyRows } from '../../encode/copy-row-batch.ts';
import { Submittable } from './submittable.ts';

/** Runs `COPY (<query>) TO STDOUT` (text format) and returns its rows as one buffer. */
export function copyRows(client: pg.Client, query: string, sizeHint: number): Promise<CopyRows> {
  const copy = new CopyOut(`copy (${query}) to stdout`, sizeHint);
  client.query(copy as unknown as pg.QueryConfig);
  return copy.done;
}

/** The parts of `pg`'s internal Connection that CopyOut uses. */
interface Connection {
  query(text: string): void;
  readonly stream?: NodeJS.EventEmitter;
}

type DataListener = (chunk: Buffer) => void;

const COPY_DATA = 0x64; // 'd'
const COPY_OUT_RESPONSE = 0x48; // 'H'
const COPY_DONE = 0x63; // 'c'

/**
 * A `pg` submittable for `COPY ... TO STDOUT` that gathers the rows (one CopyData message each)
 * into one buffer, framed as they came (`CopyRows`). The messages are taken from the socket
 * directly: `pg`'s parser makes an object and an event per message, which measured ~0.3 µs of CPU
 * per row (0.34-0.48 s of user CPU for 1,000,000 rows, more than half of what PostgreSQL spends
 * producing them) on the snapshot's critical path; and keeping the frames lets a socket read's run
 * of CopyData messages be copied at once (one copy per row took 235 ms per 1,000,000 rows, one per
 * read ~30 ms: bench/README.md). Anything but CopyOutResponse, CopyData and CopyDone
 * (CommandComplete, an error, a notice) hands the socket back to `pg`, from that message on;
 * CopyData that reaches `pg` still arrives here through `handleCopyData`. (pg-copy-streams, which
 * also takes the socket, parses in a Node stream: 1.3-1.6 s for 1,000,000 rows where psql took
 * 0.72-0.85 s.)
 */
export class CopyOut extends Submittable {
  readonly done: Promise<CopyRows>;
  private buffer: Buffer;
  private length = 0;
  /** CopyData messages: in COPY TO, PostgreSQL sends each row as one. */
  private rows = 0;
  private failed: Error | undefined;
  private resolve!: (rows: CopyRows) => void;
  private reject!: (error: Error) => void;
  private stream: NodeJS.EventEmitter | undefined;
  private pgListener: DataListener | undefined;
  /** Bytes of the current CopyData message (kept) or other message (skipped) still to come. */
  private copyLeft = 0;
  private skipLeft = 0;
  /** The first bytes of a header that the previous read ended in (not yet kept). */
  private header: Buffer | undefined;

  constructor(
    readonly text: string,
    sizeHint: number,
  ) {
    super();
    // Sized once when the hint holds: growing copies the buffer and leaves garbage behind.
    this.buffer = Buffer.allocUnsafe(sizeHint);
    this.done = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  /** Called by `pg` when the query's turn comes (its parser has consumed all earlier replies). */
  submit(connection: Connection): void {
    const stream = connection.stream;
    const listeners = stream?.listeners('data') ?? [];
    if (stream && listeners.length === 1) {
      this.stream = stream;
      this.pgListener = listeners[0] as DataListener;
      stream.removeListener('data', this.pgListener);
      stream.on('data', this.onData);
    }
    connection.query(this.text);
  }

  /**
   * Walks the messages of a read: each run of CopyData messages (with their headers) is kept with
   * one copy. A message may continue from the previous read; a header cut short (under 5 bytes)
   * is held until the next read.
   */
  private readonly onData = (read: Buffer): void => {
    let chunk = read;
    if (this.header) {
      // Rare: rejoin the cut header with this read (a copy of the read, once).
      chunk = Buffer.concat([this.header, read]);
      this.header = undefined;
    }
    let at = 0;
    let run = -1;
    if (this.copyLeft > 0) {
      const n = Math.min(this.copyLeft, chunk.length);
      this.copyLeft -= n;
      run = 0;
      at = n;
    } else if (this.skipLeft > 0) {
      const n = Math.min(this.skipLeft, chunk.length);
      this.skipLeft -= n;
      at = n;
    }
    while (at < chunk.length) {
      if (chunk.length - at < 5) {
        this.header = Buffer.from(chunk.subarray(at));
        break;
      }
      const code = chunk[at]!;
      const end = at + 1 + chunk.readUInt32BE(at + 1);
      if (code === COPY_DATA) {
        this.rows++;
        if (run < 0) run = at;
      } else {
        if (run >= 0) this.append(chunk, run, at);
        run = -1;
        if (code !== COPY_OUT_RESPONSE && code !== COPY_DONE) {
          this.giveBack(chunk.subarray(at));
          return;
        }
      }
      if (end > chunk.length) {
        if (code === COPY_DATA) this.copyLeft = end - chunk.length;
        else this.skipLeft = end - chunk.length;
        at = chunk.length;
      } else {
        at = end;
      }
    }
    if (run >= 0) this.append(chunk, run, at);
  };

  /** `pg` reads the socket again, starting with `rest`. */
  private giveBack(rest: Buffer): void {
    const stream = this.stream;
    const listener = this.pgListener;
    if (!stream || !listener) return;
    this.stream = undefined;
    this.pgListener = undefined;
    stream.removeListener('data', this.onData);
    stream.on('data', listener);
    if (rest.length > 0) listener(rest);
  }

  private append(source: Buffer, start: number, end: number): void {
    const size = end - start;
    if (this.length + size > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + size));
      this.buffer.copy(grown, 0, 0, this.length);
      this.buffer = grown;
    }
    source.copy(this.buffer, this.length, start, end);
    this.length += size;
  }

  handleCopyData(message: { chunk: Buffer }): void {
    // The payload is a view into the parser's buffer, which the next socket read may reuse: copied,
    // behind the header it came with.
    const header = Buffer.allocUnsafe(5);
    header[0] = COPY_DATA;
    header.writeUInt32BE(message.chunk.length + 4, 1);
    this.rows++;
    this.append(header, 0, 5);
    this.append(message.chunk, 0, message.chunk.length);
  }

  /** `pg` detaches a query when the server reports its error: the error ends it. */
  handleError(error: Error): void {
    this.giveBack(Buffer.alloc(0));
    this.failed ??= error;
    this.reject(error);
  }

  handleReadyForQuery(): void {
    if (this.failed) return;
    const data = this.buffer.subarray(0, this.length);
    this.resolve({ data, count: this.rows });
  }
}
