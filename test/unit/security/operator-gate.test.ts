import { describe, expect, it } from "vitest";
import { OperatorsSchema } from "../../../src/config/security-schema.ts";
import type { Principal } from "../../../src/server/auth/principal.ts";
import type { Guard } from "../../../src/server/guard.ts";
import { createOperatorGate } from "../../../src/server/operator-gate.ts";

const SCRAPE = "scrape-key-0123456789abcdef";

/** A guard that knows two bearer tokens: an OAuth token with scopes, and one without. */
const guard: Guard = async (headers) => {
  const token = headers.get("authorization")?.replace(/^Bearer /, "");
  const principals: Record<string, Principal> = {
    "ops-token": { id: "alice", kind: "oauth", scopes: ["mcp", "toolgate:operator"] },
    "user-token": { id: "bob", kind: "oauth", scopes: ["mcp"] },
  };
  const principal = token ? principals[token] : undefined;
  if (principal) return { ok: true, principal };
  return {
    ok: false,
    status: 401,
    message: "authentication required",
    headers: { "www-authenticate": "Bearer" },
  };
};

const oauth = { apiKeys: [], oauth: {} as never };
const headers = (authorization?: string) => new Headers(authorization ? { authorization } : {});
const remote = { loopback: false };

describe("the operator gate", () => {
  const gate = createOperatorGate({
    guard,
    auth: oauth,
    operators: OperatorsSchema.parse({ metricsKeys: [{ id: "prom", key: SCRAPE }] }),
  });

  it("lets in an OAuth token holding the operator scope", async () => {
    expect(await gate.decide(headers("Bearer ops-token"), remote, "status")).toEqual({ ok: true });
  });

  it("refuses a token without it with 403 naming how to become an operator", async () => {
    const verdict = await gate.decide(headers("Bearer user-token"), remote, "metrics");
    expect(verdict).toMatchObject({ ok: false, status: 403 });
    expect(verdict.ok ? "" : verdict.message).toMatch(
      /principal "bob" is not an operator: .*scope toolgate:operator, or scrape with one of security.operators.metricsKeys/,
    );
  });

  it("takes the token as an HTTP Basic password, and challenges browsers with Basic on the page", async () => {
    const basic = `Basic ${Buffer.from("anyone:ops-token").toString("base64")}`;
    expect(await gate.decide(headers(basic), remote, "page")).toEqual({ ok: true });
    const verdict = await gate.decide(headers(), remote, "page");
    expect(verdict.ok ? undefined : verdict.headers["www-authenticate"]).toMatch(/^Basic realm=/);
    const api = await gate.decide(headers(), remote, "status");
    expect(api.ok ? undefined : api.headers["www-authenticate"]).toBe("Bearer");
  });

  it("takes a scrape key on /metrics only", async () => {
    expect(await gate.decide(headers(`Bearer ${SCRAPE}`), remote, "metrics")).toEqual({ ok: true });
    expect(await gate.decide(headers(`Bearer ${SCRAPE}`), remote, "status")).toMatchObject({
      ok: false,
      status: 401,
    });
  });

  it("treats every authenticated caller as an operator when no authentication is configured", async () => {
    const open = createOperatorGate({
      guard: async () => ({ ok: true, principal: { id: "anonymous", kind: "anonymous", scopes: [] } }),
      auth: { apiKeys: [] },
      operators: OperatorsSchema.parse({}),
    });
    expect(await open.decide(headers(), { loopback: true }, "status")).toEqual({ ok: true });
  });
});
