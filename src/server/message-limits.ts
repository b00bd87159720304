/**
 * Structural limits of every message a downstream client sends, checked once at the edge for every
 * transport (HTTP, WebSocket, stdio) before the session sees it. Body size is bounded by the transports;
 * nesting depth and value count are not, and a deeply nested value makes serialization toward an upstream
 * overflow the stack. The check is iterative and reads each value once: no clone, no recursion. The same
 * wrapper refuses a malformed `initialize`, the one request whose params the SDK parses itself.
 */
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError, toWire } from "../errors.ts";
import { initializeProblem } from "./jsonrpc-message.ts";

export interface MessageLimits {
  /** Deepest nesting of objects and arrays in one message; the JSON-RPC envelope is level 1. */
  maxJsonDepth: number;
  /** Values (objects, arrays, strings, numbers, …) in one message. */
  maxJsonValues: number;
}

/** The first limit `value` exceeds, as a sentence naming the config key; undefined when within limits. */
export function exceededLimit(value: unknown, limits: MessageLimits): string | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  // Containers still to visit, with their depth; primitives are only counted.
  const stack: unknown[] = [value];
  const depths: number[] = [1];
  let count = 1;
  while (stack.length > 0) {
    const current = stack.pop() as Record<string, unknown> | unknown[];
    const depth = depths.pop() as number;
    if (depth > limits.maxJsonDepth) {
      return `the message nests deeper than ${limits.maxJsonDepth} levels (gateway.maxJsonDepth)`;
    }
    if (Array.isArray(current)) {
      count += current.length;
      for (let i = 0; i < current.length; i++) {
        const child = current[i];
        if (typeof child === "object" && child !== null) {
          stack.push(child);
          depths.push(depth + 1);
        }
      }
    } else {
      // JSON.parse output: own enumerable keys only, so for-in needs no hasOwn check and allocates nothing.
      for (const key in current) {
        count++;
        const child = current[key];
        if (typeof child === "object" && child !== null) {
          stack.push(child);
          depths.push(depth + 1);
        }
      }
    }
    if (count > limits.maxJsonValues) {
      return `the message holds more than ${limits.maxJsonValues} values (gateway.maxJsonValues)`;
    }
  }
  return undefined;
}

/** Why a message is refused before dispatch: over a limit (-32600), or an `initialize` that is malformed (-32602). */
function refusalOf(message: JSONRPCMessage, limits: MessageLimits): GatewayError | undefined {
  const exceeded = exceededLimit(message, limits);
  if (exceeded !== undefined) {
    return new GatewayError(ErrorCode.InvalidRequest, `${exceeded}; it was not forwarded`, {
      policy: "messageLimits",
    });
  }
  const problem = initializeProblem(message);
  return problem === undefined ? undefined : new GatewayError(ErrorCode.InvalidParams, problem);
}

/**
 * Checks each incoming message before `onmessage` (set by the SDK's Protocol.connect, just before start()).
 * A refused request is answered with its error and never dispatched; a response (to a server→client request)
 * over a limit is delivered as an error response in its place; a notification is dropped.
 */
export function enforceMessageLimits(
  transport: Transport,
  limits: MessageLimits,
  onRejected: (message: JSONRPCMessage, error: GatewayError) => void,
): Transport {
  const start = transport.start.bind(transport);
  transport.start = () => {
    const deliver = transport.onmessage;
    if (deliver) {
      transport.onmessage = (message, extra) => {
        const error = refusalOf(message, limits);
        if (error === undefined) return deliver(message, extra);
        onRejected(message, error);
        const id = (message as { id?: string | number }).id;
        if (id === undefined) return;
        const reply = { jsonrpc: "2.0" as const, id, error: toWire(error) };
        if ("method" in message) void transport.send(reply).catch(() => {});
        else deliver(reply, extra);
      };
    }
    return start();
  };
  return transport;
}
