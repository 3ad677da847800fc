/**
 * Output through real pipes to real reader processes (`| wc -l`, `| head`): every line arrives,
 * and a reader that closes early ends the command quietly with exit code 0.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerLogFile } from '../../src/consumers/consumer-logs.ts';
import { EmbeddedEventLog } from '../../src/log/embedded/sqlite-event-log.ts';
import { tempDir } from '../support/capture-harness.ts';
import { BIN } from '../support/cli.ts';

const RECORDS = 20_000;
const dir = tempDir('tributary-pipes-');

/** Runs a shell pipeline (bash, with pipefail: the exit code is the first failing command's). */
function pipeline(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'bash',
      ['-c', `set -o pipefail; ${script}`],
      {
        env: {
          ...process.env,
          TRIBUTARY: `${process.execPath} ${BIN}`,
          D: dir.path,
          TRIBUTARY_HTTP_PORT: '0',
        },
        maxBuffer: 64 * 1024 * 1024,
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  const log = EmbeddedEventLog.open({ dataDir: dir.path, defaultPartitions: 2 });
  const payload = 'x'.repeat(200);
  for (let start = 0; start < RECORDS; start += 2_000) {
    await log.append(
      Array.from({ length: 2_000 }, (_, i) => ({
        topic: 'pipes.public.t',
        key: JSON.stringify({ id: start + i }),
        value: JSON.stringify({ id: start + i, payload }),
        headers: {},
        timestamp: 1_700_000_000_000 + start + i,
      })),
    );
  }
  await log.close();
  const logFile = consumerLogFile(dir.path, 'piped');
  mkdirSync(join(dir.path, 'logs'), { recursive: true });
  writeFileSync(
    logFile,
    Array.from(
      { length: RECORDS },
      (_, i) => `{"level":30,"n":${i},"msg":"line ${i}","detail":"${'y'.repeat(400)}"}\n`,
    ).join(''),
  );
}, 60_000);

afterAll(() => dir.remove());

describe('CLI output through a pipe', () => {
  it('read | wc -l counts every record, and read | a JSON parser sees whole lines', async () => {
    const counted = await pipeline('$TRIBUTARY read pipes.public.t --data-dir "$D" | wc -l');
    expect(counted.stderr).toBe('');
    expect(counted.code).toBe(0);
    expect(Number(counted.stdout.trim())).toBe(RECORDS);

    // A slow reader (a node process that parses every line) gets every line whole.
    const parser = `${process.execPath} -e "let n=0,b='';process.stdin.on('data',d=>{b+=d;const l=b.split('\\n');b=l.pop();for(const x of l){JSON.parse(x);n++}});process.stdin.on('end',()=>console.log(n, b.length))"`;
    const parsed = await pipeline(`$TRIBUTARY read pipes.public.t --data-dir "$D" | ${parser}`);
    expect(parsed.stderr).toBe('');
    expect(parsed.code).toBe(0);
    expect(parsed.stdout.trim()).toBe(`${RECORDS} 0`);
  });

  it('logs | wc -l counts every line', async () => {
    const counted = await pipeline(`$TRIBUTARY logs piped -n ${RECORDS} --data-dir "$D" | wc -l`);
    expect(counted.stderr).toBe('');
    expect(counted.code).toBe(0);
    expect(Number(counted.stdout.trim())).toBe(RECORDS);
  });

  it('read | head -n 5 ends quietly with exit code 0', async () => {
    const head = await pipeline('$TRIBUTARY read pipes.public.t --data-dir "$D" | head -n 5');
    expect(head.stderr).toBe('');
    expect(head.code).toBe(0);
    const lines = head.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    for (const line of lines) expect(JSON.parse(line)).toMatchObject({ topic: 'pipes.public.t' });

    const logs = await pipeline(`$TRIBUTARY logs piped -n ${RECORDS} --data-dir "$D" | head -n 1`);
    expect(logs.stderr).toBe('');
    expect(logs.code).toBe(0);
    expect(JSON.parse(logs.stdout)).toMatchObject({ n: 0 });
  });
});
