import { generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OAuthOptions, OAuthSchema } from "../../../src/config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { createOAuthVerifier } from "../../../src/server/auth/oauth.ts";
import { startTestIssuer, type TestIssuer } from "./jwks-server.ts";

const AUDIENCE = "http://127.0.0.1:8080/mcp";
let idp: TestIssuer;

beforeAll(async () => {
  idp = await startTestIssuer({ metadata: true });
});
afterAll(() => idp.close());

function options(extra: Partial<OAuthOptions> = {}): OAuthOptions {
  return { ...OAuthSchema.parse({ issuer: idp.issuer, audience: AUDIENCE, jwksUri: idp.jwksUri }), ...extra };
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

describe("createOAuthVerifier", () => {
  it("accepts a valid token and takes the principal from sub, the scopes from scope, the expiry from exp", async () => {
    const verifier = createOAuthVerifier(options());
    const exp = Math.floor(Date.now() / 1000) + 600;
    const token = await idp.sign(
      { sub: "alice", aud: AUDIENCE, iss: idp.issuer, scope: "tools:read tools:call" },
      { expiresIn: exp },
    );
    expect(await verifier.verifyToken(token)).toEqual({
      id: "alice",
      kind: "oauth",
      scopes: ["tools:read", "tools:call"],
      // The accepted clock skew (30 s by default) is part of the token's life here as at verification.
      expiresAt: (exp + 30) * 1000,
    });
  });

  it("reads scopes from an scp array and accepts an audience list containing this resource", async () => {
    const verifier = createOAuthVerifier(options());
    const token = await idp.sign({ sub: "bob", aud: ["other", AUDIENCE], iss: idp.issuer, scp: ["a", "b"] });
    expect((await verifier.verifyToken(token)).scopes).toEqual(["a", "b"]);
  });

  it("rejects a token issued for another audience", async () => {
    const verifier = createOAuthVerifier(options());
    const token = await idp.sign({ sub: "alice", aud: "https://other.example.com/mcp", iss: idp.issuer });
    const err = await rejection(verifier.verifyToken(token));
    expect(err.code).toBe(ErrorCode.Unauthorized);
    expect(err.message).toBe(`the token's audience is not ${AUDIENCE}`);
    expect(err.data).toEqual({ bearerError: "invalid_token" });
  });

  it("rejects a token from another issuer", async () => {
    const verifier = createOAuthVerifier(options());
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: "https://evil.example.com" });
    const err = await rejection(verifier.verifyToken(token));
    expect(err.message).toBe(`the token's issuer is not ${idp.issuer}`);
  });

  it("rejects an expired token and a token without expiry", async () => {
    const verifier = createOAuthVerifier(options());
    const expired = await idp.sign(
      { sub: "alice", aud: AUDIENCE, iss: idp.issuer },
      { expiresIn: Math.floor(Date.now() / 1000) - 3600 },
    );
    expect((await rejection(verifier.verifyToken(expired))).message).toBe("the token has expired");
    const eternal = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer }, { expiresIn: null });
    expect((await rejection(verifier.verifyToken(eternal))).code).toBe(ErrorCode.Unauthorized);
  });

  it("rejects a token signed by another key under the same key id", async () => {
    const verifier = createOAuthVerifier(options());
    const { privateKey } = await generateKeyPair("ES256");
    const forged = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer }, { key: privateKey });
    expect((await rejection(verifier.verifyToken(forged))).message).toBe("the token's signature is invalid");
  });

  it("rejects a token whose payload was altered after signing", async () => {
    const verifier = createOAuthVerifier(options());
    const [header, , signature] = (await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer })).split(
      ".",
    );
    const payload = Buffer.from(
      JSON.stringify({
        sub: "admin",
        aud: AUDIENCE,
        iss: idp.issuer,
        exp: Math.floor(Date.now() / 1000) + 300,
      }),
    ).toString("base64url");
    const err = await rejection(verifier.verifyToken(`${header}.${payload}.${signature}`));
    expect(err.message).toBe("the token's signature is invalid");
  });

  it("rejects a symmetric (HS256) token and garbage", async () => {
    const verifier = createOAuthVerifier(options());
    const hs = await new SignJWT({ sub: "alice", aud: AUDIENCE, iss: idp.issuer })
      .setProtectedHeader({ alg: "HS256", kid: "k1" })
      .setExpirationTime("5m")
      .sign(new TextEncoder().encode("a-shared-secret-of-32-bytes-long!"));
    expect((await rejection(verifier.verifyToken(hs))).code).toBe(ErrorCode.Unauthorized);
    expect((await rejection(verifier.verifyToken("not-a-jwt"))).code).toBe(ErrorCode.Unauthorized);
  });

  it("refuses a valid token lacking a required scope with insufficient_scope", async () => {
    const verifier = createOAuthVerifier(options({ requiredScopes: ["mcp:tools"] }));
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer, scope: "profile" });
    const err = await rejection(verifier.verifyToken(token));
    expect(err.code).toBe(ErrorCode.Forbidden);
    expect(err.message).toBe('the token of "alice" lacks the required scope mcp:tools');
    expect(err.data).toEqual({ bearerError: "insufficient_scope" });
  });

  it("discovers the JWKS from the issuer's RFC 8414 metadata when jwksUri is not set", async () => {
    const verifier = createOAuthVerifier(options({ jwksUri: undefined }));
    const token = await idp.sign({ sub: "carol", aud: AUDIENCE, iss: idp.issuer });
    expect((await verifier.verifyToken(token)).id).toBe("carol");
    expect(idp.hits).toContain("/.well-known/oauth-authorization-server");
  });

  it("reports unreachable signing keys as UpstreamUnavailable, not as a bad token", async () => {
    const gone = await startTestIssuer();
    await gone.close();
    const verifier = createOAuthVerifier(options({ jwksUri: gone.jwksUri }), { fetchTimeoutMs: 2_000 });
    const token = await idp.sign({ sub: "alice", aud: AUDIENCE, iss: idp.issuer });
    const err = await rejection(verifier.verifyToken(token));
    expect(err.code).toBe(ErrorCode.UpstreamUnavailable);
    expect(err.message).toContain(`cannot fetch the signing keys of ${idp.issuer} from ${gone.jwksUri}`);
  });

  it("publishes RFC 9728 metadata and points to it from the challenge", () => {
    const verifier = createOAuthVerifier(options({ requiredScopes: ["mcp:tools"] }));
    expect(verifier.protectedResourceMetadata()).toEqual({
      resource: AUDIENCE,
      authorization_servers: [idp.issuer],
      bearer_methods_supported: ["header"],
      scopes_supported: ["mcp:tools"],
    });
    const url = "http://127.0.0.1:8080/.well-known/oauth-protected-resource";
    expect(verifier.resourceMetadataUrl).toBe(url);
    expect(verifier.wwwAuthenticate()).toBe(`Bearer resource_metadata="${url}"`);
    expect(verifier.wwwAuthenticate("invalid_token")).toBe(
      `Bearer resource_metadata="${url}", error="invalid_token"`,
    );
    expect(verifier.wwwAuthenticate("insufficient_scope")).toBe(
      `Bearer resource_metadata="${url}", error="insufficient_scope", scope="mcp:tools"`,
    );
  });
});
