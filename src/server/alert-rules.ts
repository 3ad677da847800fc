import type { ConsumerSummary } from './control-plane-deps.ts';

/** Thresholds from the `alerts.*` settings; 0 (or false) turns a rule off. */
export interface AlertThresholds {
  readonly slotLagBytes: number;
  readonly consumerLagSeconds: number;
  readonly crashLoop: boolean;
  readonly disconnectedSeconds: number;
  /** A stall of the event loop at least this long raises `event_loop_stall` (0 = off). */
  readonly eventLoopStallMs?: number;
}

/** What the rules look at, gathered once per evaluation. */
export interface AlertInputs {
  /** `null` while no capture runs in this process. */
  readonly disconnectedForMs: number | null;
  readonly slotLagBytes: number | null;
  readonly slot: string;
  readonly consumers: readonly ConsumerSummary[];
  /** Conditions the services hold themselves (e.g. `low_stock` from an inventory). */
  readonly services?: readonly AlertCondition[];
  /** The longest recent stall of this process's event loop (event-loop-stall.ts), if any. */
  readonly eventLoopStall?: { readonly ms: number; readonly at: number } | null;
  /** Set while the event log's disk is full (capture stopped appending). */
  readonly diskFull?: {
    readonly since: string;
    readonly freeBytes: number;
    readonly neededBytes: number;
  } | null;
}

export type AlertRule =
  | 'slot_lag'
  | 'capture_disconnected'
  | 'consumer_lag'
  | 'consumer_crash_loop'
  | 'consumer_failing'
  | 'low_stock'
  | 'event_loop_stall'
  | 'disk_full';

/** A condition that holds now. `id` is stable while it holds (the de-duplication key). */
export interface AlertCondition {
  readonly id: string;
  readonly rule: AlertRule;
  readonly severity: 'warning' | 'critical';
  readonly summary: string;
  /**
   * What to say once it no longer holds (webhook, recent events, log): the firing summary is in
   * the present tense ("is 120 s behind") and would read as still firing. Default: `resolvedText`.
   */
  readonly resolved?: string;
}

/** The text of an alert that stopped holding. */
export function resolvedText(alert: AlertCondition): string {
  return alert.resolved ?? `${alert.id} no longer holds`;
}

/** The conditions holding for these inputs; pure, so the rules are tested without a pipeline. */
export function evaluateRules(inputs: AlertInputs, limits: AlertThresholds): AlertCondition[] {
  const out: AlertCondition[] = [];
  if (
    limits.disconnectedSeconds > 0 &&
    inputs.disconnectedForMs !== null &&
    inputs.disconnectedForMs >= limits.disconnectedSeconds * 1000
  ) {
    out.push({
      id: 'capture_disconnected',
      rule: 'capture_disconnected',
      severity: 'critical',
      summary: `capture has been disconnected from the source for ${Math.round(inputs.disconnectedForMs / 1000)} s (limit ${limits.disconnectedSeconds} s)`,
      resolved: 'capture is connected to the source again (it was disconnected from the source)',
    });
  }
  if (limits.slotLagBytes > 0 && inputs.slotLagBytes !== null && inputs.slotLagBytes > limits.slotLagBytes) {
    out.push({
      id: 'slot_lag',
      rule: 'slot_lag',
      severity: 'warning',
      summary: `replication slot ${inputs.slot} lags by ${inputs.slotLagBytes} bytes of WAL (limit ${limits.slotLagBytes})`,
      resolved: `replication slot ${inputs.slot} caught up: its lag is back within ${limits.slotLagBytes} bytes of WAL`,
    });
  }
  if (inputs.diskFull) {
    out.push({
      id: 'disk_full',
      rule: 'disk_full',
      severity: 'critical',
      summary: `disk full: the event log's disk has ${inputs.diskFull.freeBytes} bytes free (since ${inputs.diskFull.since}); capture stopped appending and resumes once ${inputs.diskFull.neededBytes} bytes are free (the slot keeps the changes meanwhile)`,
      resolved: "the event log's disk has room again: capture appends again",
    });
  }
  const stall = inputs.eventLoopStall;
  if (limits.eventLoopStallMs && stall && stall.ms >= limits.eventLoopStallMs) {
    out.push({
      id: 'event_loop_stall',
      rule: 'event_loop_stall',
      severity: 'critical',
      summary: `the pipeline process did not run for ${(stall.ms / 1000).toFixed(1)} s (until ${new Date(stall.at).toISOString()}; limit ${limits.eventLoopStallMs / 1000} s): its figures were stale meanwhile (CPU starvation, swapping, a stopped process?)`,
      resolved: 'the pipeline process runs without long stalls again',
    });
  }
  for (const c of inputs.consumers) {
    if (limits.consumerLagSeconds > 0 && c.lagSeconds !== null && c.lagSeconds > limits.consumerLagSeconds) {
      out.push({
        id: `consumer_lag:${c.name}`,
        rule: 'consumer_lag',
        severity: 'warning',
        summary: `consumer ${c.name} is ${Math.round(c.lagSeconds)} s behind (${c.lagRecords} records; limit ${limits.consumerLagSeconds} s)`,
        resolved: `consumer ${c.name} caught up: its lag is back within ${limits.consumerLagSeconds} s`,
      });
    }
    if (limits.crashLoop && c.crashLooping) {
      out.push({
        id: `consumer_crash_loop:${c.name}`,
        rule: 'consumer_crash_loop',
        severity: 'critical',
        summary: `consumer ${c.name} is crash-looping (${c.restarts} restarts${c.lastError ? `; last error: ${c.lastError.message}` : ''})`,
        resolved: `consumer ${c.name} is no longer crash-looping`,
      });
    }
    // Always on: a consumer that dead-letters everything, or cannot start where it stopped,
    // loses nothing only if someone looks.
    if (c.failure) {
      out.push({
        id: `consumer_failing:${c.name}`,
        rule: 'consumer_failing',
        severity: 'critical',
        summary: `consumer ${c.name} is ${c.state} (${c.failure.message})`,
        resolved: `consumer ${c.name} is no longer ${c.state}`,
      });
    }
  }
  out.push(...(inputs.services ?? []));
  return out;
}

/** Slack-compatible webhook body (`text` for any receiver, `blocks` for Slack's layout). */
export function webhookMessage(
  kind: 'firing' | 'resolved',
  alert: AlertCondition,
  sinceIso: string,
): { text: string; blocks: unknown[] } {
  const text =
    kind === 'firing'
      ? `:rotating_light: [FIRING ${alert.severity}] ${alert.summary}`
      : `:white_check_mark: [RESOLVED] ${resolvedText(alert)} (firing since ${sinceIso})`;
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text } },
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `tributary · rule \`${alert.rule}\` · id \`${alert.id}\`` }],
      },
    ],
  };
}
