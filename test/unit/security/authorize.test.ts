import { describe, expect, it } from "vitest";
import { SecuritySchema } from "../../../src/config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { createAuthorizer, RateLimiter } from "../../../src/server/auth/authorize.ts";
import { ANONYMOUS, type Principal } from "../../../src/server/auth/principal.ts";

const alice: Principal = { id: "alice", kind: "apiKey", scopes: [] };
const bob: Principal = { id: "bob", kind: "oauth", scopes: [] };
const stranger: Principal = { id: "stranger", kind: "oauth", scopes: [] };

const security = SecuritySchema.parse({
  principals: {
    alice: { allow: ["fs__read_*", "upstream:github"], deny: ["github__delete_*"] },
    bob: { allow: ["*"], deny: ["upstream:fs"], rateLimit: { perMinute: 2 }, maxInFlight: 1 },
  },
  defaultPrincipal: { allow: ["time__*"] },
});

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    return err as GatewayError;
  }
  throw new Error("expected a GatewayError");
}

describe("createAuthorizer", () => {
  const authorizer = createAuthorizer(security);

  it("allows tools matching a name glob or an upstream: pattern", () => {
    expect(authorizer.canCall(alice, "fs__read_file", "fs")).toBe(true);
    expect(authorizer.canCall(alice, "github__create_issue", "github")).toBe(true);
  });

  it("refuses tools outside the allow list", () => {
    expect(authorizer.canCall(alice, "fs__write_file", "fs")).toBe(false);
  });

  it("lets deny win over allow, for names and for upstreams", () => {
    expect(authorizer.canCall(alice, "github__delete_repo", "github")).toBe(false);
    expect(authorizer.canCall(bob, "fs__read_file", "fs")).toBe(false);
    expect(authorizer.canCall(bob, "github__delete_repo", "github")).toBe(true);
  });

  it("applies defaultPrincipal to anonymous callers and principals without an entry", () => {
    for (const p of [ANONYMOUS, stranger]) {
      expect(authorizer.canCall(p, "time__now", "time")).toBe(true);
      expect(authorizer.canCall(p, "fs__read_file", "fs")).toBe(false);
    }
  });

  it("matches names with dots and does not treat inherited object keys as principals", () => {
    const dotted = createAuthorizer(SecuritySchema.parse({ defaultPrincipal: { allow: ["*"] } }));
    expect(dotted.canCall(ANONYMOUS, ".hidden.tool", "x")).toBe(true);
    const proto: Principal = { id: "constructor", kind: "oauth", scopes: [] };
    expect(authorizer.canCall(proto, "time__now", "time")).toBe(true);
    expect(authorizer.rulesFor(proto)).toBe(security.defaultPrincipal);
  });

  it("explains a refusal with the principal, the tool and the rule", () => {
    const notAllowed = thrown(() => authorizer.assertCanCall(alice, "fs__write_file", "fs"));
    expect(notAllowed.code).toBe(ErrorCode.Forbidden);
    expect(notAllowed.message).toBe(
      'principal "alice" may not call tool "fs__write_file": not in its allow list (rules: security.principals["alice"])',
    );
    const denied = thrown(() => authorizer.assertCanCall(alice, "github__delete_repo", "github"));
    expect(denied.message).toContain('it matches the deny pattern "github__delete_*"');
    const anon = thrown(() => authorizer.assertCanCall(ANONYMOUS, "fs__read_file", "fs"));
    expect(anon.message).toContain("(rules: security.defaultPrincipal)");
  });

  it("filters a tool list to what the principal may call", () => {
    const tools = [
      { name: "fs__read_file", upstream: "fs" },
      { name: "fs__write_file", upstream: "fs" },
      { name: "github__delete_repo", upstream: "github" },
      { name: "github__list_issues", upstream: "github" },
    ];
    expect(authorizer.filterTools(alice, tools).map((t) => t.name)).toEqual([
      "fs__read_file",
      "github__list_issues",
    ]);
  });
});

describe("RateLimiter", () => {
  const authorizer = createAuthorizer(security);

  it("admits perMinute calls at once, then refuses with the time to wait", () => {
    let now = 0;
    const limiter = new RateLimiter(authorizer.rulesFor, { now: () => now });
    limiter.acquire(bob)();
    limiter.acquire(bob)();
    const err = thrown(() => limiter.acquire(bob, "github__x"));
    expect(err.code).toBe(ErrorCode.RateLimited);
    expect(err.message).toBe('principal "bob" exceeded its rate limit of 2 calls per minute; retry in 30 s');
    expect(err.data).toEqual({ retryAfterMs: 30_000 });
    expect(err.tool).toBe("github__x");
    now = 29_999;
    expect(() => limiter.acquire(bob)).toThrow(GatewayError);
    now = 30_000;
    expect(() => limiter.acquire(bob)()).not.toThrow();
  });

  it("refills to at most one minute's worth", () => {
    let now = 0;
    const limiter = new RateLimiter(authorizer.rulesFor, { now: () => now });
    now = 10 * 60_000;
    limiter.acquire(bob)();
    limiter.acquire(bob)();
    expect(() => limiter.acquire(bob)).toThrow(/rate limit/);
  });

  it("caps calls in flight and frees the slot on release, once", () => {
    let now = 0;
    const limiter = new RateLimiter(authorizer.rulesFor, { now: () => now });
    const release = limiter.acquire(bob);
    expect(limiter.inFlight("bob")).toBe(1);
    expect(thrown(() => limiter.acquire(bob)).message).toBe(
      'principal "bob" already has 1 calls in flight (its maxInFlight); wait for one to finish',
    );
    release();
    release();
    expect(limiter.inFlight("bob")).toBe(0);
    now = 60_000;
    const again = limiter.acquire(bob);
    expect(() => limiter.acquire(bob)).toThrow(/in flight/);
    again();
  });

  it("does not spend a token on a call refused for concurrency", () => {
    const limiter = new RateLimiter(authorizer.rulesFor, { now: () => 0 });
    const release = limiter.acquire(bob);
    expect(() => limiter.acquire(bob)).toThrow(/in flight/);
    release();
    expect(() => limiter.acquire(bob)()).not.toThrow();
  });

  it("limits nothing for principals without limits", () => {
    const limiter = new RateLimiter(authorizer.rulesFor, { now: () => 0 });
    const releases = Array.from({ length: 100 }, () => limiter.acquire(alice));
    expect(limiter.inFlight("alice")).toBe(100);
    for (const r of releases) r();
    expect(limiter.inFlight("alice")).toBe(0);
  });

  it("keeps separate buckets per principal and forgets the least recently seen beyond maxTracked", () => {
    const limited = createAuthorizer(
      SecuritySchema.parse({ defaultPrincipal: { allow: ["*"], rateLimit: { perMinute: 1 } } }),
    );
    const limiter = new RateLimiter(limited.rulesFor, { now: () => 0, maxTracked: 2 });
    const p = (id: string): Principal => ({ id, kind: "oauth", scopes: [] });
    limiter.acquire(p("a"))();
    limiter.acquire(p("b"))();
    expect(() => limiter.acquire(p("a"))).toThrow(/rate limit/);
    limiter.acquire(p("c"))(); // evicts b, the least recently seen
    expect(() => limiter.acquire(p("b"))()).not.toThrow();
  });
});
