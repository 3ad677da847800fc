import {
  closeSync,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export interface RotatingLogOptions {
  /** Rotate when the current file would grow beyond this many bytes. */
  readonly maxBytes: number;
  /** Rotated files kept (`<name>.log.1` newest ... `<name>.log.<files>` oldest). */
  readonly files: number;
}

/** `<dataDir>/logs/<name>.log`: where a consumer's replicas and the supervisor log about it. */
export function consumerLogFile(dataDir: string, name: string): string {
  return join(dataDir, 'logs', `${name}.log`);
}

/**
 * An append-only JSON-lines file rotated by size: `x.log` → `x.log.1` → ... → `x.log.<files>`
 * (dropped). Writes are synchronous appends of whole lines so that `tributary logs -f` in another
 * process never sees half a line, and a crash of the supervisor loses nothing already written.
 */
export class RotatingLogFile {
  readonly path: string;
  readonly #options: RotatingLogOptions;
  #fd: number | undefined;
  #size = 0;

  constructor(path: string, options: RotatingLogOptions) {
    this.path = path;
    this.#options = options;
  }

  /** Writes one JSON object as a line. */
  write(entry: object): void {
    this.writeLine(JSON.stringify(entry));
  }

  writeLine(line: string): void {
    const data = Buffer.from(`${line}\n`);
    if (this.#fd === undefined) this.#open();
    if (this.#size > 0 && this.#size + data.length > this.#options.maxBytes) this.#rotate();
    writeSync(this.#fd!, data);
    this.#size += data.length;
  }

  close(): void {
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  #open(): void {
    mkdirSync(join(this.path, '..'), { recursive: true });
    this.#fd = openSync(this.path, 'a');
    this.#size = fstatSync(this.#fd).size;
  }

  #rotate(): void {
    this.close();
    const keep = Math.max(0, this.#options.files);
    if (keep === 0) rmSync(this.path, { force: true });
    else {
      rmSync(`${this.path}.${keep}`, { force: true });
      for (let i = keep - 1; i >= 1; i--) {
        if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      }
      renameSync(this.path, `${this.path}.1`);
    }
    this.#open();
  }
}

/**
 * Turns a replica's output line into a structured entry: a JSON object line (pino, the worker's
 * own logger) keeps its fields and gets the replica's; any other text becomes `msg`.
 */
export function structureLine(
  line: string,
  fields: { replica: number; pid: number | undefined; stream: 'stdout' | 'stderr' },
  now: number,
): object {
  if (line.startsWith('{')) {
    try {
      const parsed = JSON.parse(line) as unknown;
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
        return { time: now, ...(parsed as object), replica: fields.replica, stream: fields.stream };
      }
    } catch {
      // plain text that happens to start with a brace
    }
  }
  return {
    time: now,
    level: fields.stream === 'stderr' ? 50 : 30,
    replica: fields.replica,
    pid: fields.pid,
    stream: fields.stream,
    msg: line,
  };
}

/** Splits a byte stream into lines; the last partial line waits for the next chunk. */
export class LineSplitter {
  #rest = '';
  push(chunk: string, onLine: (line: string) => void): void {
    const text = this.#rest + chunk;
    const lines = text.split('\n');
    this.#rest = lines.pop() ?? '';
    for (const line of lines) if (line.length > 0) onLine(line);
  }
  flush(onLine: (line: string) => void): void {
    if (this.#rest.length > 0) onLine(this.#rest);
    this.#rest = '';
  }
}

/** The last `count` lines of a log, reading the rotated files too when the current one is short. */
export function tailLines(path: string, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++) {
    const file = i === 0 ? path : `${path}.${i}`;
    if (!existsSync(file)) break;
    const lines = readWhole(file).split('\n').filter(Boolean);
    out.unshift(...lines.slice(Math.max(0, lines.length - (count - out.length))));
  }
  return out;
}

function readWhole(file: string): string {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Follows a log file as `tail -F` does: prints what is appended, and starts over on the new file
 * after a rotation (detected by a changed inode or a smaller size). Polls; stops on `signal`.
 */
export async function followLog(
  path: string,
  onLine: (line: string) => void,
  signal: AbortSignal,
  pollMs = 200,
): Promise<void> {
  let position = existsSync(path) ? statSync(path).size : 0;
  let inode = existsSync(path) ? statSync(path).ino : 0;
  const splitter = new LineSplitter();
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          resolve();
        },
        { once: true },
      );
    });
    if (!existsSync(path)) continue;
    const stat = statSync(path);
    if (stat.ino !== inode || stat.size < position) {
      inode = stat.ino;
      position = 0;
    }
    if (stat.size <= position) continue;
    const fd = openSync(path, 'r');
    try {
      const buffer = Buffer.alloc(stat.size - position);
      const n = readSync(fd, buffer, 0, buffer.length, position);
      position += n;
      splitter.push(buffer.subarray(0, n).toString('utf8'), onLine);
    } finally {
      closeSync(fd);
    }
  }
}
