// Shared by the Capture unit tests (capture-messages, message-filter, schema-history): a source
// that replays scripted batches, message builders and a one-shot Capture run over a real log.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach } from 'vitest';
import type { LogicalMessage, SourceMessage } from '../core/change-event.ts';
import type { EventLog } from '../core/event-log.ts';
import type { Lsn } from '../core/lsn.ts';
import type { Source, SourceHandler } from '../core/source.ts';
import { createEncoder } from '../encode/index.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { Capture, type CaptureOptions } from './capture.ts';

/** Delivers fixed batches, then ends as a stopped source does; remembers the highest acknowledged LSN. */
export class ScriptedSource implements Source {
  acknowledged: Lsn = 0n;
  constructor(private readonly batches: readonly (readonly SourceMessage[])[]) {}
  async start(handler: SourceHandler): Promise<void> {
    for (const batch of this.batches) await handler(batch);
  }
  acknowledge(lsn: Lsn): void {
    if (lsn > this.acknowledged) this.acknowledged = lsn;
  }
  async stop(): Promise<void> {}
}

export const begin = (finalLsn: Lsn = 200n): SourceMessage => ({
  kind: 'begin',
  xid: 9,
  finalLsn,
  commitTimeUs: 1_700_000_000_000_000n,
});

export const commit = (commitLsn: Lsn = 200n): SourceMessage => ({
  kind: 'commit',
  commitLsn,
  endLsn: commitLsn + 10n,
  commitTimeUs: 1_700_000_000_000_000n,
});

/** A logical message (pg_logical_emit_message) whose content is `content`, by default its prefix. */
export const logicalMessage = (
  prefix: string,
  lsn: Lsn,
  transactional: boolean,
  content = prefix,
): LogicalMessage => ({ kind: 'message', transactional, lsn, prefix, content: Buffer.from(content) });

/** Fresh data directories under the OS temp folder, removed after each test. */
export function tempDataDirs(prefix: string): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    dirs.push(dir);
    return dir;
  };
}

/**
 * Runs a Capture (debezium encoding, topic prefix `t`, checkpoint `postgres:test`) over `source`
 * until it ends, then returns what `inspect` reads from the log, and closes the log.
 */
export async function runCapture<T>(
  dataDir: string,
  source: Source,
  options: Partial<Omit<CaptureOptions, 'source' | 'log'>>,
  inspect: (log: EventLog) => Promise<T>,
): Promise<T> {
  const log = EmbeddedEventLog.open({ dataDir, durable: false });
  try {
    const capture = new Capture({
      source,
      log,
      encoder: createEncoder({ format: 'debezium', topicPrefix: 't' }),
      checkpointName: 'postgres:test',
      serverName: 't',
      database: 'db',
      logger: pino({ level: 'silent' }),
      ...options,
    });
    await capture.run();
    return await inspect(log);
  } finally {
    await log.close();
  }
}
