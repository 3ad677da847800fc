import type { Logger } from 'pino';
import type { SlotState } from '../source/postgres/source-catalog.ts';
import { formatBytes } from '../source/postgres/source-checks.ts';

/**
 * Watches the polled slot state and logs once when the lag crosses the threshold, and once when
 * it is back under: a lagging slot is reported, not repeated at every poll.
 */
export class SlotLagMonitor {
  private lagging = false;

  constructor(
    private readonly slot: string,
    /** Bytes; 0 disables the warning. */
    private readonly thresholdBytes: number,
    private readonly logger: Logger,
  ) {}

  /** Whether the lag is above the threshold after this observation. */
  get isLagging(): boolean {
    return this.lagging;
  }

  observe(state: SlotState | null): void {
    if (this.thresholdBytes <= 0 || state === null) return;
    const details = {
      slot: this.slot,
      lagBytes: state.lagBytes,
      retainedWalBytes: state.retainedBytes,
      thresholdBytes: this.thresholdBytes,
    };
    if (!this.lagging && state.lagBytes > this.thresholdBytes) {
      this.lagging = true;
      this.logger.warn(
        details,
        `slot ${this.slot} lags by ${formatBytes(state.lagBytes)} (retains ${formatBytes(state.retainedBytes)} of WAL): PostgreSQL keeps that WAL on disk until capture catches up; check that capture keeps pace (records/s in tributary status, disk of the data directory), or raise source.lagWarningBytes if this lag is expected`,
      );
    } else if (this.lagging && state.lagBytes <= this.thresholdBytes) {
      this.lagging = false;
      this.logger.info(details, `slot ${this.slot} lag is back under ${formatBytes(this.thresholdBytes)}`);
    }
  }
}
