import { afterAll, describe, expect, it } from 'vitest';
import type { RunningCapture } from '../../src/capture/capture-runner.ts';
import { captureDeps } from '../../src/server/control-plane.ts';
import { type ControlPlane, startControlPlane } from '../../src/server/http-server.ts';
import { ServerMetrics } from '../../src/server/server-metrics.ts';
import { captureConfig, quietLogger, runCapture, tempDirs, waitFor } from '../support/capture-harness.ts';
import { cli } from '../support/cli.ts';
import { createDatabase } from '../support/databases.ts';

const VERSION = 18;

describe('snapshots after a restart', () => {
  const dirs = tempDirs('tributary-snap-restart-');
  let running: RunningCapture | undefined;
  let server: ControlPlane | undefined;
  afterAll(async () => {
    await server?.stop();
    await running?.stop();
    dirs.removeAll();
  });

  it('the API (the dashboard) lists the snapshot an earlier run did, as tributary status does', async () => {
    const db = await createDatabase(VERSION, 'snaprs');
    try {
      await db.query('create table things (id int primary key, v text)');
      await db.query(`insert into things select g, 'v' || g from generate_series(1, 500) g`);
      const dataDir = dirs.make();
      const config = captureConfig(db.url, dataDir, {
        'source.slot': `s_${db.name}`,
        'source.publication': `p_${db.name}`,
        'snapshot.mode': 'initial',
      });
      running = await runCapture(config);
      await waitFor(() => running!.snapshotJobs()[0]?.state === 'done', 'the initial snapshot done');
      await running.stop();
      running = await runCapture(config);
      server = await startControlPlane({
        host: '127.0.0.1',
        port: 0,
        logger: quietLogger,
        metrics: new ServerMetrics(),
      });
      server.attach(captureDeps(running, config));
      const api = (await (await fetch(new URL('/api/snapshots', server.url))).json()) as unknown[];
      expect(api).toMatchObject([{ table: 'public.things', kind: 'initial', state: 'done', rowsDone: 500 }]);
      // `tributary status` reads the status file this run rewrites: the same job.
      const status = await waitFor(async () => {
        const r = await cli(['status', '--json', '--data-dir', dataDir]);
        const report = JSON.parse(r.stdout) as { state: string; snapshot: unknown[] };
        return report.state === 'running' && report;
      }, 'status of the running capture');
      expect(status.snapshot).toMatchObject([
        { table: 'public.things', kind: 'initial', state: 'done', rows: 500 },
      ]);
    } finally {
      await server?.stop();
      server = undefined;
      await running?.stop();
      running = undefined;
      await db.drop();
    }
  });
});
