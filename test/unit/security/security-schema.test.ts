import { describe, expect, it } from "vitest";
import { z } from "zod";
import { hashApiKey, SecuritySchema } from "../../../src/config/security-schema.ts";

const KEY = "k3y-0123456789abcdef";

describe("SecuritySchema", () => {
  it("fills every default from an empty section", () => {
    expect(SecuritySchema.parse({})).toEqual({
      auth: { apiKeys: [], allowUnauthenticatedNonLoopback: false },
      operators: { principals: [], scopes: ["toolgate:operator"], metricsKeys: [] },
      principals: {},
      defaultPrincipal: { allow: ["*"], deny: [] },
      pinning: { mode: "flag" },
      validateArguments: true,
    });
  });

  it("hashes a key given in clear and does not keep it", () => {
    const parsed = SecuritySchema.parse({ auth: { apiKeys: [{ id: "ci", key: KEY }] } });
    expect(parsed.auth.apiKeys).toEqual([{ id: "ci", keyHash: hashApiKey(KEY), principal: "ci" }]);
    expect(JSON.stringify(parsed)).not.toContain(KEY);
  });

  it("keeps a given key hash (lower-cased) and the named principal", () => {
    const hash = hashApiKey(KEY);
    const parsed = SecuritySchema.parse({
      auth: {
        apiKeys: [{ id: "ci", keyHash: hash.toUpperCase().replace("SHA256", "sha256"), principal: "bots" }],
      },
    });
    expect(parsed.auth.apiKeys[0]).toEqual({ id: "ci", keyHash: hash, principal: "bots" });
  });

  it("rejects a key with both or neither of key and keyHash, short keys, and duplicates", () => {
    const result = SecuritySchema.safeParse({
      auth: {
        apiKeys: [
          { id: "a", key: KEY, keyHash: hashApiKey(KEY) },
          { id: "b" },
          { id: "c", key: "short" },
          { id: "d", key: KEY },
          { id: "d", key: `${KEY}-other` },
          { id: "e", keyHash: hashApiKey(KEY) },
        ],
      },
    });
    expect(result.success).toBe(false);
    const messages = result.error?.issues.map((i) => `${i.path.join(".")}: ${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        "auth.apiKeys.0: give exactly one of key or keyHash",
        "auth.apiKeys.1: give exactly one of key or keyHash",
        "auth.apiKeys.2.key: an API key needs at least 16 characters (use 32 random ones)",
        "auth.apiKeys.4: same id as apiKeys[3]: each key needs its own id and value",
        "auth.apiKeys.5: same key as apiKeys[3]: each key needs its own id and value",
      ]),
    );
    expect(JSON.stringify(result.error?.issues)).not.toContain(KEY);
  });

  it("defaults the OAuth authorization servers to the issuer and the metadata path to the RFC 9728 one", () => {
    const parsed = SecuritySchema.parse({
      auth: { oauth: { issuer: "https://id.example.com", audience: "https://gw.example.com/mcp" } },
    });
    expect(parsed.auth.oauth).toEqual({
      issuer: "https://id.example.com",
      audience: "https://gw.example.com/mcp",
      requiredScopes: [],
      resourceMetadataPath: "/.well-known/oauth-protected-resource",
      authorizationServers: ["https://id.example.com"],
    });
  });

  it("refuses plain-http OAuth endpoints except on loopback", () => {
    const oauth = (issuer: string) =>
      SecuritySchema.safeParse({ auth: { oauth: { issuer, audience: "https://gw.example.com/mcp" } } })
        .success;
    expect(oauth("http://id.example.com")).toBe(false);
    expect(oauth("http://127.0.0.1:9000")).toBe(true);
    expect(oauth("http://localhost:9000/realms/x")).toBe(true);
  });

  it("rejects unknown keys and unknown pinning modes with their path", () => {
    const result = SecuritySchema.safeParse({
      pinning: { mode: "block" },
      principals: { a: { allow: [], x: 1 } },
    });
    expect(result.error?.issues.map((i) => i.path.join("."))).toEqual(["principals.a", "pinning.mode"]);
  });

  it("describes the config file's input in JSON Schema", () => {
    const schema = z.toJSONSchema(SecuritySchema, { io: "input" }) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual([
      "auth",
      "operators",
      "principals",
      "defaultPrincipal",
      "pinning",
      "validateArguments",
    ]);
  });
});
