/**
 * The two protocol generations toolgate serves, and the few facts about them every face needs: which
 * versions exist, the `_meta` keys of the modern (2026-07-28) revision, its error codes, and how to tell a
 * modern request from a legacy one. A leaf: imports nothing.
 */

/** The stateless revision: no sessions, version and capabilities in every request's `_meta`. */
export const MODERN_VERSION = "2026-07-28";
/** Initialize-based revisions (SDK v1 negotiates these). */
const LEGACY_VERSIONS: readonly string[] = [
  "2025-11-25",
  "2025-06-18",
  "2025-03-26",
  "2024-11-05",
  "2024-10-07",
];
/** What `server/discover` and UnsupportedProtocolVersion errors list, newest first. */
export const SUPPORTED_VERSIONS: readonly string[] = [MODERN_VERSION, ...LEGACY_VERSIONS];

export const META = {
  protocolVersion: "io.modelcontextprotocol/protocolVersion",
  clientCapabilities: "io.modelcontextprotocol/clientCapabilities",
  clientInfo: "io.modelcontextprotocol/clientInfo",
  serverInfo: "io.modelcontextprotocol/serverInfo",
  logLevel: "io.modelcontextprotocol/logLevel",
  subscriptionId: "io.modelcontextprotocol/subscriptionId",
} as const;

/** JSON-RPC codes the 2026-07-28 revision defines (from its reserved -32020..-32099 range). */
export const ModernCode = {
  HeaderMismatch: -32020,
  MissingRequiredClientCapability: -32021,
  UnsupportedProtocolVersion: -32022,
} as const;

/** Methods the 2026-07-28 revision removed; a modern request for one gets 404 / -32601. */
export const REMOVED_METHODS: ReadonlySet<string> = new Set([
  "initialize",
  "ping",
  "logging/setLevel",
  "resources/subscribe",
  "resources/unsubscribe",
  "notifications/initialized",
  "notifications/roots/list_changed",
]);

/** Requests whose result is cacheable (`ttlMs` + `cacheScope`). */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set([
  "server/discover",
  "tools/list",
  "prompts/list",
  "resources/list",
  "resources/templates/list",
  "resources/read",
]);

/** Requests that may be answered with an InputRequiredResult (multi round-trip). */
export const INPUT_METHODS: ReadonlySet<string> = new Set(["tools/call", "prompts/get", "resources/read"]);

/**
 * An error of the modern revision, answered with its own HTTP status (400 for header, version and
 * capability errors, 404 for an unknown method) and JSON-RPC code.
 */
export class ModernError extends Error {
  readonly code: number;
  readonly status: number;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: number, message: string, status = 400, data?: Record<string, unknown>) {
    super(message);
    this.code = code;
    this.status = status;
    this.data = data;
  }
}

/** The protocol version a request's `_meta` declares, if any. */
export function declaredVersion(params: unknown): string | undefined {
  const meta = (params as { _meta?: Record<string, unknown> } | undefined)?._meta;
  const version = meta?.[META.protocolVersion];
  return typeof version === "string" ? version : undefined;
}

/**
 * Which era a session-less HTTP request belongs to. Legacy: `initialize` (unless the headers say modern),
 * or a legacy version header with no modern `_meta`. Everything else is modern and is validated as such,
 * so a modern client with a bad or missing header gets a modern error rather than a legacy one.
 */
export function eraOf(
  method: string,
  params: unknown,
  versionHeader: string | undefined,
): "legacy" | "modern" {
  if (declaredVersion(params) !== undefined) return "modern";
  if (versionHeader === MODERN_VERSION) return "modern";
  if (method === "initialize") return "legacy";
  return versionHeader !== undefined && LEGACY_VERSIONS.includes(versionHeader) ? "legacy" : "modern";
}
