import type { Command } from 'commander';
import { captureLiveness } from '../capture/capture-liveness.ts';
import { decodePosition } from '../capture/capture-position.ts';
import { readStatus } from '../capture/capture-status.ts';
import { loadConfig } from '../config/config-loader.ts';
import { formatLsn } from '../core/lsn.ts';
import { LOG_FLAG, openLogForReading } from './log-commands.ts';
import { snapshotLine, snapshotReport } from './snapshot-command.ts';
import { output } from './stdout-writer.ts';

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('Show the capture: slot, confirmed LSN, lag in bytes, records/s.')
    .option('--data-dir <dir>', 'data directory (default .tributary)')
    .option('--config <file>', 'config file')
    .option(...LOG_FLAG)
    .option('--json', 'print JSON')
    .action(async (flags: { dataDir?: string; config?: string; log?: string; json?: boolean }) => {
      const config = loadConfig({
        flags: { dataDir: flags.dataDir },
        ...(flags.config ? { file: flags.config } : {}),
      });
      const log = await openLogForReading(flags);
      try {
        const status = readStatus(config.dataDir);
        const slot = status?.slot ?? config.source.slot;
        const checkpoint = await log.checkpoint(`postgres:${slot}`);
        const position = checkpoint ? decodePosition(checkpoint.position) : null;
        const topics = await log.topics();
        const liveness = captureLiveness(status, config.dataDir);
        // Figures of an unresponsive capture are shown, with their age, but never as live.
        const running = status !== null && liveness.state === 'running';
        const report = {
          state: liveness.state,
          ageSeconds: liveness.ageSeconds,
          ...(liveness.reason ? { reason: liveness.reason } : {}),
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
          role: running ? (status.role ?? 'active') : null,
          term: running ? (status.term ?? null) : null,
          leader: running ? (status.leader ?? null) : null,
          updatedAt: status?.updatedAt ?? null,
          snapshot: snapshotReport(status?.snapshot ?? [], position?.snapshot?.jobs ?? [], running),
        };
        if (flags.json) {
          void output.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const rows: [string, unknown][] = [
          [
            'state',
            report.state +
              (status && liveness.state !== 'stopped' ? ` (pid ${status.pid})` : '') +
              (liveness.state === 'unresponsive'
                ? `: no report for ${liveness.ageSeconds} s${liveness.reason ? `; ${liveness.reason}` : ''}`
                : liveness.state === 'disk full'
                  ? `: ${liveness.reason}`
                  : ''),
          ],
          [
            'role',
            report.role === null
              ? '-'
              : report.role +
                (report.term === null ? '' : ` (term ${report.term})`) +
                (report.leader ? `; active: ${report.leader.holder}` : ''),
          ],
          ['updated', report.ageSeconds === null ? '-' : `${report.ageSeconds} s ago`],
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
        for (const [k, v] of rows) void output.write(`${k.padEnd(14)} ${v}\n`);
        for (const job of report.snapshot)
          void output.write(`${'snapshot'.padEnd(14)} ${snapshotLine(job)}\n`);
      } finally {
        await log.close();
      }
    });
}
