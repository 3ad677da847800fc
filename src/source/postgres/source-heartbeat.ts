import type { Logger } from 'pino';
import { HEARTBEAT_PREFIX } from '../../core/change-event.ts';
import { type Lsn, parseLsn } from '../../core/lsn.ts';

export interface HeartbeatOptions {
  /** Milliseconds between heartbeats; 0 disables them. */
  readonly intervalMs: number;
  /** Runs a query on the source's normal connection. */
  readonly query: (sql: string, params: unknown[]) => Promise<{ rows: { lsn: string }[] }>;
  readonly logger: Logger;
  /** Called with the LSN of each heartbeat written. */
  readonly onBeat?: (lsn: Lsn) => void;
  readonly now?: () => Date;
}

/**
 * Writes a small transactional logical message into the captured database at a fixed interval.
 *
 * Why: a slot only moves on when its consumer confirms a position, and a quiet database gives
 * nothing to confirm, while the server's WAL (shared by every database) keeps growing. The
 * heartbeat's commit travels through the slot like any transaction; once it is durable the
 * capture confirms it, so the slot keeps up even when no captured table changes.
 *
 * A failed heartbeat is logged and tried again at the next interval; it never stops capture.
 * At most one heartbeat is in flight. `stop()` is idempotent and leaves no timer behind.
 */
export class Heartbeat {
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private failing = false;

  constructor(private readonly options: HeartbeatOptions) {}

  start(): void {
    if (this.timer || this.options.intervalMs <= 0) return;
    this.timer = setInterval(() => void this.beat(), this.options.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async beat(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const now = (this.options.now ?? (() => new Date()))();
      const result = await this.options.query('select pg_logical_emit_message(true, $1, $2)::text as lsn', [
        HEARTBEAT_PREFIX,
        now.toISOString(),
      ]);
      const lsn = result.rows[0]?.lsn;
      if (lsn) this.options.onBeat?.(parseLsn(lsn));
      if (this.failing) this.options.logger.info('heartbeat written again');
      this.failing = false;
    } catch (error) {
      // Only the first failure of a series is a warning; the rest would repeat it.
      this.options.logger[this.failing ? 'debug' : 'warn'](
        { err: error, intervalMs: this.options.intervalMs },
        'heartbeat failed; retrying at the next interval',
      );
      this.failing = true;
    } finally {
      this.inFlight = false;
    }
  }
}
