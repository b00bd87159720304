/**
 * One client transport per configured upstream transport. The transports are the SDK's own; this file maps
 * config to their options, turns a stdio child's stderr into log lines, and gives Streamable HTTP a leaner
 * `fetch` (http-client.ts).
 */
import type { Stream } from "node:stream";
import { StringDecoder } from "node:string_decoder";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { TransportConfig } from "../config/load.ts";
import { assertNever } from "../errors.ts";
import { upstreamFetch } from "./http-client.ts";
import { deliverResponsesLast } from "./sdk-compat.ts";

export interface TransportHooks {
  /** One line of a stdio child's stderr (without the newline). */
  onStderr(line: string): void;
  /** A configuration the transport cannot honour (e.g. headers on WebSocket). */
  onWarning?(message: string): void;
}

/** Longest stderr line kept; a child writing megabytes without a newline must not grow memory. */
const MAX_STDERR_LINE = 8 * 1024;

export function createTransport(config: TransportConfig, hooks: TransportHooks): Transport {
  return deliverResponsesLast(createSdkTransport(config, hooks));
}

/** The SDK transport itself; `createTransport` adds what the v1 client needs (sdk-compat.ts). */
export function createSdkTransport(config: TransportConfig, hooks: TransportHooks): Transport {
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
      return transport;
    }
    case "http":
      return new StreamableHTTPClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
        fetch: upstreamFetch,
      });
    case "sse":
      return new SSEClientTransport(new URL(config.url), {
        requestInit: { headers: config.headers },
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
