import type { Logger } from 'pino';
import type { EventLog } from '../../core/event-log.ts';
import type { ConsumerState } from '../consumer-state.ts';
import type { OffsetReset } from '../define-consumer.ts';
import type { ResolvedConsumer } from './load-consumer.ts';

export interface ConsumerRunnerOptions {
  readonly consumer: ResolvedConsumer;
  readonly replica: number;
  /** Opened read-only: the capture is the log's only writer. */
  readonly log: EventLog;
  readonly store: ConsumerState;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** Polling backoff at the end of a partition. Defaults 2 and 25 ms (an idle read costs microseconds). */
  readonly pollMinMs?: number;
  readonly pollMaxMs?: number;
  /** How long in-flight handlers may run after `stop` before their signal aborts. Default 5 s. */
  readonly shutdownGraceMs?: number;
  /**
   * Says when the capture asks consumers to stand aside (capture-yield.ts): no read starts while it
   * holds; the records already read are still handled.
   */
  readonly yieldGate?: { holding(): boolean };
  /** Called when the runner cannot continue safely (the process should exit and be restarted). */
  readonly onFatal?: (error: Error) => void;
  /** Defaults of the consumer's `failure` option. Default: 10 consecutive dead letters, pause. */
  readonly failure?: { readonly maxConsecutiveDeadLetters: number; readonly action: 'pause' | 'continue' };
  /** Default of the consumer's `offsetReset` option. Default `fail`. */
  readonly offsetReset?: OffsetReset;
  /** The consumer cannot make progress as it should (see `failing` in consumer-protocol.ts). */
  readonly onFailing?: (failing: {
    reason: 'dead_letters' | 'offset_out_of_range' | 'target_stopped';
    message: string;
    halted: boolean;
  }) => void;
}
