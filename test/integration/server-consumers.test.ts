import { rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../support/capture-harness.ts';
import { type Pipeline, startPipeline, startPoisonConsumer } from './server-support.ts';

const VERSION = 18;

describe('consumers and dead letters through the API', () => {
  let p: Pipeline;
  let consumer: Awaited<ReturnType<typeof startPoisonConsumer>>;

  beforeAll(async () => {
    p = await startPipeline(VERSION);
    consumer = await startPoisonConsumer(p);
  });
  afterAll(async () => {
    await consumer?.stop();
    await p?.stop();
  });

  const consumerState = async () => (await p.request('/api/consumers/poison')).body;
  const deadLetters = async () => (await p.request('/api/dead-letters')).body;

  it('lists the consumers with replicas and lag; an unknown one is a 404', async () => {
    const running = await waitFor(async () => {
      const c = await consumerState();
      return c?.replicas?.running === 1 && c;
    }, 'a running replica');
    expect(running).toMatchObject({ name: 'poison', group: 'poison', state: 'running', restarts: 0 });
    const list = await p.request('/api/consumers');
    expect(list.body.map((c: { name: string }) => c.name)).toEqual(['poison']);
    expect(await p.request('/api/consumers/nope')).toMatchObject({ status: 404 });
    expect((await p.request('/readyz')).status).toBe(200);
  });

  it('shows a dead letter, refuses a replay that fails again, replays once fixed', async () => {
    await p.db.query(`insert into items select g, 'item ' || g from generate_series(1, 10) g`);
    const listed = await waitFor(async () => {
      const d = await deadLetters();
      return d.total === 1 && d;
    }, 'the dead letter of item 7');
    const letter = listed.items[0];
    expect(letter).toMatchObject({
      consumer: 'poison',
      key: '{"id":7}',
      error: { message: 'item 7 is poison' },
    });
    expect(JSON.parse(letter.value)).toMatchObject({ op: 'c', after: { id: 7 } });
    expect(await p.request(`/api/dead-letters/${letter.id}`)).toMatchObject({
      status: 200,
      body: { id: letter.id },
    });
    expect((await p.request('/api/dead-letters/99999')).status).toBe(404);
    expect((await p.request('/api/dead-letters/abc')).status).toBe(404);
    expect((await p.request('/api/dead-letters?consumer=nope')).body).toEqual({ total: 0, items: [] });
    expect((await p.request('/api/dead-letters?limit=0')).status).toBe(400);

    const failed = await p.request(`/api/dead-letters/${letter.id}/replay`, { method: 'POST', token: true });
    expect(failed.status).toBe(409);
    expect(failed.body).toMatchObject({ error: 'REPLAY_FAILED' });
    expect(failed.body.message).toContain('item 7 is poison');
    expect((await deadLetters()).total).toBe(1);

    rmSync(consumer.flag);
    const replayed = await p.request(`/api/dead-letters/${letter.id}/replay`, {
      method: 'POST',
      token: true,
    });
    expect(replayed).toMatchObject({ status: 200, body: { ok: true } });
    expect((await deadLetters()).total).toBe(0);
    expect(
      (await p.request(`/api/dead-letters/${letter.id}/replay`, { method: 'POST', token: true })).status,
    ).toBe(404);
  });

  it('discards a dead letter', async () => {
    writeFileSync(consumer.flag, 'on');
    await p.db.query(`update items set name = 'again' where id = 7`);
    const listed = await waitFor(async () => {
      const d = await deadLetters();
      return d.total === 1 && d;
    }, 'a second dead letter');
    const id = listed.items[0].id;
    expect(await p.request(`/api/dead-letters/${id}/discard`, { method: 'POST', token: true })).toMatchObject(
      {
        status: 200,
      },
    );
    expect((await deadLetters()).total).toBe(0);
    expect((await p.request(`/api/dead-letters/${id}`)).status).toBe(404);
    rmSync(consumer.flag);
  });

  it('scales, pauses, resumes and restarts a consumer', async () => {
    const post = (path: string, body?: unknown) =>
      p.request(path, { method: 'POST', token: true, ...(body === undefined ? {} : { body }) });
    // The items topic has 1 partition: a second replica would be idle, and the answer says so (as the CLI does).
    const two = await post('/api/consumers/poison/scale', { replicas: 2 });
    expect(two).toMatchObject({ status: 202 });
    expect(two.body.note).toMatch(
      /^poison reads 1 partition, and a partition is read by one replica at a time: 1 of the 2 replicas will be idle\. More partitions: the setting log\.partitions/,
    );
    expect(two.body.message).toContain(`poison scaling to 2 replicas. Note: ${two.body.note}`);
    await waitFor(async () => (await consumerState()).replicas.running === 2, 'two replicas');
    const one = await post('/api/consumers/poison/scale', { replicas: 1 });
    expect(one.body).toEqual({ ok: true, message: 'poison scaling to 1 replicas' });
    expect((await post('/api/consumers/poison/scale', { replicas: 2 })).body.note).toContain('1 of the 2');
    await waitFor(async () => (await consumerState()).replicas.running === 2, 'two replicas again');
    expect((await post('/api/consumers/nope/scale', { replicas: 2 })).status).toBe(404);
    expect((await post('/api/consumers/poison/scale', { replicas: 65 })).status).toBe(400);

    expect((await post('/api/consumers/poison/pause')).status).toBe(202);
    await waitFor(async () => (await consumerState()).state === 'paused', 'paused');
    expect((await post('/api/consumers/poison/resume')).status).toBe(202);
    await waitFor(async () => (await consumerState()).state === 'running', 'running again');
    expect((await post('/api/consumers/poison/restart')).status).toBe(202);
    for (const action of ['pause', 'resume', 'restart']) {
      expect((await post(`/api/consumers/nope/${action}`)).status).toBe(404);
    }
    await waitFor(async () => {
      const c = await consumerState();
      return c.state === 'running' && c.replicas.running === 2;
    }, 'running after the restart');
  });

  it('merges the consumers metrics into /metrics', async () => {
    const text = (await p.request('/metrics')).text;
    expect(text).toMatch(/tributary_consumer_records_processed_total\{consumer="poison"\} [1-9]/);
    expect(text).toContain('tributary_consumer_records_dead_lettered_total{consumer="poison"} 2');
    expect(text).toContain('tributary_consumer_replicas{consumer="poison"}');
    expect(text).toContain('tributary_capture_events_total{table="public.items",op="c"} 10');
  });
});
