/**
 * The door of the operator routes: `/status`, the status page (`/`, `/ui`, its live stream) and `/metrics`.
 * They show the whole catalog, upstream errors and load, so once authentication is configured only
 * operators may read them: principals listed in `security.operators.principals`, OAuth tokens holding one
 * of `security.operators.scopes`, and, for `/metrics` alone, the `security.operators.metricsKeys`. Without
 * authentication they follow the MCP endpoint's rule (the guard: loopback, or allowUnauthenticatedNonLoopback).
 * Browsers cannot send a Bearer header when navigating, so HTTP Basic with the key or token as the password
 * is accepted too, and the page answers 401 with a Basic challenge. `/healthz` and `/readyz` stay open.
 */
import type { IncomingMessage } from "node:http";
import type { MiddlewareHandler } from "hono";
import type { AuthOptions, OperatorsOptions } from "../config/security-schema.ts";
import { createApiKeyVerifier, readCredential } from "./auth/api-keys.ts";
import { isLoopbackHost } from "./auth/loopback.ts";
import type { Principal } from "./auth/principal.ts";
import type { Guard } from "./guard.ts";

export type OperatorRoute = "status" | "page" | "metrics";

type OperatorVerdict =
  | { ok: true }
  | { ok: false; status: 401 | 403 | 503; message: string; headers: Record<string, string> };

export interface OperatorGateOptions {
  guard: Guard;
  auth: Pick<AuthOptions, "apiKeys" | "oauth">;
  operators: OperatorsOptions;
}

export interface OperatorGate {
  decide(
    headers: Pick<Headers, "get">,
    remote: { loopback: boolean },
    route: OperatorRoute,
  ): Promise<OperatorVerdict>;
  /** Hono middleware for one kind of route. */
  middleware(route: OperatorRoute): MiddlewareHandler;
}

const BASIC_CHALLENGE = 'Basic realm="toolgate operators", charset="UTF-8"';

export function createOperatorGate(options: OperatorGateOptions): OperatorGate {
  const configured = options.auth.apiKeys.length > 0 || options.auth.oauth !== undefined;
  const metricsKeys = createApiKeyVerifier(options.operators.metricsKeys);
  const principals = new Set(options.operators.principals);
  const scopes = new Set(options.operators.scopes);
  const isOperator = (p: Principal) =>
    !configured || principals.has(p.id) || p.scopes.some((s) => scopes.has(s));

  const decide: OperatorGate["decide"] = async (raw, remote, route) => {
    const headers = basicAsBearer(raw);
    if (route === "metrics" && metricsKeys.size > 0) {
      // A secret key cannot come from a rebinding page, so no Origin/Host check is needed for it.
      const credential = readCredential(headers);
      if (credential.kind === "token" && metricsKeys.verifyApiKey(credential.token)) return { ok: true };
    }
    const verdict = await options.guard(headers, remote);
    if (!verdict.ok) {
      const challenge: Record<string, string> = { ...verdict.headers };
      if (verdict.status === 401 && route === "page") challenge["www-authenticate"] = BASIC_CHALLENGE;
      return { ok: false, status: verdict.status, message: verdict.message, headers: challenge };
    }
    if (isOperator(verdict.principal)) return { ok: true };
    return {
      ok: false,
      status: 403,
      message:
        `principal "${verdict.principal.id}" is not an operator: list it in security.operators.principals` +
        (scopes.size ? ` or grant it the scope ${[...scopes].join(" or ")}` : "") +
        (route === "metrics" ? ", or scrape with one of security.operators.metricsKeys" : ""),
      headers: {},
    };
  };

  return { decide, middleware: (route) => gateMiddleware(decide, route) };
}

/** Hono middleware that lets a request of `route` through when `decide` says so. */
export function gateMiddleware(decide: OperatorGate["decide"], route: OperatorRoute): MiddlewareHandler {
  return async (c, next) => {
    const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
    const address = incoming?.socket.remoteAddress;
    const loopback = address !== undefined && isLoopbackHost(address);
    const verdict = await decide(c.req.raw.headers, { loopback }, route);
    if (verdict.ok) return next();
    return c.text(`${verdict.message}\n`, verdict.status, {
      ...verdict.headers,
      "cache-control": "no-store",
    });
  };
}

/**
 * A guard that also takes HTTP Basic (the key or token as the password), for the routes the status page
 * calls with the credentials the browser already sent for the page (approvals, upstream consent). A
 * cross-site page cannot ride on them: the guard refuses a foreign Origin.
 */
export function acceptingBasic(guard: Guard): Guard {
  return (headers, remote) => guard(basicAsBearer(headers), remote);
}

/** `Authorization: Basic base64(user:secret)` → `Bearer secret`; other headers pass as they are. */
function basicAsBearer(headers: Pick<Headers, "get">): Pick<Headers, "get"> {
  const match = /^Basic +([A-Za-z0-9+/=]+) *$/i.exec(headers.get("authorization") ?? "");
  if (!match?.[1]) return headers;
  const decoded = Buffer.from(match[1], "base64").toString("utf8");
  const secret = decoded.slice(decoded.indexOf(":") + 1);
  return {
    get: (name) => (name.toLowerCase() === "authorization" ? `Bearer ${secret}` : headers.get(name)),
  };
}
