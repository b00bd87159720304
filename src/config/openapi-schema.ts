/**
 * Keys of an `mcpServers` entry of `type: "openapi"`: an HTTP API served as tools, from an OpenAPI document
 * (`spec`) or from a few declared `endpoints`. Credentials come from the config (use `${ENV}`), never
 * from the client. `openapiTransport()` turns the entry into the upstream's transport settings.
 */
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
export type HttpMethod = (typeof HTTP_METHODS)[number];

const method = z
  .string()
  .transform((m) => m.toLowerCase())
  .pipe(z.enum(HTTP_METHODS));

export const OpenApiAuthSchema = z.strictObject({
  /** `Authorization: Bearer <token>` (http/bearer schemes). */
  bearer: z.string().min(1).optional(),
  /** http/basic schemes. */
  basic: z.strictObject({ username: z.string(), password: z.string() }).optional(),
  /** apiKey schemes: the key, placed where the spec's scheme says; `name`/`in` when the spec has no scheme. */
  apiKey: z
    .union([
      z.string().min(1),
      z.strictObject({
        value: z.string().min(1),
        name: z.string().min(1).optional(),
        in: z.enum(["header", "query", "cookie"]).optional(),
      }),
    ])
    .optional(),
  /** OAuth 2.0 client credentials: tokens are fetched, cached until shortly before they expire, and refreshed. */
  oauth2: z
    .strictObject({
      /** Default: the spec's clientCredentials flow tokenUrl. */
      tokenUrl: z.string().url().optional(),
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      scopes: z.array(z.string()).optional(),
    })
    .optional(),
});

const OpenApiFilterSchema = z.strictObject({
  /** Only operations with one of these tags. */
  tags: z.array(z.string()).optional(),
  excludeTags: z.array(z.string()).optional(),
  /** Only these HTTP methods. */
  methods: z.array(method).optional(),
  /** Glob patterns on the path template (`/pets/**`). */
  paths: z.array(z.string()).optional(),
  excludePaths: z.array(z.string()).optional(),
});

const OpenApiEndpointSchema = z.strictObject({
  method,
  /** Absolute URL, or a path joined to `baseUrl`; `{name}` segments are filled from the arguments. */
  url: z.string().min(1),
  description: z.string().optional(),
  /** JSON Schema of the arguments (type object); properties not in the URL go to the query (GET, HEAD, DELETE, OPTIONS) or the JSON body. */
  inputSchema: z.record(z.string(), z.unknown()).optional(),
  /** Safe to send twice (a POST that is idempotent). */
  idempotent: z.boolean().optional(),
});

/** Keys only an `openapi` entry takes; merged into the `mcpServers` entry schema. */
export const OpenApiServerFields = {
  /** OpenAPI 3.0/3.1 document: a path relative to the config file, or an https URL. */
  spec: z.string().min(1).optional(),
  /** Base URL of the API; overrides the spec's `servers`. */
  baseUrl: z.string().url().optional(),
  /** Which operations become tools (besides `x-mcp: false` on an operation, which always hides it). */
  operations: OpenApiFilterSchema.optional(),
  /** A few endpoints without a spec, by tool name. */
  endpoints: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/), OpenApiEndpointSchema).optional(),
  /** A header sent with a fresh key per call (the same on its retries): POST/PATCH become idempotent. */
  idempotencyKey: z.string().min(1).optional(),
  /** Bytes of a response body read at most; a larger body is a tool error. */
  maxResponseBytes: z.number().int().positive().optional(),
  /** Resolve `$ref`s to other files or URLs (off: they are a server-side request forgery vector). */
  externalRefs: z.boolean().optional(),
  /** Above this many operations, serve three meta-tools (search, describe, invoke) instead of one tool each. */
  compactThreshold: z.number().int().positive().optional(),
  /**
   * Serve each operation's JSON response schema as its tool's `outputSchema` (default true). Off for an API
   * whose answers do not follow its document: clients must refuse a result that breaks its outputSchema.
   */
  outputSchemas: z.boolean().optional(),
};

export type OpenApiAuth = z.output<typeof OpenApiAuthSchema>;
type OpenApiFilter = z.output<typeof OpenApiFilterSchema>;
export type OpenApiEndpoint = z.output<typeof OpenApiEndpointSchema>;

/** An `openapi` upstream as the adapter runs it. */
export interface OpenApiTransport {
  type: "openapi";
  /** Absolute file path or https URL; absent with `endpoints`. */
  spec: string | undefined;
  baseUrl: string | undefined;
  headers: Record<string, string>;
  auth: OpenApiAuth;
  operations: OpenApiFilter;
  endpoints: Record<string, OpenApiEndpoint>;
  idempotencyKey: string | undefined;
  maxResponseBytes: number;
  externalRefs: boolean;
  compactThreshold: number;
  outputSchemas: boolean;
}

const DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;
/** More tools than an agent can choose from well; GitHub's REST API (about 1200 operations) is above it. */
const DEFAULT_COMPACT_THRESHOLD = 500;

interface Entry {
  url?: string | undefined;
  command?: string | undefined;
  headers?: Record<string, string> | undefined;
  spec?: string | undefined;
  baseUrl?: string | undefined;
  auth?: OpenApiAuth | undefined;
  operations?: OpenApiFilter | undefined;
  endpoints?: Record<string, OpenApiEndpoint> | undefined;
  idempotencyKey?: string | undefined;
  maxResponseBytes?: number | undefined;
  externalRefs?: boolean | undefined;
  compactThreshold?: number | undefined;
  outputSchemas?: boolean | undefined;
}

/** Keys that make sense only on an `openapi` entry (an error elsewhere). */
export const OPENAPI_ONLY_KEYS = Object.keys(OpenApiServerFields) as (keyof typeof OpenApiServerFields)[];

/** `auth` of an openapi entry: its API credentials; `auth.oauth` (MCP authorization) is for MCP servers. */
function openapiAuth(
  auth: Entry["auth"],
  path: string,
  issues: { path: string; message: string }[],
): OpenApiAuth {
  if (!auth) return {};
  const { oauth, ...rest } = auth as OpenApiAuth & { oauth?: unknown };
  if (oauth !== undefined) {
    issues.push({
      path: `${path}.auth.oauth`,
      message: "an openapi server takes auth.oauth2 (client credentials)",
    });
  }
  return rest;
}

export function openapiTransport(
  entry: Entry,
  path: string,
  baseDir: string,
  issues: { path: string; message: string }[],
): OpenApiTransport | undefined {
  const endpoints = entry.endpoints ?? {};
  const hasEndpoints = Object.keys(endpoints).length > 0;
  if (!entry.spec && !hasEndpoints) {
    issues.push({ path: `${path}.spec`, message: "an openapi server needs a spec or endpoints" });
    return undefined;
  }
  if (entry.spec && hasEndpoints) {
    issues.push({ path: `${path}.endpoints`, message: "give either a spec or endpoints, not both" });
    return undefined;
  }
  if (entry.command || entry.url) {
    issues.push({
      path: `${path}.${entry.command ? "command" : "url"}`,
      message: "an openapi server takes spec and baseUrl, not command or url",
    });
    return undefined;
  }
  let spec: string | undefined;
  if (entry.spec) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry.spec)) {
      if (!entry.spec.startsWith("https://")) {
        issues.push({ path: `${path}.spec`, message: "a spec URL must use https" });
        return undefined;
      }
      spec = entry.spec;
    } else {
      spec = isAbsolute(entry.spec) ? entry.spec : resolve(baseDir, entry.spec);
    }
  }
  for (const [name, endpoint] of Object.entries(endpoints)) {
    if (!/^https?:\/\//i.test(endpoint.url) && !entry.baseUrl) {
      issues.push({
        path: `${path}.endpoints.${name}.url`,
        message: "a relative endpoint url needs baseUrl (or give an absolute http(s) URL)",
      });
    }
  }
  return {
    type: "openapi",
    spec,
    baseUrl: entry.baseUrl,
    headers: entry.headers ?? {},
    auth: openapiAuth(entry.auth, path, issues),
    operations: entry.operations ?? {},
    endpoints,
    idempotencyKey: entry.idempotencyKey,
    maxResponseBytes: entry.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    externalRefs: entry.externalRefs ?? false,
    compactThreshold: entry.compactThreshold ?? DEFAULT_COMPACT_THRESHOLD,
    outputSchemas: entry.outputSchemas ?? true,
  };
}
