/**
 * CORS for browser clients of `/mcp` (a web app, the MCP Inspector's direct mode): a preflight answer, and the
 * headers that let the page read an answer (the session id included). Only origins listed in
 * `gateway.allowedOrigins` get it. The loopback origins that the rebinding check lets through may send
 * requests, but reading answers from another origin is granted by name, never by default.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { HttpResponseLike } from "./http1-server.ts";
import { originKey } from "./origin.ts";

/** Response headers a browser client needs to read: the session, the era, and a 401's challenge. */
const EXPOSED = "mcp-session-id, mcp-protocol-version, www-authenticate";
const METHODS = "GET, POST, DELETE";
/** How long a browser may keep a preflight's answer (seconds). */
const MAX_AGE = "600";

export type Preflight =
  | { ok: true; headers: OutgoingHttpHeaders }
  | { ok: false; message: string; headers: OutgoingHttpHeaders };

export class Cors {
  readonly #origins: Set<string>;

  constructor(allowedOrigins: readonly string[]) {
    this.#origins = new Set(allowedOrigins.map(originKey).filter((o) => o !== undefined));
  }

  /** Whether a page at `origin` gets CORS. */
  grants(origin: string): boolean {
    const key = originKey(origin);
    return key !== undefined && this.#origins.has(key);
  }

  /** `OPTIONS /mcp` from a page at `origin`: what a browser asks before a request it may not send unasked. */
  preflight(origin: string, headers: IncomingHttpHeaders): Preflight {
    if (!this.grants(origin)) {
      return {
        ok: false,
        message: `CORS is granted only to origins listed in gateway.allowedOrigins; add "${origin}" to let a browser page there use /mcp`,
        headers: { allow: `${METHODS}, OPTIONS`, vary: "origin" },
      };
    }
    const asked = headers["access-control-request-headers"];
    return {
      ok: true,
      headers: {
        ...answerHeaders(origin),
        "access-control-allow-methods": METHODS,
        // The page is trusted by name: whatever headers it asks to send (the 2026 era's mcp-method and
        // mcp-name, authorization, last-event-id, ones a later revision adds).
        ...(typeof asked === "string" && { "access-control-allow-headers": asked }),
        "access-control-max-age": MAX_AGE,
      },
    };
  }
}

function answerHeaders(origin: string): OutgoingHttpHeaders {
  return { "access-control-allow-origin": origin, "access-control-expose-headers": EXPOSED, vary: "origin" };
}

/** Every head this response writes carries the CORS headers for `origin`. */
export function grant(res: HttpResponseLike, origin: string): void {
  const writeHead = res.writeHead.bind(res);
  const extra = answerHeaders(origin);
  res.writeHead = (status, headers) => writeHead(status, { ...headers, ...extra });
}
