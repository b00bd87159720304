/**
 * DNS-rebinding protection for the HTTP transports, as the MCP spec requires (403 on an invalid Origin).
 * A pure decision: the hono middleware feeds it the request's headers and sends its verdict.
 *
 * - Host: on a loopback listener only `localhost`, `127.0.0.1`, `[::1]` (any port) and `allowedHosts`; a
 *   rebinding page reaches the listener under the attacker's host name, which this rejects. On other
 *   listeners any Host, unless `allowedHosts` is set (then loopback names and those).
 * - Origin: absent is fine (non-browser clients send none); present, it must be a loopback origin or one
 *   of `allowedOrigins`.
 */
import { hostnameOf, isLoopbackHost, isLoopbackName } from "./auth/loopback.ts";

export interface OriginCheckRequest {
  origin?: string | null | undefined;
  host?: string | null | undefined;
}

export interface OriginCheckOptions {
  /** The address the listener is bound to (`gateway.listen.host`). */
  listenHost: string;
  /** Exact origins allowed besides loopback ones, e.g. `https://app.example.com`. */
  allowedOrigins: readonly string[];
  /** Extra Host values: `name` (any port) or `name:port`. */
  allowedHosts: readonly string[];
}

export type OriginCheckResult = { ok: true } | { ok: false; status: 403; reason: string };

export function checkOriginAndHost(
  request: OriginCheckRequest,
  options: OriginCheckOptions,
): OriginCheckResult {
  const { host, origin } = request;
  // Browsers always send Host; a request without one is not a rebinding attack.
  if (host && !hostAllowed(host, options)) {
    const where = isLoopbackHost(options.listenHost) ? "a loopback listener" : "this listener";
    return deny(
      `Host "${host}" is not allowed on ${where} (DNS rebinding protection); if it is legitimate, add it to gateway.allowedHosts`,
    );
  }
  if (origin && !originAllowed(origin, options.allowedOrigins)) {
    return deny(
      `Origin "${origin}" is not allowed (DNS rebinding protection); if it is legitimate, add it to gateway.allowedOrigins`,
    );
  }
  return { ok: true };
}

function hostAllowed(host: string, options: OriginCheckOptions): boolean {
  const name = hostnameOf(host);
  if (isLoopbackName(name)) return true;
  const value = host.trim().toLowerCase();
  if (options.allowedHosts.some((h) => h.toLowerCase() === value || h.toLowerCase() === name)) return true;
  return !isLoopbackHost(options.listenHost) && options.allowedHosts.length === 0;
}

function originAllowed(origin: string, allowedOrigins: readonly string[]): boolean {
  const key = originKey(origin);
  if (key === undefined) return false; // "null" (sandboxed frames, file:) or garbage
  if (allowedOrigins.some((o) => originKey(o) === key)) return true;
  const url = new URL(key);
  return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackName(url.hostname);
}

/**
 * Comparable form of an origin: `scheme://host[:port]` in lower case without a default port; other schemes
 * (`chrome-extension://id`) have an opaque origin and compare as written. Undefined for "null" and garbage.
 */
export function originKey(value: string): string | undefined {
  const v = value.trim();
  if (v.toLowerCase() === "null") return undefined;
  try {
    const origin = new URL(v).origin;
    return origin === "null" ? v.toLowerCase() : origin;
  } catch {
    return undefined;
  }
}

function deny(reason: string): OriginCheckResult {
  return { ok: false, status: 403, reason };
}
