import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from './config-loader.ts';

const dirs: string[] = [];
function dirWith(config: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'tributary-config-'));
  dirs.push(dir);
  writeFileSync(
    join(dir, 'tributary.config.json'),
    typeof config === 'string' ? config : JSON.stringify(config),
  );
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('loadConfig', () => {
  it('gives the defaults', () => {
    const config = loadConfig({ env: {}, cwd: tmpdir() });
    expect(config.source.slot).toBe('tributary');
    expect(config.dataDir).toBe('.tributary');
    expect(config.log.durable).toBe(true);
    expect(config.source.url).toBeUndefined();
  });
  it('capture.standby: off by default, on from the file or TRIBUTARY_STANDBY; the flag (undefined when absent) leaves them', () => {
    expect(loadConfig({ env: {}, cwd: tmpdir() }).capture.standby).toBe(false);
    const cwd = dirWith({ capture: { standby: true } });
    expect(loadConfig({ env: {}, cwd, flags: { 'capture.standby': undefined } }).capture.standby).toBe(true);
    expect(loadConfig({ env: { TRIBUTARY_STANDBY: '0' }, cwd }).capture.standby).toBe(false);
    expect(loadConfig({ env: { TRIBUTARY_STANDBY: 'true' }, cwd: tmpdir() }).capture.standby).toBe(true);
    expect(() => loadConfig({ env: { TRIBUTARY_STANDBY: 'yes' }, cwd: tmpdir() })).toThrow(
      /TRIBUTARY_STANDBY/,
    );
  });
  it('layers file < env < flags', () => {
    const cwd = dirWith({ source: { slot: 'from_file', publication: 'pub_file' }, dataDir: '/file' });
    const config = loadConfig({
      cwd,
      env: { TRIBUTARY_SLOT: 'from_env', DATABASE_URL: 'postgres://x@h/db' },
      flags: { 'source.slot': 'from_flag' },
    });
    expect(config.source.slot).toBe('from_flag');
    expect(config.source.publication).toBe('pub_file');
    expect(config.source.url).toBe('postgres://x@h/db');
    expect(config.dataDir).toBe('/file');
  });
  it('parses lists and numbers from text', () => {
    const config = loadConfig({
      env: { TRIBUTARY_TABLES: 'a.b, c.d', TRIBUTARY_PARTITIONS: '4' },
      cwd: tmpdir(),
    });
    expect(config.source.tables).toEqual(['a.b', 'c.d']);
    expect(config.log.partitions).toBe(4);
  });
  it('names the field, the origin and the allowed values', () => {
    expect(() => loadConfig({ env: { TRIBUTARY_FORMAT: 'avro' }, cwd: tmpdir() })).toThrow(
      /invalid value "avro" for environment variable TRIBUTARY_FORMAT.*allowed: debezium, unwrap/,
    );
    expect(() => loadConfig({ flags: { 'source.slot': 'Bad-Slot' }, env: {}, cwd: tmpdir() })).toThrow(
      /flag --slot/,
    );
  });
  it('rejects unknown keys and broken files', () => {
    expect(() => loadConfig({ cwd: dirWith({ source: { slott: 'x' } }), env: {} })).toThrow(
      /unknown setting source.slott/,
    );
    expect(() => loadConfig({ cwd: dirWith('{ nope'), env: {} })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ file: 'missing.json', cwd: tmpdir(), env: {} })).toThrow(
      /config file not found/,
    );
  });
});
