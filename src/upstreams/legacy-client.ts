/**
 * A 2025-11-25 connection on the v1 SDK: `initialize` handshake, a session, server→client requests and
 * unsolicited notifications on the connection. Over HTTP it runs on the lean keep-alive `fetch` of
 * transports.ts.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import {
  McpError,
  PromptListChangedNotificationSchema,
  ResourceListChangedNotificationSchema,
  type Result,
  ResultSchema,
  ToolListChangedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { toWire } from "../errors.ts";
import { CLIENT_CAPABILITIES, type ClientEvents, type ServerMessage, type UpstreamClient } from "./client.ts";
import { forgetRequest, nextRequestId, pendingRequestCount } from "./sdk-compat.ts";

/** Connect on `transport` (from createTransport, or a stdio transport the era probe already started). */
export async function connectLegacy(
  transport: Transport,
  events: ClientEvents,
  clientInfo: { name: string; version: string },
  timeout: number,
): Promise<UpstreamClient> {
  const client = new Client(clientInfo, { capabilities: CLIENT_CAPABILITIES });
  client.fallbackRequestHandler = async (request, extra) => {
    try {
      return (await events.onServerRequest(pick(request), extra.signal)) as Result;
    } catch (err) {
      throw answerError(err);
    }
  };
  client.fallbackNotificationHandler = async (notification) => events.onNotification(pick(notification));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => events.onListChanged("tools"));
  client.setNotificationHandler(ResourceListChangedNotificationSchema, () =>
    events.onListChanged("resources"),
  );
  client.setNotificationHandler(PromptListChangedNotificationSchema, () => events.onListChanged("prompts"));

  let protocolVersion: string | undefined;
  // Protocol.connect keeps a pre-set onmessage and calls it first: the one place the negotiated
  // protocol version is visible for every transport.
  transport.onmessage = (message) => {
    protocolVersion ??= negotiatedVersion(message);
  };
  let connected = false;
  // While connecting, the failure reaches the caller with its real cause; the SDK's own close on a
  // failed handshake would otherwise report a bare "connection closed" first.
  client.onclose = () => {
    if (connected) events.onClose();
  };
  client.onerror = (err) => {
    // The SDK leaves a request whose SSE response stream broke (and could not be resumed) waiting forever,
    // and a legacy SSE stream's requests die with it: the owner reconnects and fails them with ConnectionLost.
    if (connected && isBrokenStream(err)) events.onError(err);
  };
  try {
    await client.connect(transport, { timeout });
  } catch (err) {
    // A failed handshake must not leave a stdio child or a session behind.
    await client.close().catch(() => {});
    throw err;
  }
  connected = true;

  return {
    era: "2025-11-25",
    protocolVersion,
    serverInfo: client.getServerVersion(),
    capabilities: client.getServerCapabilities(),
    instructions: client.getInstructions(),
    async request(method, params, options) {
      const id = nextRequestId(client);
      try {
        return await client.request({ method, ...(params && { params }) }, ResultSchema, {
          ...(options.signal && { signal: options.signal }),
          ...(options.onprogress && { onprogress: options.onprogress }),
          timeout: options.timeout,
        });
      } catch (err) {
        forgetRequest(client, id);
        throw err;
      }
    },
    notify: (method, params) => client.notification({ method, ...(params && { params }) }),
    pending: () => pendingRequestCount(client),
    close: () => client.close(),
  };
}

/**
 * A cut event stream the SDK could not resume: an SSE error, a broken stream, or resumption that gave up.
 * A resumable stream cut without an answer is resumed by the SDK (GET + Last-Event-ID) before this.
 */
function isBrokenStream(err: Error): boolean {
  return (
    err instanceof SseError ||
    err.message.startsWith("SSE stream disconnected") ||
    err.message.startsWith("Maximum reconnection attempts")
  );
}

/** The protocolVersion of an initialize result, if this message is one. */
function negotiatedVersion(message: unknown): string | undefined {
  const result = (message as { result?: { protocolVersion?: unknown; serverInfo?: unknown } }).result;
  return result?.serverInfo && typeof result.protocolVersion === "string"
    ? result.protocolVersion
    : undefined;
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

export function pick(message: { method: string; params?: Record<string, unknown> }): ServerMessage {
  return message.params === undefined
    ? { method: message.method }
    : { method: message.method, params: message.params };
}
