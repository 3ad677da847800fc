/**
 * `tributary consumers new <name>`: writes `consumers/<name>/index.ts`, a typed example consumer.
 * Registered under the `consumers` command group, created here when no other file made it yet.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/config-loader.ts';
import { validateConsumerName } from '../consumers/discovery.ts';
import { ConfigError } from '../core/errors.ts';
import { output } from './stdout-writer.ts';

export function consumerTemplate(name: string, topic: string): string {
  return `import { defineConsumer, type Envelope } from 'tributary';

/** The row of the captured table (the columns you use). */
interface Row {
  id: number;
  [column: string]: unknown;
}

export default defineConsumer<Envelope<Row>>({
  topics: [${JSON.stringify(topic)}],
  // group: '${name}',                  // offsets are kept per group (default: the folder name)
  replicas: 1,                          // or { min: 1, max: 4 } to scale on lag
  batch: { maxRecords: 100, maxWaitMs: 0 },
  concurrency: 4,                       // key lanes: one key's records stay in order
  retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 10_000 },

  async handle(batch, ctx) {
    for (const record of batch) {
      const change = record.value;       // null for a tombstone (after a delete)
      if (change === null) continue;
      const row = change.op === 'd' ? change.before : change.after;
      ctx.logger.info({ op: change.op, id: row?.id, offset: record.offset }, 'change');
      ctx.metrics.increment('changes');
    }
  },
});
`;
}

export function registerConsumersNew(program: Command): void {
  const group =
    program.commands.find((c) => c.name() === 'consumers') ??
    program.command('consumers').description('Manage consumers.');
  group
    .command('new <name>')
    .description('Scaffold consumers/<name>/index.ts with a typed example.')
    .option('--consumers <dir>', 'folder of consumer folders (setting consumers.dir, default ./consumers)')
    .option('--config <file>', 'config file')
    .option('--topic <topic>', 'topic to read', 'tributary.public.orders')
    .option('--force', 'overwrite an existing index.ts')
    .action(
      (name: string, flags: { consumers?: string; config?: string; topic: string; force?: boolean }) => {
        validateConsumerName(name);
        const config = loadConfig({
          flags: { 'consumers.dir': flags.consumers },
          ...(flags.config ? { file: flags.config } : {}),
        });
        const dir = join(resolve(config.consumers.dir), name);
        const file = join(dir, 'index.ts');
        if (existsSync(file) && !flags.force) {
          throw new ConfigError(`${relative(process.cwd(), file)} already exists`, {
            hint: 'pick another name, or pass --force to overwrite it',
          });
        }
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, consumerTemplate(name, flags.topic));
        void output.write(
          `created ${relative(process.cwd(), file)}\nrun it with: tributary run --consumers ${config.consumers.dir}\n`,
        );
      },
    );
}
