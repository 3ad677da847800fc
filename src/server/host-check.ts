import { isLoopback } from './server-auth.ts';

/**
 * Defence against DNS rebinding: a web page on another site can make the browser resolve its own
 * name to 127.0.0.1 and then read a loopback server as if it were the same origin. The browser
 * still sends the page's name in `Host` (and in `Origin`), so a server bound to loopback answers
 * only requests naming it by a loopback name (`localhost`, `127.x.y.z`, `[::1]`, any port) or by a
 * name the operator configured (`server.allowedHosts`, e.g. the name of a reverse proxy).
 * Requests without `Host` (not sent by browsers) pass: they cannot come from a rebinding page.
 */
export interface HostDecision {
  readonly allowed: boolean;
  /** Why the request is refused, naming the header and the fix. */
  readonly message?: string;
}

/** The host name of a `Host` header value (`name:port`, `[v6]:port`), lower-cased, without port. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end < 0 ? h : h.slice(0, end + 1);
  }
  const colon = h.lastIndexOf(':');
  return colon < 0 ? h : h.slice(0, colon);
}

function allowedName(name: string, allowed: readonly string[]): boolean {
  if (name === '') return false;
  if (isLoopback(name)) return true;
  return allowed.some((a) => a.toLowerCase() === name);
}

export function checkHost(
  headers: { readonly host?: string | undefined; readonly origin?: string | undefined },
  allowedHosts: readonly string[],
): HostDecision {
  const fix =
    'open the dashboard and the API as http://127.0.0.1:<port>/ or http://localhost:<port>/, or add the name to server.allowedHosts (env TRIBUTARY_HTTP_ALLOWED_HOSTS)';
  if (headers.host !== undefined && !allowedName(hostName(headers.host), allowedHosts)) {
    return {
      allowed: false,
      message: `refused: Host ${JSON.stringify(headers.host.slice(0, 200))} is not a name of this server, which listens on loopback only (a foreign name is what a DNS-rebinding web page sends); ${fix}`,
    };
  }
  if (headers.origin !== undefined) {
    let name = '';
    try {
      name = hostName(new URL(headers.origin).host);
    } catch {
      name = '';
    }
    if (!allowedName(name, allowedHosts)) {
      return {
        allowed: false,
        message: `refused: Origin ${JSON.stringify(headers.origin.slice(0, 200))} is another site; this server answers only its own pages (no cross-origin requests); ${fix}`,
      };
    }
  }
  return { allowed: true };
}
