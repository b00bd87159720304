/**
 * Raw Streamable HTTP for tests that must send what no SDK client would: plain `fetch` to `/mcp`, with the
 * JSON-RPC messages of a reply read back from either a JSON body or an SSE stream; and raw lines on the stdio
 * face.
 */

import { PassThrough, type Readable, type Writable } from "node:stream";

export const PROTOCOL_VERSION = "2025-06-18";

export const BASE_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

export interface RawReply {
  status: number;
  headers: Headers;
  /** JSON-RPC messages in the body (JSON object, JSON array or SSE `data:` lines); empty for no body. */
  messages: unknown[];
}

export interface RawSession {
  id: string;
  headers: Record<string, string>;
}

/** Send one request and read its whole reply (bounded by `timeoutMs`, generous: the machine may be loaded). */
export async function rawPost(
  url: string,
  body: string,
  headers: Record<string, string> = BASE_HEADERS,
  timeoutMs = 30_000,
): Promise<RawReply> {
  return rawRequest(url, { method: "POST", headers, body }, timeoutMs);
}

export async function rawRequest(url: string, init: RequestInit, timeoutMs = 30_000): Promise<RawReply> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await response.text();
  return { status: response.status, headers: response.headers, messages: parseMessages(text) };
}

export function parseMessages(text: string): unknown[] {
  if (!text.trim()) return [];
  if (text.startsWith("event:") || text.startsWith("data:") || text.startsWith("id:")) {
    return text
      .split("\n")
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(5).trim())
      .filter(Boolean)
      .map((data) => JSON.parse(data) as unknown);
  }
  const json = JSON.parse(text) as unknown;
  return Array.isArray(json) ? json : [json];
}

export function initializeBody(id: number | string = 1): string {
  return JSON.stringify({
    jsonrpc: "2.0",
    id,
    method: "initialize",
    params: {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: "raw", version: "1" },
    },
  });
}

/** `initialize` + `notifications/initialized`: a session ready for requests. */
export async function rawSession(
  url: string,
  extraHeaders: Record<string, string> = {},
): Promise<RawSession> {
  const reply = await rawPost(url, initializeBody(), { ...BASE_HEADERS, ...extraHeaders });
  const id = reply.headers.get("mcp-session-id");
  if (reply.status !== 200 || !id) throw new Error(`initialize failed with HTTP ${reply.status}`);
  const headers = {
    ...BASE_HEADERS,
    ...extraHeaders,
    "mcp-session-id": id,
    "mcp-protocol-version": PROTOCOL_VERSION,
  };
  await rawPost(url, JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }), headers);
  return { id, headers };
}

/** The `error.code` of the first message, if it is a JSON-RPC error. */
export function errorCode(reply: RawReply): number | undefined {
  const first = reply.messages[0] as { error?: { code?: number } } | undefined;
  return first?.error?.code;
}

/** The gateway's stdio face on in-memory streams: write lines to `input`; `replies` fills as they come. */
export async function rawStdio(gateway: {
  serveStdio(input: Readable, output: Writable): Promise<void>;
}): Promise<{ input: PassThrough; replies: Array<Record<string, unknown>> }> {
  const input = new PassThrough();
  const output = new PassThrough();
  const replies: Array<Record<string, unknown>> = [];
  let buffer = "";
  output.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf("\n"); nl !== -1; nl = buffer.indexOf("\n")) {
      replies.push(JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>);
      buffer = buffer.slice(nl + 1);
    }
  });
  await gateway.serveStdio(input, output);
  return { input, replies };
}
