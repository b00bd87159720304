import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthSchema, hashApiKey } from "../../../src/config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { assertSafeBind, createAuthenticator } from "../../../src/server/auth/authenticate.ts";
import { startTestIssuer, type TestIssuer } from "./jwks-server.ts";

const KEY = "ci-key-0123456789abcdef";
const AUDIENCE = "http://127.0.0.1:8080/mcp";
const LOCAL = { loopback: true };
const REMOTE = { loopback: false };
const headers = (h: Record<string, string> = {}) => new Headers(h);

let idp: TestIssuer;
beforeAll(async () => {
  idp = await startTestIssuer();
});
afterAll(() => idp.close());

describe("createAuthenticator without any auth configured", () => {
  const authenticate = createAuthenticator(AuthSchema.parse({}));

  it("serves a loopback client as the anonymous principal", async () => {
    expect(await authenticate(headers(), LOCAL)).toEqual({
      ok: true,
      principal: { id: "anonymous", kind: "anonymous", scopes: [] },
    });
  });

  it("refuses a non-loopback client", async () => {
    const result = await authenticate(headers(), REMOTE);
    expect(result).toMatchObject({ ok: false, status: 403 });
  });

  it("serves a non-loopback client when explicitly allowed", async () => {
    const open = createAuthenticator(AuthSchema.parse({ allowUnauthenticatedNonLoopback: true }));
    expect((await open(headers(), REMOTE)).ok).toBe(true);
  });
});

describe("createAuthenticator with API keys", () => {
  const authenticate = createAuthenticator(
    AuthSchema.parse({ apiKeys: [{ id: "ci", keyHash: hashApiKey(KEY), principal: "robot" }] }),
  );

  it("accepts the key as a Bearer token or in X-API-Key", async () => {
    const variants: Array<Record<string, string>> = [
      { authorization: `Bearer ${KEY}` },
      { "x-api-key": KEY },
    ];
    for (const h of variants) {
      const result = await authenticate(headers(h), REMOTE);
      expect(result).toEqual({ ok: true, principal: { id: "robot", kind: "apiKey", scopes: [] } });
    }
  });

  it("requires credentials even from loopback clients", async () => {
    expect(await authenticate(headers(), LOCAL)).toEqual({
      ok: false,
      status: 401,
      wwwAuthenticate: 'Bearer realm="toolgate"',
      message: 'authentication required: send "Authorization: Bearer <API key>" or "X-API-Key: <API key>"',
    });
  });

  it("answers 401 invalid_token to a wrong key", async () => {
    expect(await authenticate(headers({ "x-api-key": `${KEY}x` }), LOCAL)).toMatchObject({
      ok: false,
      status: 401,
      wwwAuthenticate: 'Bearer realm="toolgate", error="invalid_token"',
    });
  });

  it("answers 401 invalid_request to a non-Bearer Authorization header", async () => {
    const result = await authenticate(headers({ authorization: `Basic ${btoa(`u:${KEY}`)}` }), LOCAL);
    expect(result).toMatchObject({
      ok: false,
      status: 401,
      message: "the Authorization header must be `Bearer <token>`",
    });
  });
});

describe("createAuthenticator with OAuth and API keys", () => {
  const make = (requiredScopes: string[] = []) =>
    createAuthenticator(
      AuthSchema.parse({
        apiKeys: [{ id: "ci", keyHash: hashApiKey(KEY) }],
        oauth: { issuer: idp.issuer, audience: AUDIENCE, jwksUri: idp.jwksUri, requiredScopes },
      }),
    );
  const metadata = 'resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource"';

  it("accepts a valid access token and still accepts API keys", async () => {
    const authenticate = make();
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer });
    expect(await authenticate(headers({ authorization: `Bearer ${token}` }), REMOTE)).toMatchObject({
      ok: true,
      principal: { id: "alice", kind: "oauth" },
    });
    expect(await authenticate(headers({ authorization: `Bearer ${KEY}` }), REMOTE)).toMatchObject({
      ok: true,
      principal: { id: "ci", kind: "apiKey" },
    });
  });

  it("challenges a request without credentials with the resource metadata URL", async () => {
    const result = await make()(headers(), REMOTE);
    expect(result).toEqual({
      ok: false,
      status: 401,
      wwwAuthenticate: `Bearer ${metadata}`,
      message:
        'authentication required: send "Authorization: Bearer <access token>" or "Authorization: Bearer <API key>" or "X-API-Key: <API key>"',
    });
  });

  it("answers 401 invalid_token with the reason for a token of another audience", async () => {
    const token = await idp.sign({ sub: "alice", aud: "https://elsewhere/mcp", iss: idp.issuer });
    expect(await make()(headers({ authorization: `Bearer ${token}` }), REMOTE)).toEqual({
      ok: false,
      status: 401,
      wwwAuthenticate: `Bearer ${metadata}, error="invalid_token"`,
      message: `the token's audience is not ${AUDIENCE}`,
    });
  });

  it("answers 403 insufficient_scope for a token without the required scope", async () => {
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer, scope: "other" });
    expect(await make(["mcp"])(headers({ authorization: `Bearer ${token}` }), REMOTE)).toMatchObject({
      ok: false,
      status: 403,
      wwwAuthenticate: `Bearer ${metadata}, error="insufficient_scope", scope="mcp"`,
    });
  });

  it("does not take an access token from X-API-Key", async () => {
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer });
    expect(await make()(headers({ "x-api-key": token }), REMOTE)).toMatchObject({ ok: false, status: 401 });
  });
});

describe("assertSafeBind", () => {
  const none = AuthSchema.parse({});

  it("allows loopback addresses without auth", () => {
    for (const host of ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"]) {
      expect(() => assertSafeBind(host, none)).not.toThrow();
    }
  });

  it("refuses a non-loopback address without auth with a ConfigInvalid error", () => {
    for (const host of ["0.0.0.0", "::", "192.168.1.10", "gateway.example.com"]) {
      const err = (() => {
        try {
          assertSafeBind(host, none);
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe(ErrorCode.ConfigInvalid);
      expect((err as GatewayError).message).toContain(`refusing to listen on ${host} without authentication`);
    }
  });

  it("allows a non-loopback address with API keys, OAuth, or the explicit opt-out", () => {
    const withKey = AuthSchema.parse({ apiKeys: [{ id: "a", key: KEY }] });
    const optOut = AuthSchema.parse({ allowUnauthenticatedNonLoopback: true });
    const oauth = AuthSchema.parse({
      oauth: { issuer: "https://id.example.com", audience: "https://gw.example.com/mcp" },
    });
    for (const options of [withKey, optOut, oauth])
      expect(() => assertSafeBind("0.0.0.0", options)).not.toThrow();
  });
});
