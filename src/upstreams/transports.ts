/**
 * One client transport per configured upstream transport. stdio, SSE and WebSocket are the SDK's own;
 * Streamable HTTP is toolgate's lean transport on node:http (http-transport.ts). This file maps config to
 * their options and turns a stdio child's stderr into log lines.
 */
import type { Stream } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import type { OAuthClientProvider } from "@modelcontextprotocol/sdk/client/auth.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { McpTransportConfig } from "../config/load.ts";
import { assertNever } from "../errors.ts";
import { upstreamFetch } from "./http-client.ts";
import { HttpClientTransport } from "./http-transport.ts";
import { closeWithProcessTree } from "./process-tree.ts";
import { UnsendableMessageError } from "./request-error.ts";
import { deliverResponsesLast } from "./sdk-compat.ts";

export interface TransportHooks {
  /** One line of a stdio child's stderr (without the newline). */
  onStderr(line: string): void;
  /** A configuration the transport cannot honour (e.g. headers on WebSocket). */
  onWarning?(message: string): void;
  /** OAuth client of a protected http/sse upstream: the SDK adds its token and handles 401/403. */
  authProvider?: (OAuthClientProvider & { observeFetch(fetch: FetchLike): FetchLike }) | undefined;
}

/** Longest stderr line kept; a child writing megabytes without a newline must not grow memory. */
const MAX_STDERR_LINE = 8 * 1024;

export function createTransport(config: McpTransportConfig, hooks: TransportHooks): Transport {
  return forClient(createSdkTransport(config, hooks));
}

/** What every SDK client transport needs before a client uses it (also one made for the era probe). */
export function forClient(transport: Transport): Transport {
  return markUnsendable(deliverResponsesLast(transport));
}

/**
 * Every SDK transport serializes inside `send`, so a message that cannot be serialized (a stack overflow on
 * deep nesting, a string too long, a cycle) rejects there like a dead socket would. Tell them apart here, on
 * the failure path only: a RangeError never comes from a socket, and a message that does not stringify now
 * never got written. Such a failure belongs to the message, not to the connection.
 */
function markUnsendable(transport: Transport): Transport {
  const send = transport.send.bind(transport);
  transport.send = (message, options) =>
    send(message, options).catch((err: unknown) => {
      throw err instanceof RangeError || !serializable(message) ? new UnsendableMessageError(err) : err;
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

/** The SDK transport itself; `createTransport` adds what the v1 client needs (sdk-compat.ts). */
export function createSdkTransport(config: McpTransportConfig, hooks: TransportHooks): Transport {
  switch (config.type) {
    case "stdio": {
      const transport = new StdioClientTransport({
        command: config.command,
        args: config.args,
        env: { ...getDefaultEnvironment(), ...config.env },
        cwd: config.cwd,
        stderr: "pipe",
      });
      // The SDK hands out the stderr stream before start(), so no early output is lost.
      const stderr = transport.stderr;
      if (stderr) pipeLines(stderr, hooks.onStderr);
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
      return new SSEClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
        ...(hooks.authProvider && { authProvider: hooks.authProvider }),
      });
    case "ws":
      if (Object.keys(config.headers).length > 0) {
        hooks.onWarning?.(
          `headers are configured for WebSocket ${config.url}, but a WebSocket client cannot send them; ` +
            "put credentials in the url or use the http transport",
        );
      }
      return new WebSocketClientTransport(new URL(config.url));
    default:
      return assertNever(config);
  }
}

export function pipeLines(stream: Stream, onLine: (line: string) => void): void {
  const decoder = new StringDecoder("utf8");
  let buffer = "";
  stream.on("data", (chunk: Buffer) => {
    buffer += decoder.write(chunk);
    let newline = buffer.indexOf("\n");
    while (newline !== -1) {
      emit(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
      newline = buffer.indexOf("\n");
    }
    if (buffer.length > MAX_STDERR_LINE) {
      emit(buffer);
      buffer = "";
    }
  });
  stream.on("end", () => {
    buffer += decoder.end();
    if (buffer) emit(buffer);
    buffer = "";
  });
  function emit(line: string): void {
    const trimmed = line.replace(/\r$/, "").slice(0, MAX_STDERR_LINE);
    if (trimmed.trim()) onLine(trimmed);
  }
}
