/**
 * The environment of a consumer replica process: what the runtime needs, plus the variables the
 * consumer declares with `defineConsumer({ env: [...] })`; nothing else. The supervisor's own
 * environment holds Tributary's secrets (the source URL with its password, the API token, the
 * masking salt, the alert webhook) that consumer code, often third-party, must not read; a
 * variable deleted from `process.env` inside the child would still be readable in
 * `/proc/self/environ`, so the filter is applied by the parent, at fork.
 */

/** Variables the Node.js runtime, tsx, locale and TLS handling need. */
const RUNTIME = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TMPDIR',
  'TMP',
  'TEMP',
  'TZ',
  'LANG',
  'LANGUAGE',
  'TERM',
  'NO_COLOR',
  'FORCE_COLOR',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'TRIBUTARY_LOG_LEVEL',
]);
const RUNTIME_PREFIXES = ['LC_', 'NODE_', 'TSX_'];

/**
 * Tributary's secrets: never given to a consumer, even when it declares them (a consumer that
 * needs a database gets its own variable, e.g. `ORDERS_DB_URL`, with its own credentials).
 */
export const TRIBUTARY_SECRETS: ReadonlySet<string> = new Set([
  'DATABASE_URL',
  'PGPASSWORD',
  'PGPASSFILE',
  'TRIBUTARY_TOKEN',
  'TRIBUTARY_TOKEN_FILE',
  'TRIBUTARY_SOURCE_FILE',
  'TRIBUTARY_MASK_SALT',
  'TRIBUTARY_ALERTS_WEBHOOK_URL',
  'TRIBUTARY_SINKS',
]);

/** Whether a consumer may declare this name (a variable name, and not one of Tributary's secrets). */
export function declarableEnvName(name: string): string | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) return 'is not a variable name (letters, digits, _)';
  if (TRIBUTARY_SECRETS.has(name) || name.startsWith('TRIBUTARY_'))
    return "is Tributary's own setting or secret, never given to consumers: give the consumer its own variable";
  return undefined;
}

export function replicaEnv(
  parent: NodeJS.ProcessEnv,
  declared: readonly string[],
  worker: string,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  const wanted = new Set(declared.filter((n) => declarableEnvName(n) === undefined));
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined || TRIBUTARY_SECRETS.has(name)) continue;
    if (RUNTIME.has(name) || RUNTIME_PREFIXES.some((p) => name.startsWith(p)) || wanted.has(name))
      env[name] = value;
  }
  env.TRIBUTARY_WORKER = worker;
  return env;
}
