import type { Logger } from 'pino';
import {
  type AlertCondition,
  type AlertInputs,
  type AlertThresholds,
  evaluateRules,
  resolvedText,
  webhookMessage,
} from './alert-rules.ts';

export interface ActiveAlert extends AlertCondition {
  readonly since: string;
  /** Whether the webhook was told (retried at each evaluation until it was). */
  notified: boolean;
}

export interface AlertEvent {
  readonly kind: 'firing' | 'resolved';
  readonly id: string;
  readonly rule: string;
  readonly summary: string;
  readonly at: string;
}

export interface AlertEngineOptions extends AlertThresholds {
  readonly webhookUrl?: string;
  readonly intervalMs: number;
  /** Gathers the inputs; `connected: null` = no capture. */
  readonly inputs: () => Promise<Omit<AlertInputs, 'disconnectedForMs'> & { connected: boolean | null }>;
  readonly logger: Logger;
  readonly clock?: () => number;
}

/**
 * Evaluates the rules on a timer and notifies the webhook once when an alert starts and once
 * when it ends. A failed delivery is retried at the next evaluation, not repeated after success.
 */
export class AlertEngine {
  readonly #options: AlertEngineOptions;
  readonly #clock: () => number;
  readonly #active = new Map<string, ActiveAlert>();
  /** Resolutions whose delivery failed, retried with the next evaluation. */
  readonly #unsentResolved: { alert: ActiveAlert }[] = [];
  readonly #recent: AlertEvent[] = [];
  #disconnectedSince: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: AlertEngineOptions) {
    this.#options = options;
    this.#clock = options.clock ?? Date.now;
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.evaluate(), this.#options.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  active(): readonly ActiveAlert[] {
    return [...this.#active.values()];
  }

  /** The last 50 firing and resolved events, newest first. */
  recent(): readonly AlertEvent[] {
    return this.#recent;
  }

  /** One evaluation (the timer calls it; tests may too). Never overlaps itself. */
  evaluate(): Promise<void> {
    this.#running ??= this.#evaluate().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #evaluate(): Promise<void> {
    const now = this.#clock();
    let conditions: AlertCondition[];
    try {
      const { connected, ...inputs } = await this.#options.inputs();
      if (connected === false) this.#disconnectedSince ??= now;
      else this.#disconnectedSince = null;
      const disconnectedForMs = this.#disconnectedSince === null ? null : now - this.#disconnectedSince;
      conditions = evaluateRules({ ...inputs, disconnectedForMs }, this.#options);
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'alert evaluation failed');
      return;
    }
    const holding = new Set(conditions.map((c) => c.id));
    for (const condition of conditions) {
      const held = this.#active.get(condition.id);
      if (held) {
        // The figures of a condition that still holds move (a lag grows): show the current ones.
        this.#active.set(condition.id, { ...condition, since: held.since, notified: held.notified });
        continue;
      }
      const alert: ActiveAlert = { ...condition, since: new Date(now).toISOString(), notified: false };
      this.#active.set(condition.id, alert);
      this.#record('firing', alert, now);
      this.#options.logger.warn({ alert: alert.id }, `alert firing: ${alert.summary}`);
    }
    for (const [id, alert] of this.#active) {
      if (holding.has(id)) continue;
      this.#active.delete(id);
      this.#record('resolved', alert, now);
      this.#options.logger.info({ alert: id }, `alert resolved: ${resolvedText(alert)}`);
      // An alert whose firing was never delivered needs no resolution either.
      if (alert.notified) this.#unsentResolved.push({ alert });
    }
    if (!this.#options.webhookUrl) return;
    for (const alert of this.#active.values()) {
      if (!alert.notified) alert.notified = await this.#send('firing', alert);
    }
    for (const pending of this.#unsentResolved.splice(0)) {
      if (!(await this.#send('resolved', pending.alert))) this.#unsentResolved.push(pending);
    }
  }

  #record(kind: AlertEvent['kind'], alert: ActiveAlert, now: number): void {
    this.#recent.unshift({
      kind,
      id: alert.id,
      rule: alert.rule,
      summary: kind === 'resolved' ? resolvedText(alert) : alert.summary,
      at: new Date(now).toISOString(),
    });
    this.#recent.length = Math.min(this.#recent.length, 50);
  }

  async #send(kind: 'firing' | 'resolved', alert: ActiveAlert): Promise<boolean> {
    const url = this.#options.webhookUrl;
    if (!url) return false;
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(webhookMessage(kind, alert, alert.since)),
        signal: AbortSignal.timeout(10_000),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (response.ok) return true;
      this.#options.logger.warn(
        { status: response.status, alert: alert.id },
        'alert webhook refused the alert',
      );
    } catch (error) {
      // The URL may carry a secret (Slack's does): never log it.
      this.#options.logger.warn(
        { err: { message: (error as Error).message }, alert: alert.id },
        'alert webhook unreachable',
      );
    }
    return false;
  }
}
