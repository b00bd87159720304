/**
 * The `security` section of the config: who may connect (API keys, OAuth), what each principal may call,
 * tool-definition pinning and argument validation. Every default lives here, so the parsed value is the
 * normalized form; API keys given in clear are hashed while parsing and never kept.
 */
import { createHash } from "node:crypto";
import { z } from "zod";

const positiveInt = z.number().int().positive();

/** `sha256:<hex>` of an API key, the only form in which keys are kept. */
export function hashApiKey(key: string): string {
  return `sha256:${createHash("sha256").update(key, "utf8").digest("hex")}`;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** https, or http on a loopback host (a local identity provider in development and tests). */
const secureUrl = z.url().refine(
  (value) => {
    const url = new URL(value);
    return url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname));
  },
  { message: "must be an https URL (http only for localhost / 127.0.0.1 / [::1])" },
);

/** An OAuth scope token (RFC 6749 §3.3: printable ASCII without space, `"` and `\\`). */
const scope = z
  .string()
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, "a scope is printable ASCII without spaces, quotes or backslashes");

const ApiKeySchema = z
  .strictObject({
    /** Names the key in logs and `toolgate` commands; never the key itself. */
    id: z.string().min(1),
    /** `sha256:<64 hex>` of the key: `printf %s "$KEY" | sha256sum`. */
    keyHash: z
      .string()
      .regex(/^sha256:[0-9a-fA-F]{64}$/, "must be sha256:<64 hex digits>")
      .optional(),
    /** The key itself, usually `${ENV_VAR}`; hashed while loading. */
    key: z.string().min(16, "an API key needs at least 16 characters (use 32 random ones)").optional(),
    /** Principal the key authenticates as (default: the key's id). */
    principal: z.string().min(1).optional(),
  })
  .refine((k) => (k.key === undefined) !== (k.keyHash === undefined), {
    message: "give exactly one of key or keyHash",
  })
  .transform(({ id, key, keyHash, principal }) => ({
    id,
    keyHash: key === undefined ? (keyHash as string).toLowerCase() : hashApiKey(key),
    principal: principal ?? id,
  }));

export const OAuthSchema = z
  .strictObject({
    /** Authorization server issuer; tokens must carry exactly this `iss`. */
    issuer: secureUrl,
    /** This gateway's resource URI (e.g. `https://gw.example.com/mcp`); tokens must carry it in `aud`. */
    audience: secureUrl,
    /** Default: discovered from the issuer's metadata (RFC 8414, then OpenID Connect). */
    jwksUri: secureUrl.optional(),
    /** Scopes every token must hold; a token without them gets 403 insufficient_scope. */
    requiredScopes: z.array(scope).default([]),
    /** Path of the RFC 9728 protected-resource metadata document on this gateway. */
    resourceMetadataPath: z
      .string()
      .regex(/^\/[^?#\s]*$/, "must be an absolute path")
      .default("/.well-known/oauth-protected-resource"),
    /** Authorization servers advertised in the metadata (default: the issuer). */
    authorizationServers: z.array(secureUrl).min(1).optional(),
  })
  .transform((o) => ({ ...o, authorizationServers: o.authorizationServers ?? [o.issuer] }));

export const AuthSchema = z
  .strictObject({
    apiKeys: z.array(ApiKeySchema).default([]),
    oauth: OAuthSchema.optional(),
    /** Serve clients on a non-loopback address without any authentication (strongly discouraged). */
    allowUnauthenticatedNonLoopback: z.boolean().default(false),
  })
  .superRefine((auth, ctx) => {
    const seen = new Map<string, number>();
    auth.apiKeys.forEach((k, i) => {
      if (!k.keyHash) return; // the entry itself is invalid and already reported
      for (const [what, value] of [
        ["id", `id:${k.id}`],
        ["key", `hash:${k.keyHash}`],
      ] as const) {
        const first = seen.get(value);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["apiKeys", i],
            message: `same ${what} as apiKeys[${first}]: each key needs its own id and value`,
          });
        }
        seen.set(value, i);
      }
    });
  });

/** What one principal may do. Globs match public tool names; `upstream:<glob>` matches every tool of an upstream. */
const PrincipalRulesSchema = z.strictObject({
  allow: z.array(z.string().min(1)),
  /** Deny wins over allow. */
  deny: z.array(z.string().min(1)).default([]),
  rateLimit: z.strictObject({ perMinute: positiveInt }).optional(),
  /** Calls of this principal in flight at once. */
  maxInFlight: positiveInt.optional(),
});

const PinningSchema = z.strictObject({
  /**
   * What to do when an upstream changes a tool's definition (name, description, schemas, annotations):
   * `hold` hides the tool until approved (`toolgate pins approve`), `flag` serves it and warns, `off` ignores.
   */
  mode: z.enum(["off", "hold", "flag"]).default("flag"),
  /**
   * Pins file; default `pins.json` in `gateway.stateDir`. Relative paths resolve against the config file's directory.
   * Unused with `cluster.redis`: the replicas then share pins in Redis.
   */
  file: z.string().min(1).optional(),
});

/**
 * Who may read the operator routes (`/status`, the status page at `/` and `/ui`, `/metrics`) when
 * authentication is configured; `/healthz` and `/readyz` stay open. Without authentication these routes
 * follow the MCP endpoint's rule (loopback clients, or everyone with allowUnauthenticatedNonLoopback).
 */
export const OperatorsSchema = z.strictObject({
  /** Principal ids (an API key's `principal`, an OAuth token's `sub`) that are operators. */
  principals: z.array(z.string().min(1)).default([]),
  /** OAuth scopes that make a token's holder an operator. */
  scopes: z.array(scope).default(["toolgate:operator"]),
  /** Keys that may read `/metrics` and nothing else (a Prometheus scrape job's credentials). */
  metricsKeys: z.array(ApiKeySchema).default([]),
});

export const SecuritySchema = z.strictObject({
  auth: AuthSchema.prefault({}),
  operators: OperatorsSchema.prefault({}),
  /** Rules per principal id (an API key's `principal`, an OAuth token's `sub`). */
  principals: z.record(z.string().min(1), PrincipalRulesSchema).default({}),
  /** Rules for the anonymous principal (no auth configured) and for principals without their own entry. */
  defaultPrincipal: PrincipalRulesSchema.prefault({ allow: ["*"] }),
  pinning: PinningSchema.prefault({}),
  /** Check tool arguments against the tool's input schema before calling the upstream. */
  validateArguments: z.boolean().default(true),
});

export type SecurityOptions = z.output<typeof SecuritySchema>;
export type AuthOptions = z.output<typeof AuthSchema>;
export type ApiKeyEntry = z.output<typeof ApiKeySchema>;
export type OAuthOptions = z.output<typeof OAuthSchema>;
export type PrincipalRules = z.output<typeof PrincipalRulesSchema>;
export type OperatorsOptions = z.output<typeof OperatorsSchema>;
