import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { ConfigError, LogError } from '../core/errors.ts';
import type { StoredRecord } from '../core/record.ts';
import { type OpenedEventLog, openEventLog } from '../log/open-event-log.ts';
import { untilSignal } from './cli-output.ts';
import { wholeNumber } from './flag-numbers.ts';
import { firstOffset, parseReadStart } from './read-start.ts';
import { output } from './stdout-writer.ts';

/** How long `read` waits for records below the end the log reported before it fails. */
const CATCH_UP_WAIT_MS = 30_000;

/** Opens the configured log (embedded in the data directory, or NATS) for reading. */
export async function openLogForReading(flags: {
  dataDir?: string;
  config?: string;
  log?: string;
}): Promise<OpenedEventLog> {
  const config = loadConfig({
    flags: { dataDir: flags.dataDir, 'log.url': flags.log },
    ...(flags.config ? { file: flags.config } : {}),
  });
  return openEventLog(config, { readonly: true });
}

/** The --log flag of the commands that read the log. */
export const LOG_FLAG = [
  '--log <url>',
  'a NATS log: nats://host:port,... (default: the embedded log of --data-dir)',
] as const;

export function registerTopics(program: Command): void {
  program
    .command('topics')
    .description('List topics with their partitions and record counts.')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option(...LOG_FLAG)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir?: string; config?: string; log?: string; json?: boolean }) => {
      const log = await openLogForReading(flags);
      try {
        const topics = await log.topics();
        if (flags.json) {
          void output.write(`${JSON.stringify(topics, null, 2)}\n`);
          return;
        }
        if (topics.length === 0) void output.write('no topics yet\n');
        const width = Math.max(5, ...topics.map((t) => t.topic.length));
        if (topics.length > 0) void output.write(`${'TOPIC'.padEnd(width)}  PARTITIONS  RECORDS   OFFSETS\n`);
        for (const t of topics) {
          const records = t.partitions.reduce((n, p) => n + p.endOffset - p.startOffset, 0);
          const offsets = t.partitions.map((p) => `${p.partition}:${p.startOffset}-${p.endOffset}`).join(' ');
          void output.write(
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
    .option(...LOG_FLAG)
    .option('--partition <n>', 'only this partition (default all)')
    .option(
      '--from <offset>',
      'where to start in each partition: an offset, earliest, latest (only new records, with --follow) or -N (the last N records)',
      '0',
    )
    .option('--limit <n>', 'stop after this many records')
    .option('--follow', 'keep printing new records until interrupted')
    .action(
      async (
        topic: string,
        flags: {
          dataDir?: string;
          config?: string;
          log?: string;
          partition?: string;
          from: string;
          limit?: string;
          follow?: boolean;
        },
      ) => {
        const from = parseReadStart(flags.from);
        const limit =
          flags.limit === undefined ? Number.POSITIVE_INFINITY : wholeNumber('--limit', flags.limit, 0);
        const log = await openLogForReading(flags);
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
            flags.partition === undefined ? undefined : wholeNumber('--partition', flags.partition, 0);
          const next = new Map<number, number>();
          // The partitions there when the read began; --from applies to them (see firstOffset).
          const present = new Set((info?.partitions ?? []).map((p) => p.partition));
          let printed = 0;
          for (;;) {
            const partitions = ((await log.topics()).find((t) => t.topic === topic)?.partitions ?? []).filter(
              (p) => only === undefined || p.partition === only,
            );
            let progressed = false;
            for (const p of partitions) {
              let offset = next.get(p.partition) ?? firstOffset(from, p, present.has(p.partition));
              let emptySince: number | undefined;
              while (offset < p.endOffset && printed < limit) {
                const batch = await log.read(topic, p.partition, offset, Math.min(1000, limit - printed));
                if (batch.length === 0) {
                  // Below the end the log reported: a NATS replica that is catching up (reads go to
                  // any replica) answers with less for a while. Wait for it; never end the output
                  // short in silence.
                  emptySince ??= Date.now();
                  if (Date.now() - emptySince > CATCH_UP_WAIT_MS) {
                    throw new LogError(
                      'LOG_UNAVAILABLE',
                      `Read stopped at ${topic}/${p.partition} offset ${offset}, below its end ${p.endOffset}: the log returned nothing for ${CATCH_UP_WAIT_MS / 1000} s`,
                      { hint: 'A replica of the log may be catching up: read again in a moment.' },
                    );
                  }
                  await new Promise((r) => setTimeout(r, 100));
                  continue;
                }
                emptySince = undefined;
                await output.write(`${batch.map(recordLine).join('\n')}\n`);
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
      },
    );
}
