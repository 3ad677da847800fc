import type { Command } from 'commander';
import { decodePosition } from '../capture/capture.ts';
import { isAlive, readStatus } from '../capture/capture-status.ts';
import { loadConfig } from '../config/config-loader.ts';
import { formatLsn } from '../core/lsn.ts';
import { openLogForReading } from './log-commands.ts';
import { snapshotLine, snapshotReport } from './snapshot-command.ts';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show the capture: slot, confirmed LSN, lag in bytes, records/s.')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir?: string; config?: string; json?: boolean }) => {
      const config = loadConfig({
        flags: { dataDir: flags.dataDir },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const log = openLogForReading(flags);
      try {
        const status = readStatus(config.dataDir);
        const slot = status?.slot ?? config.source.slot;
        const checkpoint = await log.checkpoint(`postgres:${slot}`);
        const position = checkpoint ? decodePosition(checkpoint.position) : null;
        const topics = await log.topics();
        const running =
          status !== null && isAlive(status.pid) && Date.now() - Date.parse(status.updatedAt) < 30_000;
        const report = {
          state: running ? 'running' : 'stopped',
          slot,
          publication: status?.publication ?? config.source.publication,
          source: status?.source ?? null,
          connected: running ? status.connected : false,
          durableLsn: position ? formatLsn(position.lsn) : null,
          confirmedLsn: status?.confirmedLsn ?? null,
          serverLsn: status?.serverLsn ?? null,
          lagBytes: status?.lagBytes ?? null,
          retainedWalBytes: status?.retainedWalBytes ?? null,
          recordsPerSecond: running ? status.recordsPerSecond : 0,
          topics: topics.length,
          records: topics.reduce(
            (n, t) => n + t.partitions.reduce((m, p) => m + p.endOffset - p.startOffset, 0),
            0,
          ),
          consumersHeld: running ? (status.consumersHeld ?? null) : null,
          updatedAt: status?.updatedAt ?? null,
          snapshot: snapshotReport(status?.snapshot ?? [], position?.snapshot?.jobs ?? [], running),
        };
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const rows: [string, unknown][] = [
          ['state', report.state + (running ? ` (pid ${status.pid})` : '')],
          ['source', report.source ?? '-'],
          ['slot', report.slot],
          ['publication', report.publication],
          ['connected', report.connected ? 'yes' : 'no'],
          ['durable LSN', report.durableLsn ?? '-'],
          ['confirmed LSN', report.confirmedLsn ?? '-'],
          ['server LSN', report.serverLsn ?? '-'],
          ['lag', report.lagBytes === null ? '-' : `${report.lagBytes} bytes`],
          ['retained WAL', report.retainedWalBytes === null ? '-' : `${report.retainedWalBytes} bytes`],
          ['records/s', report.recordsPerSecond],
          ['topics', report.topics],
          ['records', report.records],
        ];
        const held = report.consumersHeld;
        if (held && held.holds > 0) {
          const total = `${held.holds} time${held.holds === 1 ? '' : 's'}, ${(held.heldMs / 1000).toFixed(1)} s in all`;
          rows.push([
            'consumers held',
            held.holding ? `yes, capture catching up (${total})` : `no (${total})`,
          ]);
        }
        for (const [k, v] of rows) process.stdout.write(`${k.padEnd(14)} ${v}\n`);
        for (const job of report.snapshot)
          process.stdout.write(`${'snapshot'.padEnd(14)} ${snapshotLine(job)}\n`);
      } finally {
        await log.close();
      }
    });
}
