import { describe, expect, it } from 'vitest';
import { LagAutoscaler, RestartPolicy } from './supervisor-policy.ts';

describe('RestartPolicy', () => {
  const options = {
    backoffInitialMs: 100,
    backoffMaxMs: 1000,
    crashLoopRestarts: 5,
    crashLoopWindowMs: 10_000,
  };

  it('backs off exponentially up to the maximum, and starts over once healthy', () => {
    const p = new RestartPolicy({ ...options, crashLoopRestarts: 100 });
    const delays = [0, 1, 2, 3, 4, 5].map((i) => p.crashed(i * 20_000));
    expect(delays.map((d) => (d.crashLoop ? -1 : d.delayMs))).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(p.notBefore).toBe(100_000 + 1000);
    p.healthy();
    expect(p.crashed(200_000)).toEqual({ crashLoop: false, delayMs: 100 });
  });

  it('reports a crash loop when the restarts within the window reach the limit', () => {
    const p = new RestartPolicy(options);
    for (let i = 0; i < 4; i++) expect(p.crashed(i * 1000).crashLoop).toBe(false);
    expect(p.crashed(4000)).toEqual({ crashLoop: true, restartsInWindow: 5 });
  });

  it('counts hangs in a row however far apart, until a healthy replica', () => {
    const p = new RestartPolicy(options);
    // One hang every 70 s: never two in the 10 s window.
    for (let i = 0; i < 4; i++) expect(p.crashed(i * 70_000, 'hang').crashLoop).toBe(false);
    expect(p.crashed(280_000, 'hang')).toEqual({ crashLoop: true, restartsInWindow: 1, hungInARow: 5 });
    const q = new RestartPolicy(options);
    for (let i = 0; i < 4; i++) q.crashed(i * 70_000, 'hang');
    q.healthy();
    expect(q.crashed(280_000, 'hang').crashLoop).toBe(false);
  });

  it('forgets crashes older than the window, and everything on reset', () => {
    const p = new RestartPolicy(options);
    for (let i = 0; i < 4; i++) p.crashed(i * 1000);
    expect(p.crashed(12_500).crashLoop).toBe(false); // the first two left the window
    p.reset();
    for (let i = 0; i < 4; i++) expect(p.crashed(13_000 + i).crashLoop).toBe(false);
  });
});

describe('LagAutoscaler', () => {
  const range = { min: 1, max: 3, initial: 1, partitions: 4 };

  it('scales up one step per cooldown while behind, then down once caught up', () => {
    const a = new LagAutoscaler({ upLagSeconds: 5, downLagSeconds: 1, cooldownMs: 1000 });
    expect(a.decide({ now: 0, lagSeconds: 10, ...range })).toEqual({ target: 1 });
    expect(a.decide({ now: 999, lagSeconds: 10, ...range })).toEqual({ target: 1 });
    expect(a.decide({ now: 1000, lagSeconds: 10, ...range })).toEqual({ target: 2, step: 'up' });
    expect(a.decide({ now: 1500, lagSeconds: 10, ...range })).toEqual({ target: 2 });
    expect(a.decide({ now: 2600, lagSeconds: 10, ...range })).toEqual({ target: 3, step: 'up' });
    expect(a.decide({ now: 9000, lagSeconds: 10, ...range })).toEqual({ target: 3 }); // at max
    expect(a.decide({ now: 9100, lagSeconds: 3, ...range })).toEqual({ target: 3 }); // between thresholds
    expect(a.decide({ now: 9200, lagSeconds: 0, ...range })).toEqual({ target: 3 });
    expect(a.decide({ now: 10_200, lagSeconds: 0, ...range })).toEqual({ target: 2, step: 'down' });
  });

  it('needs the lag to stay beyond the threshold for the whole cooldown', () => {
    const a = new LagAutoscaler({ upLagSeconds: 5, downLagSeconds: 1, cooldownMs: 1000 });
    a.decide({ now: 0, lagSeconds: 10, ...range });
    a.decide({ now: 600, lagSeconds: 2, ...range }); // back under: the clock restarts
    expect(a.decide({ now: 1200, lagSeconds: 10, ...range })).toEqual({ target: 1 });
    expect(a.decide({ now: 2200, lagSeconds: 10, ...range })).toEqual({ target: 2, step: 'up' });
  });

  it('takes no step while the capture holds the consumers back, and counts the cooldown afresh after', () => {
    const a = new LagAutoscaler({ upLagSeconds: 5, downLagSeconds: 1, cooldownMs: 1000 });
    a.decide({ now: 0, lagSeconds: 10, ...range });
    // Their lag grows while they wait for the capture: not a sign that they are too few.
    for (let t = 500; t <= 5000; t += 500) {
      expect(a.decide({ now: t, lagSeconds: 10 + t / 100, held: true, ...range })).toEqual({ target: 1 });
    }
    expect(a.decide({ now: 5500, lagSeconds: 60, ...range })).toEqual({ target: 1 });
    expect(a.decide({ now: 6500, lagSeconds: 60, ...range })).toEqual({ target: 2, step: 'up' });
  });

  it('never runs more replicas than partitions', () => {
    const a = new LagAutoscaler({ upLagSeconds: 5, downLagSeconds: 1, cooldownMs: 0 });
    const input = { min: 1, max: 8, initial: 1, partitions: 2, lagSeconds: 60 };
    for (let t = 0; t < 10; t++) a.decide({ now: t * 10, ...input });
    expect(a.decide({ now: 1000, ...input }).target).toBe(2);
  });
});
