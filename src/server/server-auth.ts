import { timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { ConfigError } from '../core/errors.ts';

/** Whether binding to `host` keeps the server reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

/** Refuses, before anything listens, a server reachable from the network without a token. */
export function checkExposure(host: string, token: string | undefined): void {
  if (!isLoopback(host) && !token) {
    throw new ConfigError(
      `the HTTP server would listen on ${host} (beyond this machine) without a token: anyone on the network could read the records and drive the consumers`,
      {
        hint: 'set server.token (or TRIBUTARY_TOKEN, or --token) to a secret of at least 16 characters, or bind to 127.0.0.1 with --http-host',
      },
    );
  }
}

export type AuthDecision =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly status: 401 | 403; readonly message: string };

/**
 * Bearer-token policy: reads are open on loopback, everything else needs the token. Without a
 * configured token, mutating endpoints are refused with 403 (nothing to present could work);
 * a missing or wrong token is a 401.
 */
export function authorize(options: {
  readonly token: string | undefined;
  readonly loopback: boolean;
  readonly mutating: boolean;
  readonly authorization: string | undefined;
}): AuthDecision {
  const { token, loopback, mutating, authorization } = options;
  if (!mutating && loopback && authorization === undefined) return { allowed: true };
  if (!token) {
    if (!mutating) return { allowed: true };
    return {
      allowed: false,
      status: 403,
      message:
        'this endpoint changes the pipeline and the server has no token: start tributary with --token (or TRIBUTARY_TOKEN) and send Authorization: Bearer <token>',
    };
  }
  const presented = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  if (presented === undefined) {
    return {
      allowed: false,
      status: 401,
      message: 'missing bearer token: send Authorization: Bearer <token>',
    };
  }
  if (!sameSecret(presented, token)) return { allowed: false, status: 401, message: 'wrong bearer token' };
  return { allowed: true };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
