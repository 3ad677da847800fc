/**
 * The one way CLI commands write their output (stdout), so that a pipe gets all of it.
 *
 * Guarantees:
 * - Every line written is delivered before the process exits: `main.ts` awaits `flushOutput()`
 *   before `process.exit`, which resolves once the stream has handed every queued byte to the OS
 *   (on POSIX a pipe is written asynchronously; `process.exit` alone drops what is still queued).
 * - Backpressure: `write` resolves when the stream can take more (`'drain'`), so a command that
 *   awaits each write holds at most one stream buffer in memory, however slow the reader.
 * - A reader that closes early (`tributary read ... | head -n 5`) ends the process quietly with
 *   exit code 0, as a program killed by SIGPIPE would end, without a stack trace: the rest of the
 *   output has nowhere to go. Commands write their output last (after any state change), so what
 *   is cut short is only output.
 *
 * Writes are in call order; `write` may be called without awaiting (the order is kept) but then
 * the memory bound does not hold.
 */
import type { Writable } from 'node:stream';

export class OutputWriter {
  private closed = false;

  constructor(
    private readonly stream: Writable,
    private readonly onReaderGone: () => void,
  ) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE' || error.code === 'ERR_STREAM_DESTROYED') {
        this.closed = true;
        this.onReaderGone();
        return;
      }
      throw error;
    });
  }

  /** Whether the reader went away; later writes are dropped. */
  get readerGone(): boolean {
    return this.closed;
  }

  /** Queues `text`; resolves when the stream can take more. */
  write(text: string): Promise<void> {
    if (this.closed || text === '') return Promise.resolve();
    if (this.stream.write(text)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.stream.off('drain', done);
        this.stream.off('close', done);
        this.stream.off('error', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('close', done);
      this.stream.on('error', done);
    });
  }

  /** `text` and a newline. */
  line(text: string): Promise<void> {
    return this.write(`${text}\n`);
  }

  /** Resolves once everything written so far has been handed to the OS (or the reader is gone). */
  flush(): Promise<void> {
    if (this.closed || this.stream.writableLength === 0) return Promise.resolve();
    return new Promise((resolve) => {
      // Writes complete in order: the callback of an empty write runs after every earlier one.
      this.stream.write('', () => resolve());
      this.stream.once('close', () => resolve());
    });
  }
}

/** Exit code of a process whose reader closed the pipe early: the output was cut by the reader. */
const READER_GONE_EXIT = 0;

/** stdout of the CLI. */
export const output = new OutputWriter(process.stdout, () => process.exit(READER_GONE_EXIT));
/** stderr, for messages that must not be lost at exit (errors, summaries). */
const errors = new OutputWriter(process.stderr, () => undefined);

/** Awaited by `main.ts` before the process exits. */
export async function flushOutput(): Promise<void> {
  await Promise.all([output.flush(), errors.flush()]);
}
