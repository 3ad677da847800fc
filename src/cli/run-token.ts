import { randomBytes } from 'node:crypto';
import type { TributaryConfig } from '../config/config-schema.ts';

/**
 * The per-run token of `tributary up` (the notebook-server pattern): without a configured
 * `server.token`, `up` makes a random one for this run, so that the dashboard's buttons work; the
 * printed dashboard URL carries it after `#token=` (a fragment: the browser keeps it, it is never
 * sent to a server) and the page stores it. A configured token is used as is and never printed.
 * `run` makes none: there a token is the operator's choice (and required beyond loopback).
 */
export function withRunToken(config: TributaryConfig): { config: TributaryConfig; generated?: string } {
  if (config.server.token) return { config };
  const generated = randomBytes(24).toString('base64url');
  return { config: { ...config, server: { ...config.server, token: generated } }, generated };
}

/** The dashboard URL to print: with the generated token in its fragment, if there is one. */
export function dashboardUrl(url: string, generated: string | undefined): string {
  return generated ? `${url}#token=${generated}` : url;
}
