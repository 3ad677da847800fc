/**
 * The `pg-logical-replication` contender, in its own process so that its peak RSS is its own:
 * streams a slot with the library's pgoutput plugin, decodes every message and keeps nothing,
 * then exits at the first message at or past the end LSN, printing one JSON line.
 *
 *   node --import tsx bench/capture/library-child.ts <url> <slot> <publication> <endLsn>
 *
 * Acknowledgement is manual (the library's default acknowledges every message, one network write
 * each); its timer still reports the last LSN every 10 s so the server never times the stream out.
 */
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import { parseLsn } from '../../src/core/lsn.ts';
import { peakRssBytes } from './process-stats.ts';

const [url, slot, publication, end] = process.argv.slice(2);
if (!url || !slot || !publication || !end) {
  process.stderr.write('usage: library-child.ts <url> <slot> <publication> <endLsn>\n');
  process.exit(2);
}
const endLsn = parseLsn(end);
const service = new LogicalReplicationService(
  { connectionString: url },
  { acknowledge: { auto: false, timeoutSeconds: 10 } },
);
const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
let changes = 0;
let messages = 0;
const started = performance.now();
service.on('data', (lsn: string, message: { tag: string }) => {
  messages++;
  if (message.tag === 'insert' || message.tag === 'update' || message.tag === 'delete') changes++;
  if (parseLsn(lsn) >= endLsn) {
    const cpu = process.cpuUsage();
    process.stdout.write(
      `${JSON.stringify({
        changes,
        messages,
        seconds: (performance.now() - started) / 1000,
        cpuSeconds: (cpu.user + cpu.system) / 1e6,
        peakRssBytes: peakRssBytes('self'),
      })}\n`,
    );
    process.exit(0);
  }
});
service.on('error', (error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
await service.subscribe(plugin, slot);
