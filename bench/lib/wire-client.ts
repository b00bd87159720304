/**
 * The load generator's lean MCP client (`load.ts --client wire`): JSON-RPC written straight onto the wire,
 * the way wrk or hey post a prepared body, so the generator spends little of its core per call and the same
 * code drives every system and both protocol eras. It does what a client must and no more: the 2025-11-25
 * handshake (a session, `notifications/initialized`) or the 2026-07-28 envelope on every request (`_meta`,
 * `MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`), answers read as JSON or as an event stream, and
 * newline-delimited JSON over a stdio server's pipes. It opens no listen stream and validates no schema:
 * the SDK client (`--client sdk`) is the one that behaves like an application's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Agent, request } from "node:http";
import { createInterface } from "node:readline";

const LEGACY_VERSION = "2025-11-25";
const MODERN_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "toolgate-bench", version: "1.0.0" };

/** What the load generator needs of a client, whichever kind it is. */
export interface BenchClient {
  listTools(): Promise<{ tools: Array<{ name: string }> }>;
  /** The call's result (`isError` true when the tool failed); a JSON-RPC error throws. */
  callTool(name: string, args: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

interface JsonRpcAnswer {
  id?: unknown;
  result?: Record<string, unknown>;
  error?: { code: number; message: string };
}

/** Every wire client's keep-alive connections, like one fetch pool: clients share them, as SDK clients do. */
const agent = new Agent({ keepAlive: true });

function resultOf(answer: JsonRpcAnswer): Record<string, unknown> {
  if (answer.error) throw new Error(`MCP error ${answer.error.code}: ${answer.error.message}`);
  return answer.result ?? {};
}

/** The answer to request `id` in a POST's body: JSON, or the event-stream event that carries it. */
function answerIn(contentType: string, body: string, id: number): JsonRpcAnswer {
  if (contentType.startsWith("application/json")) return JSON.parse(body) as JsonRpcAnswer;
  for (const event of body.split(/\r?\n\r?\n/)) {
    const data = event
      .split(/\r?\n/)
      .filter((line) => line.startsWith("data:"))
      .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
      .join("\n");
    if (!data) continue;
    const message = JSON.parse(data) as JsonRpcAnswer;
    if (message.id === id) return message;
  }
  throw new Error(`no answer to request ${id} in the ${contentType || "untyped"} body`);
}

interface Posted {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(
  url: URL,
  headers: Record<string, string>,
  body: string | undefined,
  timeoutMs: number,
  method = "POST",
): Promise<Posted> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** A Streamable HTTP endpoint, either era. */
class HttpWireClient implements BenchClient {
  readonly url: URL;
  readonly era: "legacy" | "modern";
  #nextId = 1;
  #session: string | undefined;
  /** The version the 2025-11-25 handshake agreed on, sent on every later request. */
  #version: string | undefined;

  constructor(url: URL, era: "legacy" | "modern") {
    this.url = url;
    this.era = era;
  }

  /** The 2025-11-25 handshake; a 2026-07-28 client has none (every request says who it is). */
  async connect(timeoutMs: number): Promise<void> {
    if (this.era === "modern") return;
    const { result, headers } = await this.#request(
      "initialize",
      { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: CLIENT_INFO },
      timeoutMs,
    );
    const session = headers["mcp-session-id"];
    this.#session = typeof session === "string" ? session : undefined;
    this.#version = typeof result.protocolVersion === "string" ? result.protocolVersion : LEGACY_VERSION;
    const initialized = JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" });
    const sent = await post(this.url, this.#headers("notifications/initialized"), initialized, timeoutMs);
    if (sent.status >= 300) throw new Error(`notifications/initialized: HTTP ${sent.status}`);
  }

  async listTools(): Promise<{ tools: Array<{ name: string }> }> {
    const tools: Array<{ name: string }> = [];
    let cursor: string | undefined;
    do {
      const { result } = await this.#request("tools/list", cursor ? { cursor } : {}, 30_000);
      tools.push(...((result.tools as Array<{ name: string }>) ?? []));
      cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
    } while (cursor);
    return { tools };
  }

  async callTool(
    name: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return (await this.#request("tools/call", { name, arguments: args }, timeoutMs, name)).result;
  }

  async close(): Promise<void> {
    if (!this.#session) return;
    await post(this.url, this.#headers(undefined), undefined, 5_000, "DELETE").catch(() => {});
    this.#session = undefined;
  }

  async #request(
    method: string,
    params: Record<string, unknown>,
    timeoutMs: number,
    name?: string,
  ): Promise<{ result: Record<string, unknown>; headers: Posted["headers"] }> {
    const id = this.#nextId++;
    const body =
      this.era === "modern"
        ? {
            jsonrpc: "2.0",
            id,
            method,
            params: {
              ...params,
              _meta: {
                "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": {},
              },
            },
          }
        : { jsonrpc: "2.0", id, method, params };
    const answer = await post(this.url, this.#headers(method, name), JSON.stringify(body), timeoutMs);
    if (answer.status >= 300 && !String(answer.headers["content-type"]).startsWith("application/json")) {
      throw new Error(`${method}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
    }
    const message = answerIn(String(answer.headers["content-type"] ?? ""), answer.body, id);
    return { result: resultOf(message), headers: answer.headers };
  }

  #headers(method: string | undefined, name?: string): Record<string, string> {
    const headers: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    if (this.era === "modern") {
      headers["mcp-protocol-version"] = MODERN_VERSION;
      if (method) headers["mcp-method"] = method;
      if (name !== undefined) headers["mcp-name"] = name;
    } else {
      if (this.#session) headers["mcp-session-id"] = this.#session;
      if (this.#version) headers["mcp-protocol-version"] = this.#version;
    }
    return headers;
  }
}

/** A stdio server this client starts: one JSON-RPC message per line each way. */
class StdioWireClient implements BenchClient {
  #nextId = 1;
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve(answer: JsonRpcAnswer): void; reject(error: Error): void }>();

  constructor(argv: string[]) {
    const [command = "", ...args] = argv;
    this.#child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
    const fail = (error: Error) => {
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    };
    this.#child.on("error", fail);
    this.#child.on("exit", (code) => fail(new Error(`the stdio server exited (${code})`)));
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let message: JsonRpcAnswer;
      try {
        message = JSON.parse(line) as JsonRpcAnswer;
      } catch {
        return; // a server's stray output is not an answer
      }
      const pending = typeof message.id === "number" ? this.#pending.get(message.id) : undefined;
      if (!pending) return;
      this.#pending.delete(message.id as number);
      pending.resolve(message);
    });
  }

  async connect(timeoutMs: number): Promise<void> {
    await this.#request(
      "initialize",
      { protocolVersion: LEGACY_VERSION, capabilities: {}, clientInfo: CLIENT_INFO },
      timeoutMs,
    );
    this.#child.stdin?.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
  }

  async listTools(): Promise<{ tools: Array<{ name: string }> }> {
    const result = await this.#request("tools/list", {}, 30_000);
    return { tools: (result.tools as Array<{ name: string }>) ?? [] };
  }

  async callTool(
    name: string,
    args: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    return this.#request("tools/call", { name, arguments: args }, timeoutMs);
  }

  async close(): Promise<void> {
    this.#child.stdin?.end();
    this.#child.kill();
  }

  #request(
    method: string,
    params: Record<string, unknown>,
    timeoutMs: number,
  ): Promise<Record<string, unknown>> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${method}: no answer in ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (answer) => {
          clearTimeout(timer);
          try {
            resolve(resultOf(answer));
          } catch (error) {
            reject(error);
          }
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.#child.stdin?.write(`${JSON.stringify({ jsonrpc: "2.0", id, method, params })}\n`);
    });
  }
}

/** A connected wire client: a session opened over HTTP (2025-11-25), or a stdio server started and initialized. */
export async function connectWire(
  endpoint: { url: URL } | { argv: string[] },
  era: "legacy" | "modern",
  timeoutMs = 30_000,
): Promise<BenchClient> {
  const client =
    "url" in endpoint ? new HttpWireClient(endpoint.url, era) : new StdioWireClient(endpoint.argv);
  try {
    await client.connect(timeoutMs);
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}
