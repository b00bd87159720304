/**
 * The benchmark's upstream: a minimal, fast MCP server (low-level `Server`) with three tools.
 *   echo {text}   returns the text
 *   slow {ms}     answers after `ms` milliseconds
 *   flaky {}      fails with a JSON-RPC internal error (-32603, transient) with probability --fail-rate
 * Over stdio by default, or Streamable HTTP with `--http PORT` (stateful sessions; SSE responses, the SDK's
 * default, or plain JSON responses with `--json-response`); then it prints `{"url": ...}` once listening.
 * `--flap-up-ms U --flap-down-ms D` (HTTP only): every U ms of service is followed by D ms of HTTP 503,
 * an outage the client sees as a transport failure while its session survives.
 */
import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  ErrorCode,
  isInitializeRequest,
  ListToolsRequestSchema,
  McpError,
} from "@modelcontextprotocol/sdk/types.js";
import { benchCli } from "./lib/cli.ts";
import { exitWhenOrphaned } from "./lib/orphan.ts";

const cli = benchCli(import.meta.url, {
  http: { type: "string" },
  "fail-rate": { type: "string", default: "0" },
  "flap-up-ms": { type: "string", default: "0" },
  "flap-down-ms": { type: "string", default: "0" },
  "json-response": { type: "boolean", default: false },
});
const { values } = cli;
const failRate = cli.decimal("fail-rate", 0);
if (failRate > 1) cli.fail(`--fail-rate is a probability between 0 and 1, not ${failRate}`);
const flapUpMs = cli.whole("flap-up-ms", 0);
const flapDownMs = cli.whole("flap-down-ms", 0);
const httpPort = cli.whole("http", 0);
const startedAt = performance.now();

const READ_ONLY = { readOnlyHint: true, idempotentHint: true };
const TOOLS = [
  {
    name: "echo",
    description: "Returns its text.",
    inputSchema: { type: "object", properties: { text: { type: "string" } }, required: ["text"] },
    annotations: READ_ONLY,
  },
  {
    name: "slow",
    description: "Answers after `ms` milliseconds.",
    inputSchema: { type: "object", properties: { ms: { type: "number" } }, required: ["ms"] },
    annotations: READ_ONLY,
  },
  {
    name: "flaky",
    description: "Fails transiently with the configured probability.",
    inputSchema: { type: "object", properties: {} },
    annotations: READ_ONLY,
  },
];

function createMcpServer(): Server {
  const server = new Server({ name: "bench-echo", version: "1.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    const args = request.params.arguments ?? {};
    switch (request.params.name) {
      case "echo":
        return { content: [{ type: "text", text: String(args.text ?? "") }] };
      case "slow":
        await new Promise((resolve) => setTimeout(resolve, Math.min(Number(args.ms ?? 0), 60_000)));
        return { content: [{ type: "text", text: "done" }] };
      case "flaky":
        if (Math.random() < failRate) throw new McpError(ErrorCode.InternalError, "flaky: transient failure");
        return { content: [{ type: "text", text: "ok" }] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `unknown tool ${request.params.name}`);
    }
  });
  return server;
}

function isDown(): boolean {
  if (flapUpMs <= 0 || flapDownMs <= 0) return false;
  return (performance.now() - startedAt) % (flapUpMs + flapDownMs) >= flapUpMs;
}

async function serveHttp(port: number): Promise<void> {
  const sessions = new Map<string, StreamableHTTPServerTransport>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (req.method === "POST" && isDown()) {
      req.resume();
      res.writeHead(503).end("flapping: down");
      return;
    }
    const sessionId = req.headers["mcp-session-id"];
    const existing = typeof sessionId === "string" ? sessions.get(sessionId) : undefined;
    if (existing) {
      await existing.handleRequest(req, res);
      if (values["json-response"]) releaseAnswered(existing);
      return;
    }
    if (sessionId !== undefined) {
      res.writeHead(404).end("unknown session");
      return;
    }
    if (req.method !== "POST") {
      res.writeHead(400).end("missing session");
      return;
    }
    const body = await readJson(req);
    if (!isInitializeRequest(body)) {
      res.writeHead(400).end("missing session");
      return;
    }
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: randomUUID,
      // JSON answers only on request (see releaseAnswered).
      enableJsonResponse: values["json-response"],
      onsessioninitialized: (id) => void sessions.set(id, transport),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await createMcpServer().connect(transport);
    await transport.handleRequest(req, res, body);
  };

  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(error));
    });
  });
  http.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => http.listen(port, "127.0.0.1", resolve));
  const address = http.address();
  if (address === null || typeof address === "string") throw new Error("upstream-echo: no TCP address");
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${address.port}/mcp` })}\n`);
}

/**
 * The SDK v1's JSON answer mode (1.32.2) never drops an answered POST's entry from the transport's stream
 * mappings, and the entry keeps the answer: typescript-sdk#2559, fixed on its main branch, open for v1. Run for
 * twenty minutes, a shared upstream grew to 3.7 GB and refused calls. Drops the entries no pending request maps
 * to; does nothing if the SDK's internals are not there.
 */
function releaseAnswered(transport: StreamableHTTPServerTransport): void {
  const inner = (
    transport as unknown as {
      _webStandardTransport?: {
        _streamMapping?: Map<string, { resolveJson?: unknown }>;
        _requestToStreamMapping?: Map<unknown, string>;
      };
    }
  )._webStandardTransport;
  const streams = inner?._streamMapping;
  const pending = inner?._requestToStreamMapping;
  if (!(streams instanceof Map && pending instanceof Map)) return;
  const live = new Set(pending.values());
  for (const [id, stream] of streams) if (stream.resolveJson && !live.has(id)) streams.delete(id);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

if (httpPort !== undefined) {
  exitWhenOrphaned();
  await serveHttp(httpPort);
} else {
  const transport = new StdioServerTransport();
  transport.onclose = () => process.exit(0);
  process.stdin.on("end", () => process.exit(0));
  await createMcpServer().connect(transport);
}
