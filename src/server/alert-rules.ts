import type { ConsumerSummary } from './control-plane-deps.ts';

/** Thresholds from the `alerts.*` settings; 0 (or false) turns a rule off. */
export interface AlertThresholds {
  readonly slotLagBytes: number;
  readonly consumerLagSeconds: number;
  readonly crashLoop: boolean;
  readonly disconnectedSeconds: number;
}

/** What the rules look at, gathered once per evaluation. */
export interface AlertInputs {
  /** `null` while no capture runs in this process. */
  readonly disconnectedForMs: number | null;
  readonly slotLagBytes: number | null;
  readonly slot: string;
  readonly consumers: readonly ConsumerSummary[];
}

export type AlertRule = 'slot_lag' | 'capture_disconnected' | 'consumer_lag' | 'consumer_crash_loop';

/** A condition that holds now. `id` is stable while it holds (the de-duplication key). */
export interface AlertCondition {
  readonly id: string;
  readonly rule: AlertRule;
  readonly severity: 'warning' | 'critical';
  readonly summary: string;
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
    });
  }
  if (limits.slotLagBytes > 0 && inputs.slotLagBytes !== null && inputs.slotLagBytes > limits.slotLagBytes) {
    out.push({
      id: 'slot_lag',
      rule: 'slot_lag',
      severity: 'warning',
      summary: `replication slot ${inputs.slot} lags by ${inputs.slotLagBytes} bytes of WAL (limit ${limits.slotLagBytes})`,
    });
  }
  for (const c of inputs.consumers) {
    if (limits.consumerLagSeconds > 0 && c.lagSeconds !== null && c.lagSeconds > limits.consumerLagSeconds) {
      out.push({
        id: `consumer_lag:${c.name}`,
        rule: 'consumer_lag',
        severity: 'warning',
        summary: `consumer ${c.name} is ${Math.round(c.lagSeconds)} s behind (${c.lagRecords} records; limit ${limits.consumerLagSeconds} s)`,
      });
    }
    if (limits.crashLoop && c.crashLooping) {
      out.push({
        id: `consumer_crash_loop:${c.name}`,
        rule: 'consumer_crash_loop',
        severity: 'critical',
        summary: `consumer ${c.name} is crash-looping (${c.restarts} restarts${c.lastError ? `; last error: ${c.lastError.message}` : ''})`,
      });
    }
  }
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
      : `:white_check_mark: [RESOLVED] ${alert.summary.split(' (')[0]} (since ${sinceIso})`;
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
