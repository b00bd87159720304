/**
 * Loopback detection for listen addresses, socket peers and Host/Origin values: it decides whether a
 * listener is reachable only from this machine and which Host values are legitimate on it.
 */
import { isIP } from "node:net";

/** True for `localhost`, `127.0.0.0/8`, `::1` and `::ffff:127.x.x.x` (a dual-stack socket's IPv4 peer), bracketed or not. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (h === "localhost") return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  if (isIP(h) === 6) return h === "::1" || h === "0:0:0:0:0:0:0:1" || h.startsWith("::ffff:127.");
  return false;
}

/** The Host names a browser uses for a loopback server; anything else on a loopback listener is suspect. */
const LOOPBACK_NAMES = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** True when a Host header / URL host name (port stripped) is one of `localhost`, `127.0.0.1`, `[::1]`. */
export function isLoopbackName(hostname: string): boolean {
  return LOOPBACK_NAMES.has(hostname.toLowerCase());
}

/** The host part of a Host header: `[::1]:8080` → `[::1]`, `Example.com:80` → `example.com`. */
export function hostnameOf(authority: string): string {
  const a = authority.trim().toLowerCase();
  if (a.startsWith("[")) {
    const end = a.indexOf("]");
    return end === -1 ? a : a.slice(0, end + 1);
  }
  const colon = a.indexOf(":");
  return colon === -1 ? a : a.slice(0, colon);
}
