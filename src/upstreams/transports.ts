/**
 * One client transport per configured upstream transport, all toolgate's own: stdio (stdio-transport.ts, its
 * child's stderr as log lines), Streamable HTTP (http-transport.ts) and legacy HTTP+SSE (sse-transport.ts),
 * both on its own HTTP/1.1 client, and WebSocket (websocket-transport.ts, on ws); this file maps config to
 * their options.
 */
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { McpTransportConfig } from "../config/load.ts";
import { assertNever } from "../errors.ts";
import { upstreamFetch } from "./http-client.ts";
import { HttpClientTransport } from "./http-transport.ts";
import { closeWithProcessTree } from "./process-tree.ts";
import { UnsendableMessageError } from "./request-error.ts";
import { deliverResponsesLast } from "./sdk-compat.ts";
import { SseClientTransport } from "./sse-transport.ts";
import { StdioTransport } from "./stdio-transport.ts";
import { WebSocketTransport } from "./websocket-transport.ts";

export interface TransportHooks {
  /** One line of a stdio child's stderr (without the newline). */
  onStderr(line: string): void;
  /** How a stdio child ended: its exit code, or the signal that killed it. */
  onExit?(code: number | null, signal: NodeJS.Signals | null): void;
  /** A line of a stdio child's stdout that is not JSON-RPC (skipped; servers must log to stderr). */
  onNoise?(line: string): void;
  /** OAuth client of a protected http/sse upstream: the transport adds its token and runs its flow on 401. */
  authProvider?: (OAuthClientProvider & { observeFetch(fetch: FetchLike): FetchLike }) | undefined;
}

/**
 * What a transport needs before the SDK's v2 client uses it (the 2025 connection, jsonrpc-connection.ts,
 * needs neither: it handles messages in order and tells unsendable messages apart itself).
 */
export function forClient(transport: Transport): Transport {
  return markUnsendable(deliverResponsesLast(transport));
}

/**
 * Every transport serializes inside `send`, so a message that cannot be serialized (a stack overflow on
 * deep nesting, a string too long, a cycle) rejects there like a dead socket would. Tell them apart here, on
 * the failure path only: a RangeError never comes from a socket, and a message that does not stringify now
 * never got written. Such a failure belongs to the message, not to the connection.
 */
export function sendFailure(err: unknown, message: unknown): unknown {
  if (err instanceof UnsendableMessageError) return err;
  return err instanceof RangeError || !serializable(message) ? new UnsendableMessageError(err) : err;
}

function markUnsendable(transport: Transport): Transport {
  const send = transport.send.bind(transport);
  transport.send = (message, options) =>
    send(message, options).catch((err: unknown) => {
      throw sendFailure(err, message);
    });
  return transport;
}

function serializable(message: unknown): boolean {
  try {
    JSON.stringify(message);
    return true;
  } catch {
    return false;
  }
}

/** The transport itself; `forClient` adds what the SDK's v2 client needs. */
export function createSdkTransport(config: McpTransportConfig, hooks: TransportHooks): Transport {
  switch (config.type) {
    case "stdio": {
      const transport = new StdioTransport({
        command: config.command,
        args: config.args,
        env: { ...getDefaultEnvironment(), ...config.env },
        cwd: config.cwd,
        onStderr: hooks.onStderr,
        onExit: hooks.onExit,
        onNoise: hooks.onNoise,
      });
      closeWithProcessTree(transport);
      return transport;
    }
    case "http":
      return new HttpClientTransport(new URL(config.url), {
        headers: config.headers,
        authProvider: hooks.authProvider,
        fetch: upstreamFetch,
      });
    case "sse":
      return new SseClientTransport(new URL(config.url), {
        headers: config.headers,
        authProvider: hooks.authProvider,
        fetch: upstreamFetch,
      });
    case "ws":
      return new WebSocketTransport(new URL(config.url), config.headers);
    default:
      return assertNever(config);
  }
}
