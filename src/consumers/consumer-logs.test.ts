import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LineSplitter, RotatingLogFile, structureLine, tailLines } from './consumer-logs.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('consumer logs', () => {
  it('rotates by size, keeps N files, and tails across them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'consumer-logs-'));
    dirs.push(dir);
    const file = join(dir, 'logs', 'c.log');
    const log = new RotatingLogFile(file, { maxBytes: 100, files: 2 });
    for (let i = 0; i < 20; i++) log.write({ i, pad: 'x'.repeat(20) });
    log.close();
    expect(existsSync(`${file}.1`)).toBe(true);
    expect(existsSync(`${file}.2`)).toBe(true);
    expect(existsSync(`${file}.3`)).toBe(false);
    for (const f of [file, `${file}.1`, `${file}.2`]) expect(readFileSync(f).length).toBeLessThanOrEqual(100);
    const last = tailLines(file, 5).map((l) => (JSON.parse(l) as { i: number }).i);
    expect(last).toEqual([15, 16, 17, 18, 19]);
  });

  it('structures plain and JSON lines', () => {
    const fields = { replica: 2, pid: 7, stream: 'stderr' as const };
    expect(structureLine('oops', fields, 1)).toEqual({
      time: 1,
      level: 50,
      replica: 2,
      pid: 7,
      stream: 'stderr',
      msg: 'oops',
    });
    expect(structureLine('{"level":30,"msg":"hi","time":5}', { ...fields, stream: 'stdout' }, 1)).toEqual({
      time: 5,
      level: 30,
      msg: 'hi',
      replica: 2,
      stream: 'stdout',
    });
    expect(structureLine('{not json', fields, 1)).toMatchObject({ msg: '{not json' });
  });

  it('splits chunks into whole lines', () => {
    const lines: string[] = [];
    const s = new LineSplitter();
    s.push('a\nb', (l) => lines.push(l));
    s.push('c\n\nd', (l) => lines.push(l));
    s.flush((l) => lines.push(l));
    expect(lines).toEqual(['a', 'bc', 'd']);
  });
});
