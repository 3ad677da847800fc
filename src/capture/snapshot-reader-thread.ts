/**
 * A SnapshotReader in a worker thread. The chunks' COPY data is parsed (pg's protocol parser) and
 * gathered there, and each chunk's buffer is handed over without a copy; the capture's thread only
 * writes the chunks to the log. With both on one thread, the log's synchronous appends stalled the
 * reading of the next chunk (bench/README.md, "Snapshot benchmark").
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { SourceSetupError, TributaryError } from '../core/errors.ts';
import {
  type ChunkCursor,
  type ChunkRead,
  SnapshotReader,
  type SnapshotTable,
} from '../source/postgres/snapshot-reader.ts';
import type { TableName } from '../source/postgres/table-name.ts';

/** The reader's methods the snapshot workers use; both readers have them. */
export type ChunkReader = Pick<
  SnapshotReader,
  'describe' | 'checkCondition' | 'watermark' | 'readChunk' | 'boundary' | 'close'
> & {
  /** Gets ready for the first call ahead of it (a thread starts); optional. */
  prepare?(): void;
};

type Method = 'describe' | 'checkCondition' | 'watermark' | 'readChunk' | 'boundary' | 'close';
interface Request {
  readonly id: number;
  readonly method: Method;
  readonly args: unknown[];
}
interface SerializedError {
  readonly message: string;
  readonly code?: string;
  readonly hint?: string;
  readonly retryable?: boolean;
  readonly setup?: boolean;
}
type Response =
  | { readonly id: number; readonly result: unknown }
  | { readonly id: number; readonly error: SerializedError };

const THIS_FILE = new URL(import.meta.url).href;
/**
 * tsx's ESM API, resolved from here (an eval'd thread would resolve a bare name from the working
 * directory), through the package's own export map.
 */
const TSX_API = (() => {
  const manifest = createRequire(import.meta.url).resolve('tsx/package.json');
  const exports = JSON.parse(readFileSync(manifest, 'utf8')).exports['./esm/api'].import.default as string;
  return pathToFileURL(join(dirname(manifest), exports)).href;
})();

/**
 * Runs a SnapshotReader on its own thread; same methods, same errors (codes and hints kept). A
 * thread that died (its calls fail) is replaced at the next call.
 */
export class ThreadedSnapshotReader implements ChunkReader {
  private worker: Worker | undefined;
  private readonly calls = new Map<
    number,
    { worker: Worker; resolve: (value: unknown) => void; reject: (e: Error) => void }
  >();
  private sequence = 0;

  constructor(private readonly url: string) {}

  /** Starts the thread now (it loads its modules for ~0.3 CPU-s), rather than at the first call. */
  prepare(): void {
    this.worker ??= this.start();
  }

  private start(): Worker {
    // The thread loads the TypeScript sources through tsx, as the main thread does.
    const worker = new Worker(
      `const { register } = await import(${JSON.stringify(TSX_API)}); register(); await import(${JSON.stringify(THIS_FILE)});`,
      { eval: true, workerData: { snapshotReaderUrl: this.url } },
    );
    worker.unref();
    worker.on('message', (response: Response) => {
      const call = this.calls.get(response.id);
      if (!call) return;
      this.calls.delete(response.id);
      if ('error' in response) call.reject(deserializeError(response.error));
      else call.resolve(response.result);
    });
    // Every call still waiting on this thread fails with it (also after `terminate()`).
    const fail = (error: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, call] of this.calls) {
        if (call.worker !== worker) continue;
        this.calls.delete(id);
        call.reject(error);
      }
    };
    worker.on('error', (error) => fail(new Error(`the snapshot reader thread failed: ${error.message}`)));
    worker.on('exit', (code) => fail(new Error(`the snapshot reader thread exited (code ${code})`)));
    this.worker = worker;
    return worker;
  }

  describe(name: TableName): Promise<SnapshotTable> {
    return this.call('describe', [name]) as Promise<SnapshotTable>;
  }

  checkCondition(table: SnapshotTable, condition: string): Promise<void> {
    return this.call('checkCondition', [table, condition]) as Promise<void>;
  }

  watermark(content: string, flush = true): Promise<void> {
    return this.call('watermark', [content, flush]) as Promise<void>;
  }

  boundary(...args: Parameters<SnapshotReader['boundary']>): ReturnType<SnapshotReader['boundary']> {
    return this.call('boundary', args) as ReturnType<SnapshotReader['boundary']>;
  }

  async readChunk(...args: Parameters<SnapshotReader['readChunk']>): Promise<ChunkRead> {
    const read = (await this.call('readChunk', args)) as {
      rows: { data: Uint8Array; count: number };
      next: ChunkCursor | null;
    };
    const { data } = read.rows;
    return {
      rows: { data: Buffer.from(data.buffer, data.byteOffset, data.byteLength), count: read.rows.count },
      next: read.next,
    };
  }

  /** Closes the connection (the reader can be used again: it reconnects), keeping the thread. */
  async close(): Promise<void> {
    // A thread that is gone has no connection left to close.
    if (this.worker) await this.call('close', []).catch(() => undefined);
  }

  /** Closes the connection and ends the thread. */
  async terminate(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    await this.close();
    this.worker = undefined;
    await worker.terminate();
  }

  private call(method: Method, args: unknown[]): Promise<unknown> {
    const worker = this.worker ?? this.start();
    const id = ++this.sequence;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { worker, resolve, reject });
      worker.postMessage({ id, method, args } satisfies Request);
    });
  }
}

function serializeError(error: unknown): SerializedError {
  if (error instanceof TributaryError) {
    return {
      message: error.message,
      code: error.code,
      retryable: error.retryable,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      setup: error instanceof SourceSetupError,
    };
  }
  return { message: error instanceof Error ? error.message : String(error) };
}

function deserializeError(error: SerializedError): Error {
  if (error.code === undefined) return new Error(error.message);
  const options = {
    retryable: error.retryable ?? false,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
  };
  return error.setup
    ? new SourceSetupError(error.code, error.message, options)
    : new TributaryError(error.code, error.message, options);
}

/** The thread's side: one SnapshotReader serving the calls in order. */
function serve(url: string): void {
  const port = parentPort;
  if (!port) return;
  const reader = new SnapshotReader(url);
  port.on('message', async (request: Request) => {
    try {
      const method = reader[request.method] as (...args: unknown[]) => Promise<unknown>;
      const result = await method.apply(reader, request.args);
      const data = request.method === 'readChunk' ? (result as ChunkRead).rows.data : undefined;
      // A chunk's buffer is its own allocation: handed over, not copied. A small buffer may be a
      // slice of Node's shared pool, which must stay here: it is copied.
      const transfer = data && data.buffer.byteLength > Buffer.poolSize ? [data.buffer as ArrayBuffer] : [];
      port.postMessage({ id: request.id, result } satisfies Response, transfer);
    } catch (error) {
      port.postMessage({ id: request.id, error: serializeError(error) } satisfies Response);
    }
  });
}

if (!isMainThread && (workerData as { snapshotReaderUrl?: string } | null)?.snapshotReaderUrl) {
  serve((workerData as { snapshotReaderUrl: string }).snapshotReaderUrl);
}
