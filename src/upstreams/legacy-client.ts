/**
 * A 2025-11-25 connection: the `initialize` handshake, then requests both ways and notifications on one
 * session, on toolgate's own JSON-RPC engine (jsonrpc-connection.ts) over any SDK-shaped transport (transports.ts).
 */
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  InitializeResultSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
import { toWire } from "../errors.ts";
import {
  CLIENT_CAPABILITIES,
  type ClientEvents,
  type ListKind,
  type ServerMessage,
  type UpstreamClient,
} from "./client.ts";
import { JsonRpcConnection } from "./jsonrpc-connection.ts";

const LIST_CHANGED: Record<string, ListKind> = {
  "notifications/tools/list_changed": "tools",
  "notifications/resources/list_changed": "resources",
  "notifications/prompts/list_changed": "prompts",
};

/** Connect on `transport` (from createSdkTransport, or a stdio transport the era probe already started). */
export async function connectLegacy(
  transport: Transport,
  events: ClientEvents,
  clientInfo: { name: string; version: string },
  timeout: number,
): Promise<UpstreamClient> {
  let connected = false;
  const connection = new JsonRpcConnection(transport, {
    async onRequest(method, params, signal) {
      try {
        return await events.onServerRequest(pick(method, params), signal);
      } catch (err) {
        throw answerError(err);
      }
    },
    onNotification(method, params) {
      const kind = Object.hasOwn(LIST_CHANGED, method) ? LIST_CHANGED[method] : undefined;
      if (kind) events.onListChanged(kind);
      else events.onNotification(pick(method, params));
    },
    // While connecting, the failure reaches the caller with its real cause, not as a bare "connection closed".
    onClose() {
      if (connected) events.onClose();
    },
    onError(err) {
      // A request whose SSE response stream broke (and could not be resumed) gets no answer, and a legacy SSE
      // stream's requests die with it: the owner reconnects and fails them with ConnectionLost.
      if (connected && isBrokenStream(err)) events.onError(err);
    },
  });
  let init: ReturnType<typeof InitializeResultSchema.parse>;
  try {
    await openWithin(connection, timeout);
    const result = await connection.request(
      "initialize",
      { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: CLIENT_CAPABILITIES, clientInfo },
      { timeout },
    );
    init = InitializeResultSchema.parse(result);
    if (!SUPPORTED_PROTOCOL_VERSIONS.includes(init.protocolVersion))
      throw new Error(`Server's protocol version is not supported: ${init.protocolVersion}`);
    // HTTP transports send the negotiated version as a header on every later request.
    transport.setProtocolVersion?.(init.protocolVersion);
    await connection.notify("notifications/initialized");
  } catch (err) {
    // A failed handshake must not leave a stdio child or a session behind.
    await connection.close().catch(() => {});
    throw err;
  }
  connected = true;

  return {
    era: "2025-11-25",
    protocolVersion: init.protocolVersion,
    serverInfo: init.serverInfo,
    capabilities: init.capabilities,
    instructions: init.instructions,
    request: (method, params, options) => connection.request(method, params, options),
    notify: (method, params) => connection.notify(method, params),
    pending: () => connection.pending(),
    close: (reason) => connection.close(reason),
  };
}

/**
 * The transport did not open within the connect timeout: a legacy SSE stream without its `endpoint` event, a
 * WebSocket upgrade never answered. Without the bound the upstream stayed "connecting", with no error, for ever.
 */
export class OpenTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`the connection did not open within ${timeoutMs} ms`);
    this.name = "OpenTimeoutError";
  }
}

function openWithin(connection: JsonRpcConnection, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new OpenTimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([connection.start(), late]).finally(() => clearTimeout(timer));
}

/**
 * A cut event stream that could not be resumed: a legacy SSE stream's end or break (its session lived on it),
 * a broken Streamable HTTP stream, or resumption that gave up. A resumable Streamable HTTP stream cut without
 * an answer is resumed (GET + Last-Event-ID) by http-transport.ts before this.
 */
function isBrokenStream(err: Error): boolean {
  return (
    err instanceof SseError ||
    err.message.startsWith("SSE stream disconnected") ||
    err.message.startsWith("Maximum reconnection attempts")
  );
}

/** The SDK answers with `code`, `message` and `data` of what is thrown (McpError would prefix its message). */
function rpcError(code: number, message: string, data?: unknown): Error {
  return Object.assign(new Error(message), { code, data });
}

/** A downstream client's JSON-RPC error passes through as is; any other failure in its wire form. */
export function answerError(err: unknown): Error {
  if (err instanceof McpError)
    return rpcError(err.code, err.message.replace(/^MCP error -?\d+: /, ""), err.data);
  const wire = toWire(err);
  return rpcError(wire.code, wire.message, wire.data);
}

function pick(method: string, params: Record<string, unknown> | undefined): ServerMessage {
  return params === undefined ? { method } : { method, params };
}
