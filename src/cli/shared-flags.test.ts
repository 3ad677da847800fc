import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/config-loader.ts';
import { captureFlags, flagsToSettings } from './shared-flags.ts';

function parse(args: string[]) {
  const command = captureFlags(new Command('run')).exitOverride();
  command.parse(args, { from: 'user' });
  return loadConfig({ env: {}, cwd: '/nonexistent', flags: flagsToSettings(command.opts()) });
}

describe('filter, mask and TOAST flags', () => {
  it('set the settings they name', () => {
    const config = parse([
      '--exclude-tables',
      'public.sessions,audit.events',
      '--include-columns',
      'public.users.id,public.users.country',
      '--exclude-columns',
      'public.orders.note',
      '--skip-operations',
      'd,t',
      '--exclude-message-prefixes',
      'debug,internal.*',
      '--mask-columns',
      'public.users.phone',
      '--mask-with',
      'XXX',
      '--mask-hash-columns',
      'public.users.email',
      '--toast-fetch',
    ]);
    expect(config.filter).toMatchObject({
      excludeTables: ['public.sessions', 'audit.events'],
      includeColumns: ['public.users.id', 'public.users.country'],
      excludeColumns: ['public.orders.note'],
      skipOperations: ['d', 't'],
      excludeMessagePrefixes: ['debug', 'internal.*'],
    });
    expect(config.mask).toMatchObject({
      columns: ['public.users.phone'],
      with: 'XXX',
      hashColumns: ['public.users.email'],
    });
    expect(config.toast.fetch).toBe(true);
  });

  it('leave the defaults when absent, and name the flag of a bad value', () => {
    const config = parse([]);
    expect(config.toast.fetch).toBe(false);
    expect(config.filter.excludeMessagePrefixes).toEqual([]);
    expect(() => parse(['--skip-operations', 'x'])).toThrow(/flag --skip-operations/);
  });
});
