import { describe, expect, it } from 'vitest';
import { argvSecretWarning } from './argv-secrets.ts';

describe('argvSecretWarning', () => {
  it('warns about a password in --source and about --token, in both spellings', () => {
    expect(argvSecretWarning(['run', '--source', 'postgres://u:pw@db/x'])).toMatch(/database password/);
    expect(argvSecretWarning(['run', '--source=postgres://u:pw@db/x'])).toMatch(/database password/);
    expect(argvSecretWarning(['run', '--source', 'host=db password=pw'])).toMatch(/database password/);
    expect(argvSecretWarning(['run', '--token', 'abcdefabcdefabcdef'])).toMatch(/API token/);
    expect(argvSecretWarning(['run', '--token=abcdefabcdefabcdef'])).toMatch(/API token/);
  });
  it('says nothing without a secret', () => {
    expect(argvSecretWarning(['run', '--source', 'postgres://u@db/x'])).toBeUndefined();
    expect(argvSecretWarning(['run', '--source-file', 'f', '--token-file', 't'])).toBeUndefined();
  });
});
