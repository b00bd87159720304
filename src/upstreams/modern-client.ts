/**
 * A 2026-07-28 connection on the SDK's v2 client. The SDK does the era's wire work: the `server/discover`
 * probe, the per-request `_meta` envelope (protocol version, client info and capabilities), the
 * `MCP-Protocol-Version` / `Mcp-Method` / `Mcp-Name` headers (`Mcp-Name` from the upstream's own tool name,
 * which the router puts in `params.name`), `Mcp-Param-*` headers from a tool's `x-mcp-header` declarations,
 * `resultType`, and input-required rounds (fulfilled through the request handlers below, then retried).
 * This module maps config to its transports, its events to `ClientEvents`, and opens a
 * `subscriptions/listen` stream for list changes.
 */
import {
  Client,
  LOG_LEVEL_META_KEY,
  type McpSubscription,
  SdkError,
  SdkErrorCode,
  SdkHttpError,
  StreamableHTTPClientTransport,
  type Transport,
} from "@modelcontextprotocol/client";
import {
  auth,
  extractWWWAuthenticateParams,
  UnauthorizedError,
} from "@modelcontextprotocol/sdk/client/auth.js";
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import type { TransportConfig } from "../config/load.ts";
import {
  CLIENT_CAPABILITIES,
  type ClientEvents,
  InputRoundFailed,
  type ProtocolSetting,
  type UpstreamClient,
} from "./client.ts";
import { upstreamFetch } from "./http-client.ts";
import { answerError } from "./legacy-client.ts";
import type { TransportHooks } from "./transports.ts";

/** The OAuth client of a protected upstream (upstreams/auth/oauth-provider.ts), as transports.ts takes it. */
type OAuthClient = NonNullable<TransportHooks["authProvider"]>;

const MODERN_VERSION = "2026-07-28";
const AnyResult = z.looseObject({});

/** A transport config the 2026 era can run on (it has no SSE or WebSocket transport). */
export function modernCapable(config: TransportConfig): boolean {
  return config.type === "http" || config.type === "stdio";
}

/**
 * Connect in the 2026-07-28 era. Under `auto`, resolves undefined when the server is not a 2026 server
 * (the probe found no modern evidence): the caller connects it with `initialize` instead. Failures that say
 * nothing about the era (refused connection, 401/403, 5xx, a timeout on HTTP) reject.
 */
export async function connectModern(
  transportConfig: TransportConfig,
  setting: ProtocolSetting,
  events: ClientEvents,
  clientInfo: { name: string; version: string },
  timeout: number,
  /** A stdio transport whose process already answered the discover probe (stdio-probe.ts), and its answer. */
  probed?: { transport: unknown; discover: Record<string, unknown> },
  oauth?: OAuthClient,
): Promise<UpstreamClient | undefined> {
  const client = new Client(clientInfo, {
    capabilities: CLIENT_CAPABILITIES,
    // Modern only: a 2025 server ends the probe with EraNegotiationFailed instead of an `initialize` on the
    // v2 client; the v1 client (and its fast HTTP path) serves that era.
    supportedProtocolVersions: [MODERN_VERSION],
    versionNegotiation: {
      mode: setting === "auto" ? "auto" : { pin: MODERN_VERSION },
      probe: { timeoutMs: timeout },
    },
  });
  for (const method of ["elicitation/create", "sampling/createMessage", "roots/list"] as const) {
    client.setRequestHandler(method, async (request, ctx) => {
      try {
        return (await events.onServerRequest(
          { method, ...(request.params && { params: request.params as Record<string, unknown> }) },
          ctx.mcpReq.signal,
        )) as never;
      } catch (err) {
        throw new InputRoundFailed(method, answerError(err));
      }
    });
  }
  client.setNotificationHandler("notifications/tools/list_changed", () => events.onListChanged("tools"));
  client.setNotificationHandler("notifications/prompts/list_changed", () => events.onListChanged("prompts"));
  client.setNotificationHandler("notifications/resources/list_changed", () =>
    events.onListChanged("resources"),
  );
  client.setNotificationHandler("notifications/resources/updated", (n) =>
    events.onNotification({ method: n.method, params: n.params as Record<string, unknown> }),
  );
  client.setNotificationHandler("notifications/message", (n) =>
    events.onNotification({ method: n.method, params: n.params as Record<string, unknown> }),
  );

  let connected = false;
  client.onclose = () => {
    if (connected) events.onClose();
  };
  client.onerror = (err) => {
    if (connected && err instanceof SdkError && err.code === SdkErrorCode.ConnectionClosed)
      events.onError(err);
  };
  try {
    if (probed) {
      await client.connect(probed.transport as Transport, {
        timeout,
        prior: { kind: "modern", discover: probed.discover as never },
      });
    } else {
      await client.connect(createModernTransport(transportConfig, oauth), { timeout });
    }
  } catch (err) {
    await client.close().catch(() => {});
    // A probe that never reached the server fails as the network failure it was (ECONNREFUSED, …).
    if (unreached(err)) throw err.cause;
    if (setting === "auto" && isLegacyVerdict(err)) return undefined;
    throw err;
  }
  connected = true;
  const listener = new Listener(client, timeout, () => {
    if (connected) events.onClose();
  });
  // A server that offers list changes but refuses the stream still serves calls; its lists refresh on reconnect.
  await listener.update().catch(() => {});
  /** From a 2025 client's `logging/setLevel`: the 2026 era asks for log messages per request. */
  let logLevel: string | undefined;
  const pending = new Set<Promise<unknown>>();
  const track = <T>(promise: Promise<T>): Promise<T> => {
    pending.add(promise);
    void promise.then(
      () => pending.delete(promise),
      () => pending.delete(promise),
    );
    return promise;
  };
  return {
    era: MODERN_VERSION,
    protocolVersion: client.getNegotiatedProtocolVersion(),
    serverInfo: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions(),
    async request(method, params, options) {
      // 2025 methods the 2026 era replaced, as a 2025 client (through the router) still sends them.
      if (method === "logging/setLevel") {
        logLevel = typeof params?.level === "string" ? params.level : undefined;
        return {};
      }
      if (method === "resources/subscribe" || method === "resources/unsubscribe") {
        const uri = params?.uri;
        if (typeof uri === "string") await listener.update(uri, method === "resources/subscribe");
        return {};
      }
      if (logLevel) {
        const meta = { [LOG_LEVEL_META_KEY]: logLevel, ...(params?._meta as object | undefined) };
        params = { ...params, _meta: meta };
      }
      const requestOptions = {
        ...(options.signal && { signal: options.signal }),
        ...(options.onprogress && { onprogress: options.onprogress }),
        timeout: options.timeout,
      };
      if (method === "tools/call" && options.tool && params) {
        // callTool mirrors `x-mcp-header` arguments as `Mcp-Param-*` headers from the definition given; the
        // output schema is left out so the result passes through unvalidated, as on every other path.
        const { outputSchema: _, ...toolDefinition } = options.tool;
        return track(
          client.callTool(params as { name: string }, {
            ...requestOptions,
            toolDefinition: toolDefinition as Tool as never,
          }) as Promise<Record<string, unknown>>,
        );
      }
      return track(client.request({ method, ...(params && { params }) }, AnyResult, requestOptions));
    },
    notify: (method, params) => client.notification({ method, ...(params && { params }) }),
    // The SDK's list drops tools whose `x-mcp-header` declarations are invalid (SEP-2243: a client MUST
    // exclude them) and caches the rest for callTool's header mirroring.
    listTools: async (timeout) =>
      (await client.listTools(undefined, { timeout, cacheMode: "refresh" })).tools,
    pending: () => pending.size,
    async close() {
      connected = false;
      await listener.close();
      await client.close();
    },
  };
}

/** HTTP only: a stdio upstream reaches this module already started by the probe. */
function createModernTransport(config: TransportConfig, oauth: OAuthClient | undefined): Transport {
  switch (config.type) {
    case "http":
      return new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
        fetch: oauth ? oauth.observeFetch(upstreamFetch) : upstreamFetch,
        ...(oauth && { authProvider: bearerFrom(oauth, config.url) }),
      });
    default:
      throw new Error(`protocol ${MODERN_VERSION} has no ${config.type} transport; use http or stdio`);
  }
}

/**
 * The v2 transport's bearer seam over toolgate's OAuth client: the stored (early-refreshed) access token,
 * and on a 401 (after fresh discovery) what the v1 transport does (a refresh or client-credentials grant through the SDK's
 * `auth()`); what only a person can fix ends as UnauthorizedError, which the upstream shows as "needs
 * authorization". A 403 insufficient_scope surfaces as the SDK's InsufficientScopeError (observeFetch has
 * noted the scope for the next login).
 */
function bearerFrom(oauth: OAuthClient, serverUrl: string) {
  return {
    token: async () => (await oauth.tokens())?.access_token,
    onUnauthorized: async (ctx: { response: Response }) => {
      const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(ctx.response);
      // The resource may have moved to another authorization server (SEP-2352): discover afresh, so the
      // SDK sees the new issuer and re-registers instead of reusing the old one's client and tokens.
      await oauth.invalidateCredentials?.("discovery");
      const result = await auth(oauth, {
        serverUrl,
        ...(resourceMetadataUrl && { resourceMetadataUrl }),
        ...(scope && { scope }),
      });
      if (result !== "AUTHORIZED") throw new UnauthorizedError("the upstream needs authorization");
    },
  };
}

/** The probe positively found a server without the 2026 era (a 5xx or an auth wall says nothing). */
function isLegacyVerdict(err: unknown): boolean {
  if (!(err instanceof SdkError) || err.code !== SdkErrorCode.EraNegotiationFailed) return false;
  return !(err instanceof SdkHttpError && err.status >= 500);
}

/**
 * The probe never reached the server (refused, reset): that says nothing about its era, so this attempt
 * fails and the next one probes again. Falling back to `initialize` would let a server that came up in
 * between pin the connection to 2025-11-25 although it speaks 2026-07-28.
 */
function unreached(err: unknown): err is SdkError & { cause: TypeError } {
  return (
    err instanceof SdkError &&
    err.code === SdkErrorCode.EraNegotiationFailed &&
    (err as { cause?: unknown }).cause instanceof TypeError
  );
}

/**
 * The one `subscriptions/listen` stream of a connection: list changes the server offers, plus the resources a
 * downstream client subscribed to. A changed filter replaces the stream. A stream the server drops without
 * its closing result means the upstream went away.
 */
class Listener {
  readonly #client: Client;
  readonly #timeout: number;
  readonly #onLost: () => void;
  readonly #uris = new Set<string>();
  #subscription: McpSubscription | undefined;

  constructor(client: Client, timeout: number, onLost: () => void) {
    this.#client = client;
    this.#timeout = timeout;
    this.#onLost = onLost;
  }

  async update(uri?: string, subscribed?: boolean): Promise<void> {
    if (uri !== undefined) {
      if (subscribed === this.#uris.has(uri)) return;
      if (subscribed) this.#uris.add(uri);
      else this.#uris.delete(uri);
    }
    const caps = this.#client.getServerCapabilities() ?? {};
    const filter = {
      ...(caps.tools?.listChanged && { toolsListChanged: true }),
      ...(caps.prompts?.listChanged && { promptsListChanged: true }),
      ...(caps.resources?.listChanged && { resourcesListChanged: true }),
      ...(this.#uris.size > 0 && { resourceSubscriptions: [...this.#uris] }),
    };
    const previous = this.#subscription;
    this.#subscription = undefined;
    if (Object.keys(filter).length > 0) {
      const subscription = await this.#client.listen(filter, { timeout: this.#timeout });
      this.#subscription = subscription;
      void subscription.closed.then((how) => {
        if (how === "remote" && this.#subscription === subscription) this.#onLost();
      });
    }
    await previous?.close().catch(() => {});
  }

  async close(): Promise<void> {
    const subscription = this.#subscription;
    this.#subscription = undefined;
    await subscription?.close().catch(() => {});
  }
}
