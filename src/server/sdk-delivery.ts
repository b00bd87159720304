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
}

/**
 * Wrap before `protocol.connect(transport)` and before any other `start` wrapper that must see messages
 * first (this one has to replace the SDK's handler, which exists only once connect has set it).
 */
export function deliverDirectly<T extends Transport>(
  transport: T,
  protocol: Protocol<never, never, never>,
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
  const start = transport.start.bind(transport);
  transport.start = () => {
    if (transport.onmessage) transport.onmessage = (message, extra) => route(sdk, message, extra);
    return start();
  };
  return transport;
}

function route(sdk: ProtocolRouting, message: JSONRPCMessage, extra?: MessageExtraInfo): void {
  if (!("method" in message)) sdk._onresponse(message);
  else if ("id" in message) sdk._onrequest(message, extra);
  else sdk._onnotification(message);
}
