/**
 * Secrets given as command-line arguments are visible to every local user (`ps`, /proc/<pid>/
 * cmdline) for as long as the process runs. They still work, but the CLI says so once, naming
 * the safe alternatives.
 */

/** Whether a connection string carries a password (URL user:password@, or key=value password=). */
function hasPassword(conninfo: string): boolean {
  if (/(^|\s)password\s*=/i.test(conninfo)) return true;
  try {
    return new URL(conninfo).password !== '';
  } catch {
    return false;
  }
}

/** The warning for these arguments, or undefined when no secret is in them. */
export function argvSecretWarning(args: readonly string[]): string | undefined {
  const found: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [name, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s, 2) : [arg];
    const value = inline ?? args[i + 1];
    if (name === '--source' && value !== undefined && hasPassword(value))
      found.push('a database password (in --source)');
    if (name === '--token' && value !== undefined) found.push('the API token (--token)');
  }
  if (found.length === 0) return undefined;
  return `warning: ${[...new Set(found)].join(' and ')} on the command line: every user of this machine can read it in the process list. Use DATABASE_URL, --source-file <file> (TRIBUTARY_SOURCE_FILE), or a URL without password plus PGPASSWORD or ~/.pgpass; and TRIBUTARY_TOKEN or --token-file <file> (TRIBUTARY_TOKEN_FILE).`;
}

/** Writes the warning to stderr once per process. */
let warned = false;
export function warnSecretsInArgv(args: readonly string[]): void {
  if (warned) return;
  const warning = argvSecretWarning(args);
  if (!warning) return;
  warned = true;
  process.stderr.write(`${warning}\n`);
}
