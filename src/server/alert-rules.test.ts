import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { AlertEngine } from './alert-engine.ts';
import { evaluateRules, webhookMessage } from './alert-rules.ts';
import type { ConsumerSummary } from './control-plane-deps.ts';
import { authorize, checkExposure, isLoopback } from './server-auth.ts';

const limits = { slotLagBytes: 1000, consumerLagSeconds: 60, crashLoop: true, disconnectedSeconds: 30 };
const consumer = (over: Partial<ConsumerSummary>): ConsumerSummary => ({
  name: 'orders',
  group: 'orders',
  topics: ['t'],
  state: 'running',
  replicas: { desired: 1, running: 1 },
  restarts: 0,
  crashLooping: false,
  failure: null,
  lastError: null,
  lagRecords: 0,
  lagSeconds: null,
  processed: 0,
  failed: 0,
  deadLettered: 0,
  counters: {},
  warnings: [],
  ...over,
});

describe('alert rules', () => {
  it('holds each condition only beyond its threshold, and not when turned off', () => {
    const quiet = {
      disconnectedForMs: 29_000,
      slotLagBytes: 1000,
      slot: 's',
      consumers: [consumer({ lagSeconds: 60 })],
    };
    expect(evaluateRules(quiet, limits)).toEqual([]);
    const loud = {
      disconnectedForMs: 30_000,
      slotLagBytes: 1001,
      slot: 's',
      consumers: [
        consumer({
          lagSeconds: 61,
          lagRecords: 5,
          crashLooping: true,
          lastError: { message: 'boom', at: '' },
        }),
      ],
    };
    expect(evaluateRules(loud, limits).map((c) => c.id)).toEqual([
      'capture_disconnected',
      'slot_lag',
      'consumer_lag:orders',
      'consumer_crash_loop:orders',
    ]);
    const off = { slotLagBytes: 0, consumerLagSeconds: 0, crashLoop: false, disconnectedSeconds: 0 };
    expect(evaluateRules(loud, off)).toEqual([]);
  });

  it('fires consumer_failing for a consumer failing on dead letters, whatever the thresholds', () => {
    const failing = consumer({
      state: 'failing',
      failure: { reason: 'dead_letters', message: '10 records dead-lettered in a row', at: '', paused: true },
    });
    const off = { slotLagBytes: 0, consumerLagSeconds: 0, crashLoop: false, disconnectedSeconds: 0 };
    const conditions = evaluateRules(
      {
        disconnectedForMs: null,
        slotLagBytes: null,
        slot: 's',
        consumers: [failing, consumer({ name: 'ok' })],
      },
      off,
    );
    expect(conditions).toEqual([
      {
        id: 'consumer_failing:orders',
        rule: 'consumer_failing',
        severity: 'critical',
        summary: 'consumer orders is failing (10 records dead-lettered in a row)',
        resolved: 'consumer orders is no longer failing',
      },
    ]);
  });

  it('builds Slack-compatible bodies', () => {
    const [alert] = evaluateRules(
      { disconnectedForMs: null, slotLagBytes: 5000, slot: 's', consumers: [] },
      limits,
    );
    const firing = webhookMessage('firing', alert!, '2026-01-01T00:00:00.000Z');
    expect(firing.text).toContain('FIRING');
    expect(firing.blocks[0]).toMatchObject({ type: 'section', text: { type: 'mrkdwn' } });
    expect(webhookMessage('resolved', alert!, 'x').text).toContain('RESOLVED');
  });

  it('fires once while a condition holds and resolves once, tracking disconnection time', async () => {
    let now = 0;
    let connected = false;
    const engine = new AlertEngine({
      ...limits,
      intervalMs: 1000,
      clock: () => now,
      logger: pino({ level: 'silent' }),
      inputs: async () => ({ connected, slotLagBytes: 0, slot: 's', consumers: [] }),
    });
    await engine.evaluate();
    now = 29_000;
    await engine.evaluate();
    expect(engine.active()).toEqual([]);
    now = 30_000;
    await engine.evaluate();
    now = 40_000;
    await engine.evaluate();
    expect(engine.active().map((a) => a.id)).toEqual(['capture_disconnected']);
    connected = true;
    await engine.evaluate();
    await engine.evaluate();
    expect(engine.active()).toEqual([]);
    expect(engine.recent().map((e) => e.kind)).toEqual(['resolved', 'firing']);
  });
});

describe('a consumer lag alert', () => {
  it('shows the current lag while it fires, and once resolved says so, with none of the firing text', async () => {
    let lagSeconds: number | null = 90;
    const engine = new AlertEngine({
      ...limits,
      intervalMs: 1000,
      clock: () => 0,
      logger: pino({ level: 'silent' }),
      inputs: async () => ({
        connected: true,
        slotLagBytes: 0,
        slot: 's',
        consumers: [consumer({ lagSeconds, lagRecords: lagSeconds ? 500 : 0 })],
      }),
    });
    await engine.evaluate();
    expect(engine.active().map((a) => a.summary)).toEqual([
      'consumer orders is 90 s behind (500 records; limit 60 s)',
    ]);
    lagSeconds = 240;
    await engine.evaluate();
    expect(engine.active().map((a) => a.summary)).toEqual([
      'consumer orders is 240 s behind (500 records; limit 60 s)',
    ]);
    lagSeconds = null;
    await engine.evaluate();
    expect(engine.active()).toEqual([]);
    const [resolved, firing] = engine.recent();
    expect(firing).toMatchObject({
      kind: 'firing',
      summary: 'consumer orders is 90 s behind (500 records; limit 60 s)',
    });
    expect(resolved).toMatchObject({
      kind: 'resolved',
      id: 'consumer_lag:orders',
      summary: 'consumer orders caught up: its lag is back within 60 s',
    });
    const [condition] = evaluateRules(
      { disconnectedForMs: null, slotLagBytes: null, slot: 's', consumers: [consumer({ lagSeconds: 90 })] },
      limits,
    );
    const text = webhookMessage('resolved', condition!, '2026-01-01T00:00:00.000Z').text;
    expect(text).toBe(
      ':white_check_mark: [RESOLVED] consumer orders caught up: its lag is back within 60 s (firing since 2026-01-01T00:00:00.000Z)',
    );
    expect(text).not.toContain('behind');
  });
});

describe('server auth', () => {
  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', 'example.com']) expect(isLoopback(h)).toBe(false);
  });

  it('refuses to expose the server without a token', () => {
    expect(() => checkExposure('0.0.0.0', undefined)).toThrow(/without a token/);
    expect(() => checkExposure('0.0.0.0', 'x'.repeat(16))).not.toThrow();
    expect(() => checkExposure('127.0.0.1', undefined)).not.toThrow();
  });

  it('opens reads on loopback, asks the token for the rest', () => {
    const token = 's3cret-s3cret-s3cret';
    const ask = (o: { token?: string; loopback: boolean; mutating: boolean; authorization?: string }) =>
      authorize({
        token: o.token,
        loopback: o.loopback,
        mutating: o.mutating,
        authorization: o.authorization,
      });
    expect(ask({ token, loopback: true, mutating: false })).toEqual({ allowed: true });
    expect(ask({ token, loopback: true, mutating: true })).toMatchObject({ status: 401 });
    expect(ask({ token, loopback: true, mutating: true, authorization: 'Bearer nope' })).toMatchObject({
      status: 401,
    });
    expect(ask({ token, loopback: true, mutating: true, authorization: `Bearer ${token}` })).toEqual({
      allowed: true,
    });
    expect(ask({ loopback: true, mutating: true, authorization: 'Bearer x' })).toMatchObject({ status: 403 });
    expect(ask({ token, loopback: false, mutating: false })).toMatchObject({ status: 401 });
    expect(ask({ token, loopback: false, mutating: false, authorization: `bearer ${token}` })).toEqual({
      allowed: true,
    });
  });
});
