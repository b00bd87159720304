/**
 * API keys: kept only as SHA-256 digests (keys are long random strings, so a plain hash is enough, unlike
 * passwords) and compared in constant time, so neither the config nor timing reveals a key.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { ApiKeyEntry } from "../../config/security-schema.ts";
import type { Principal } from "./principal.ts";

/** What the request carries: nothing, a token (from `Authorization: Bearer` or `X-API-Key`), or junk. */
export type Credential =
  | { kind: "none" }
  | { kind: "token"; token: string; from: "bearer" | "x-api-key" }
  | { kind: "malformed"; reason: string };

export function readCredential(headers: Pick<Headers, "get">): Credential {
  const authorization = headers.get("authorization");
  if (authorization !== null) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match?.[1])
      return { kind: "malformed", reason: "the Authorization header must be `Bearer <token>`" };
    return { kind: "token", token: match[1], from: "bearer" };
  }
  const apiKey = headers.get("x-api-key")?.trim();
  if (apiKey) return { kind: "token", token: apiKey, from: "x-api-key" };
  return { kind: "none" };
}

export interface ApiKeyVerifier {
  /** The principal of a valid key, undefined otherwise. */
  verifyApiKey(token: string): Principal | undefined;
  readonly size: number;
}

export function createApiKeyVerifier(keys: readonly ApiKeyEntry[]): ApiKeyVerifier {
  const stored = keys.map((k) => ({
    digest: Buffer.from(k.keyHash.slice("sha256:".length), "hex"),
    principal: k.principal,
  }));
  return {
    size: stored.length,
    verifyApiKey(token) {
      const digest = createHash("sha256").update(token, "utf8").digest();
      // Compare with every key (no early exit): the time taken does not tell which key nearly matched.
      let found: string | undefined;
      for (const k of stored) {
        if (timingSafeEqual(digest, k.digest) && found === undefined) found = k.principal;
      }
      return found === undefined ? undefined : { id: found, kind: "apiKey", scopes: [] };
    },
  };
}
