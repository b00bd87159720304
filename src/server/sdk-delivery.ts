/**
 * Hands each incoming message straight to the SDK Protocol's request, response or notification handler.
 * The `onmessage` that Protocol.connect installs tells them apart with up to four zod parses per message
 * (7–9 µs for a request, mostly spent building the errors of the parses that fail). Every downstream
 * transport has already validated the message against JSONRPCMessageSchema (its four strict shapes), so
 * its keys say which it is.
 */
import type { Protocol } from "@modelcontextprotocol/sdk/shared/protocol.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type {
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  JSONRPCResponse,
  MessageExtraInfo,
} from "@modelcontextprotocol/sdk/types.js";

/** The SDK 1.x Protocol methods its own `onmessage` calls (not in its public types). */
interface ProtocolRouting {
  _onrequest(request: JSONRPCRequest, extra?: MessageExtraInfo): void;
  _onresponse(response: JSONRPCResponse): void;
  _onnotification(notification: JSONRPCNotification): void;
  /** Methods with a handler of their own (initialize, ping): everything else goes to the fallback handler. */
  _requestHandlers: Map<string, unknown>;
  /** What `notifications/cancelled` and `close()` abort, by request id. */
  _requestHandlerAbortControllers: Map<JSONRPCRequest["id"], AbortController>;
}

/**
 * Serves a request in place of the SDK's `_onrequest` (which builds an AbortController, an `extra` object with
 * closures and a promise chain per request). Returns false to leave the request to the SDK.
 */
export type DirectRequestHandler = (
  request: JSONRPCRequest,
  extra: MessageExtraInfo | undefined,
  controllers: Map<JSONRPCRequest["id"], AbortController>,
) => boolean;

/**
 * Wrap before `protocol.connect(transport)` and before any other `start` wrapper that must see messages
 * first (this one has to replace the SDK's handler, which exists only once connect has set it).
 * `direct` gets the requests no handler of the SDK's own is registered for (those go to its fallback).
 */
export function deliverDirectly<T extends Transport>(
  transport: T,
  protocol: Protocol<never, never, never>,
  direct?: DirectRequestHandler,
): T {
  const routing = protocol as unknown as Partial<ProtocolRouting>;
  if (
    typeof routing._onrequest !== "function" ||
    typeof routing._onresponse !== "function" ||
    typeof routing._onnotification !== "function"
  ) {
    return transport; // another SDK version: its own routing stays
  }
  const sdk = routing as ProtocolRouting;
  const serve =
    direct && sdk._requestHandlers instanceof Map && sdk._requestHandlerAbortControllers instanceof Map
      ? direct
      : undefined;
  const start = transport.start.bind(transport);
  transport.start = () => {
    if (transport.onmessage) transport.onmessage = (message, extra) => route(sdk, message, extra, serve);
    return start();
  };
  return transport;
}

function route(
  sdk: ProtocolRouting,
  message: JSONRPCMessage,
  extra: MessageExtraInfo | undefined,
  direct: DirectRequestHandler | undefined,
): void {
  if (!("method" in message)) sdk._onresponse(message);
  else if (!("id" in message)) sdk._onnotification(message);
  else if (
    direct === undefined ||
    sdk._requestHandlers.has(message.method) ||
    !direct(message, extra, sdk._requestHandlerAbortControllers)
  ) {
    sdk._onrequest(message, extra);
  }
}
