import { describe, expect, it } from "vitest";
import { hashApiKey } from "../../../src/config/security-schema.ts";
import { createApiKeyVerifier, readCredential } from "../../../src/server/auth/api-keys.ts";

const KEYS = [
  { id: "ci", keyHash: hashApiKey("ci-key-0123456789abcdef"), principal: "ci" },
  { id: "laptop", keyHash: hashApiKey("laptop-key-0123456789ab"), principal: "alice" },
];

describe("createApiKeyVerifier", () => {
  const verifier = createApiKeyVerifier(KEYS);

  it("returns the principal of a matching key", () => {
    expect(verifier.verifyApiKey("laptop-key-0123456789ab")).toEqual({
      id: "alice",
      kind: "apiKey",
      scopes: [],
    });
    expect(verifier.verifyApiKey("ci-key-0123456789abcdef")?.id).toBe("ci");
  });

  it("rejects unknown keys, near misses and the stored hash itself", () => {
    expect(verifier.verifyApiKey("ci-key-0123456789abcdeF")).toBeUndefined();
    expect(verifier.verifyApiKey("")).toBeUndefined();
    expect(verifier.verifyApiKey(KEYS[0]?.keyHash ?? "")).toBeUndefined();
  });

  it("matches nothing when no keys are configured", () => {
    const empty = createApiKeyVerifier([]);
    expect(empty.size).toBe(0);
    expect(empty.verifyApiKey("anything")).toBeUndefined();
  });
});

describe("readCredential", () => {
  it("reads a Bearer token, whatever the scheme's case", () => {
    expect(readCredential(new Headers({ authorization: "bearer abc.def" }))).toEqual({
      kind: "token",
      token: "abc.def",
      from: "bearer",
    });
  });

  it("reads X-API-Key when there is no Authorization header", () => {
    expect(readCredential(new Headers({ "x-api-key": " k " }))).toEqual({
      kind: "token",
      token: "k",
      from: "x-api-key",
    });
  });

  it("prefers Authorization over X-API-Key", () => {
    const c = readCredential(new Headers({ authorization: "Bearer a", "x-api-key": "b" }));
    expect(c).toMatchObject({ token: "a", from: "bearer" });
  });

  it("flags a non-Bearer Authorization header as malformed", () => {
    expect(readCredential(new Headers({ authorization: "Basic dTpw" })).kind).toBe("malformed");
    expect(readCredential(new Headers({ authorization: "Bearer" })).kind).toBe("malformed");
  });

  it("reports no credential when neither header is present", () => {
    expect(readCredential(new Headers()).kind).toBe("none");
  });
});
