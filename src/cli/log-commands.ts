import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError } from '../core/errors.ts';
import type { StoredRecord } from '../core/record.ts';
import { EmbeddedEventLog } from '../log/embedded/sqlite-event-log.ts';
import { untilSignal } from './cli-output.ts';

/** Opens the log of a data directory for reading, with a clear error when there is none. */
export function openLogForReading(flags: { dataDir?: string; config?: string }): EmbeddedEventLog {
  const config = loadConfig({
    flags: { dataDir: flags.dataDir },
    ...(flags.config ? { file: flags.config } : {}),
  });
  if (!existsSync(join(config.dataDir, 'log.sqlite'))) {
    throw new ConfigError(`no event log in ${config.dataDir}`, {
      hint: 'pass the --data-dir that `tributary run` or `tributary up` wrote to',
    });
  }
  return EmbeddedEventLog.open({ dataDir: config.dataDir, readonly: true });
}

export function registerTopics(program: Command): void {
  program
    .command('topics')
    .description('List topics with their partitions and record counts.')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir?: string; config?: string; json?: boolean }) => {
      const log = openLogForReading(flags);
      try {
        const topics = await log.topics();
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(topics, null, 2)}\n`);
          return;
        }
        if (topics.length === 0) process.stdout.write('no topics yet\n');
        const width = Math.max(5, ...topics.map((t) => t.topic.length));
        if (topics.length > 0)
          process.stdout.write(`${'TOPIC'.padEnd(width)}  PARTITIONS  RECORDS   OFFSETS\n`);
        for (const t of topics) {
          const records = t.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
          const offsets = t.partitions.map((p) => `${p.partition}:${p.startOffset}-${p.endOffset}`).join(' ');
          process.stdout.write(
            `${t.topic.padEnd(width)}  ${String(t.partitions.length).padStart(10)}  ${String(records).padStart(7)}   ${offsets}\n`,
          );
        }
      } finally {
        await log.close();
      }
    });
}

/** A record as one JSON line; key and value are JSON text already, so they are embedded as is. */
export function recordLine(r: StoredRecord): string {
  return `{"topic":${JSON.stringify(r.topic)},"partition":${r.partition},"offset":${r.offset},"key":${r.key ?? 'null'},"value":${r.value ?? 'null'},"headers":${JSON.stringify(r.headers)},"timestamp":${r.timestamp}}`;
}

export function registerRead(program: Command): void {
  program
    .command('read <topic>')
    .description(
      'Print records of a topic as JSON lines {topic, partition, offset, key, value, headers, timestamp}.',
    )
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option('--partition <n>', 'only this partition (default all)')
    .option('--from <offset>', 'first offset to print in each partition', '0')
    .option('--limit <n>', 'stop after this many records')
    .option('--follow', 'keep printing new records until interrupted')
    .action(
      async (
        topic: string,
        flags: {
          dataDir?: string;
          config?: string;
          partition?: string;
          from: string;
          limit?: string;
          follow?: boolean;
        },
      ) => {
        const from = parseNonNegative(flags.from, '--from');
        const limit =
          flags.limit === undefined ? Number.POSITIVE_INFINITY : parseNonNegative(flags.limit, '--limit');
        const log = openLogForReading(flags);
        const stop = flags.follow ? untilSignal() : undefined;
        let stopped = false;
        void stop?.then(() => {
          stopped = true;
        });
        try {
          const info = (await log.topics()).find((t) => t.topic === topic);
          if (!info && !flags.follow) {
            throw new ConfigError(`no topic named ${JSON.stringify(topic)}`, {
              hint: 'list topics with: tributary topics --data-dir <dir>',
            });
          }
          const only =
            flags.partition === undefined ? undefined : parseNonNegative(flags.partition, '--partition');
          const next = new Map<number, number>();
          let printed = 0;
          for (;;) {
            const partitions = ((await log.topics()).find((t) => t.topic === topic)?.partitions ?? []).filter(
              (p) => only === undefined || p.partition === only,
            );
            let progressed = false;
            for (const p of partitions) {
              let offset = next.get(p.partition) ?? Math.max(from, p.startOffset);
              while (offset < p.endOffset && printed < limit) {
                const batch = await log.read(topic, p.partition, offset, Math.min(1000, limit - printed));
                if (batch.length === 0) break;
                process.stdout.write(`${batch.map(recordLine).join('\n')}\n`);
                printed += batch.length;
                offset = batch[batch.length - 1]!.offset + 1;
                progressed = true;
              }
              next.set(p.partition, offset);
            }
            if (!flags.follow || printed >= limit || stopped) break;
            if (!progressed) await Promise.race([new Promise((r) => setTimeout(r, 200)), stop]);
            if (stopped) break;
          }
        } finally {
          await log.close();
        }
        if (flags.follow) process.exit(0);
      },
    );
}

function parseNonNegative(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0)
    throw new ConfigError(`${flag} must be a whole number ≥ 0, not ${JSON.stringify(text)}`);
  return n;
}
