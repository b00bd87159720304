/**
 * Malformed input at the door: raw HTTP requests and WebSocket frames no SDK client would send get a
 * clear HTTP status and JSON-RPC error, and every other client keeps being served.
 */
import type { PassThrough } from "node:stream";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type InProcessGateway,
  NODE,
  startGateway,
  textOf,
  warningsLogger,
} from "../helpers/gateway.ts";
import {
  BASE_HEADERS,
  errorCode,
  initializeBody,
  type RawSession,
  rawPost,
  rawRequest,
  rawSession,
  rawStdio,
} from "../helpers/raw-mcp.ts";
import { parsePrometheusText } from "../unit/telemetry/prometheus-text.ts";

const MAX_BODY = 16 * 1024;

let gw: InProcessGateway;
let bystander: Client;
let wsBystander: Client;
/** The gateway's warnings, as JSON objects. */
const { log, warnings } = warningsLogger();

beforeAll(async () => {
  gw = await startGateway(
    {
      gateway: { maxBodyBytes: MAX_BODY },
      mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
    },
    { log },
  );
  bystander = await connectClient("http", gw);
  wsBystander = await connectClient("ws", gw);
  await eventually(async () => (await bystander.listTools()).tools.some((t) => t.name === "faults__echo"));
});

afterAll(async () => {
  await bystander?.close();
  await wsBystander?.close();
  await gw?.stop();
});

/** The clients that did nothing wrong are still served, over both transports. */
async function othersStillServed(): Promise<void> {
  const a = await bystander.callTool({ name: "faults__echo", arguments: { text: "still here" } });
  expect(textOf(a)).toBe("still here");
  const b = await wsBystander.callTool({ name: "faults__echo", arguments: { text: "ws too" } });
  expect(textOf(b)).toBe("ws too");
}

describe("malformed input over Streamable HTTP", () => {
  let session: RawSession;

  beforeAll(async () => {
    session = await rawSession(gw.url);
  });

  it.each([
    ["invalid JSON", "{not json", 400, -32700],
    ["invalid JSON without a session", "{not json", 400, -32700, false],
    ["a JSON object that is not JSON-RPC", JSON.stringify({ hello: "world" }), 400, -32600],
    ["a wrong jsonrpc version", JSON.stringify({ jsonrpc: "1.0", id: 1, method: "ping" }), 400, -32600],
    ["a method that is not a string", JSON.stringify({ jsonrpc: "2.0", id: 1, method: 42 }), 400, -32600],
    ["an empty batch", "[]", 400, -32600],
    [
      "a batch with one bad element",
      JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "ping" }, 7]),
      400,
      -32600,
    ],
    ["a JSON string", JSON.stringify("ping"), 400, -32600, false],
  ] as Array<[string, string, number, number, boolean?]>)(
    "answers %s with HTTP %i and JSON-RPC %i",
    async (_what, body, status, code, withSession = true) => {
      const reply = await rawPost(gw.url, body, withSession ? session.headers : BASE_HEADERS);
      expect(reply.status).toBe(status);
      expect(reply.messages[0]).toMatchObject({ jsonrpc: "2.0", id: null, error: { code } });
      await othersStillServed();
    },
  );

  it("answers a body over gateway.maxBodyBytes with 413", async () => {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 9,
      method: "ping",
      params: { pad: "x".repeat(MAX_BODY) },
    });
    const reply = await rawPost(gw.url, body, session.headers);
    expect(reply.status).toBe(413);
    expect(errorCode(reply)).toBe(-32600);
    await othersStillServed();
  });

  it("answers an unknown method from an initialized session with -32601 naming it", async () => {
    const reply = await rawPost(
      gw.url,
      JSON.stringify({ jsonrpc: "2.0", id: 3, method: "nope/what" }),
      session.headers,
    );
    expect(reply.status).toBe(200);
    expect(reply.messages[0]).toMatchObject({
      id: 3,
      error: { code: -32601, message: expect.stringContaining("nope/what") },
    });
    await othersStillServed();
  });

  it.each([
    ["a tool name that is not a string", "tools/call", { name: { x: 1 } }, "params.name (a string)"],
    [
      "arguments that are not an object",
      "tools/call",
      { name: "faults__echo", arguments: "hi" },
      "arguments",
    ],
    ["a task that is not an object", "tools/call", { name: "faults__echo", task: "soon" }, "params.task"],
    ["a resource URI that is not a string", "resources/read", { uri: 5 }, "params.uri must be a string"],
    ["a prompt name that is not a string", "prompts/get", { name: 7 }, "params.name must be a string"],
    ["an unknown log level", "logging/setLevel", { level: "loud" }, 'unknown log level "loud"'],
    ["a cursor the gateway never gave", "tools/list", { cursor: "not-ours" }, "invalid cursor"],
    [
      "a completion without a ref",
      "completion/complete",
      { argument: { name: "a", value: "b" } },
      "ref/prompt",
    ],
  ])("answers %s with -32602 (invalid params) naming it", async (_what, method, params, named) => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: 31, method, params });
    const reply = await rawPost(gw.url, body, session.headers);
    expect(reply.messages[0]).toMatchObject({
      id: 31,
      error: {
        code: -32602,
        message: expect.stringContaining(named),
        data: { toolgate: { code: "InvalidParams" } },
      },
    });
    await othersStillServed();
  });

  it("answers an unsupported MCP-Protocol-Version header with 400", async () => {
    const headers = { ...session.headers, "mcp-protocol-version": "1999-01-01" };
    const reply = await rawPost(gw.url, JSON.stringify({ jsonrpc: "2.0", id: 4, method: "ping" }), headers);
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.messages[0])).toContain("1999-01-01");
    await othersStillServed();
  });

  it("answers an unknown session id with 404", async () => {
    const headers = { ...session.headers, "mcp-session-id": "00000000-0000-0000-0000-000000000000" };
    const reply = await rawPost(gw.url, JSON.stringify({ jsonrpc: "2.0", id: 5, method: "ping" }), headers);
    expect(reply.status).toBe(404);
    expect(errorCode(reply)).toBe(-32001);
    await othersStillServed();
  });

  it.each(["GET", "DELETE"])("answers %s without a session id with 400", async (method) => {
    const reply = await rawRequest(gw.url, { method, headers: { accept: "text/event-stream" } });
    expect(reply.status).toBe(400);
    expect(JSON.stringify(reply.messages[0])).toMatch(/Mcp-Session-Id/i);
    await othersStillServed();
  });

  it.each([
    ["PUT", true],
    ["PUT", false],
    ["PATCH", false],
  ])("answers %s (with a session: %s) with 405 naming the methods allowed", async (method, withSession) => {
    const headers = withSession ? session.headers : BASE_HEADERS;
    const reply = await rawRequest(gw.url, { method, headers, body: "{}" });
    expect(reply.status).toBe(405);
    expect(reply.headers.get("allow")).toBe("GET, POST, DELETE");
    await othersStillServed();
  });

  it("ends a session on DELETE, after which its id gets 404", async () => {
    const doomed = await rawSession(gw.url);
    const ping = JSON.stringify({ jsonrpc: "2.0", id: 6, method: "ping" });
    expect((await rawPost(gw.url, ping, doomed.headers)).status).toBe(200);
    const ended = await rawRequest(gw.url, { method: "DELETE", headers: doomed.headers });
    expect(ended.status).toBe(200);
    expect((await rawPost(gw.url, ping, doomed.headers)).status).toBe(404);
    await othersStillServed();
  });

  it("refuses a request under an id still in flight on the session, and still answers the first", async () => {
    // A load tool posting one fixed body (hey, wrk) reuses its id: the second must not take the first's answer.
    const slow = (id: number, hold: string) =>
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "faults__slow", arguments: { ms: 0, hold } },
      });
    const refusals = async () => {
      const metrics = parsePrometheusText(await (await fetch(`${gw.base}/metrics`)).text());
      const sample = metrics
        .get("mcp_server_operation_duration_seconds")
        ?.samples.find(
          (s) =>
            s.name.endsWith("_count") &&
            s.labels.gen_ai_tool_name === "faults__slow" &&
            s.labels.error_type === "-32600",
        );
      return sample?.value ?? 0;
    };
    const refusedBefore = await refusals();
    const stats = async () =>
      JSON.parse(textOf(await bystander.callTool({ name: "faults__stats", arguments: {} }))) as {
        inFlight: number;
      };
    const first = rawPost(gw.url, slow(42, "dup-id"), session.headers);
    await eventually(async () => (await stats()).inFlight === 1);

    const logged = () =>
      warnings.filter((w) => w.msg === "message refused at the edge" && w.session === session.id);
    for (let i = 0; i < 3; i++) {
      const second = await rawPost(gw.url, slow(42, "never-released"), session.headers);
      expect(second.status).toBe(400);
      expect(second.messages[0]).toMatchObject({
        id: 42,
        error: {
          code: -32600,
          message: expect.stringContaining("request id 42 is already in use by a request in flight"),
          data: { toolgate: { code: "InvalidRequest" } },
        },
      });
    }
    expect((await stats()).inFlight).toBe(1); // none of them reached the upstream
    // Every refusal is counted; the log names the first, not each repeat.
    expect(await refusals()).toBe(refusedBefore + 3);
    expect(logged()).toHaveLength(1);
    expect(logged()[0]).toMatchObject({ method: "tools/call", refusedOnSession: 1 });

    await bystander.callTool({ name: "faults__release", arguments: { hold: "dup-id" } });
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(answered.messages[0]).toMatchObject({ id: 42, result: { content: [{ type: "text" }] } });
    // Answered, the id is free again.
    const again = await rawPost(
      gw.url,
      JSON.stringify({ jsonrpc: "2.0", id: 42, method: "ping" }),
      session.headers,
    );
    expect(again.messages[0]).toMatchObject({ id: 42, result: {} });
    await othersStillServed();
  });

  it("answers an initialize without protocolVersion with 400 and -32602 naming the field, opening no session", async () => {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 5,
      method: "initialize",
      params: { capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    const reply = await rawPost(gw.url, body);
    expect(reply.status).toBe(400);
    expect(reply.headers.get("mcp-session-id")).toBeNull();
    expect(reply.messages[0]).toMatchObject({
      id: 5,
      error: { code: -32602, message: expect.stringContaining("params.protocolVersion") },
    });
    await othersStillServed();
  });

  it("does not open a session for a POST that is not initialize", async () => {
    const reply = await rawPost(gw.url, JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list" }));
    expect(reply.status).toBe(400);
    expect(reply.headers.get("mcp-session-id")).toBeNull();
  });

  it("keeps serving the raw session that sent all of the above", async () => {
    const reply = await rawPost(
      gw.url,
      JSON.stringify({ jsonrpc: "2.0", id: 7, method: "tools/list" }),
      session.headers,
    );
    expect(reply.status).toBe(200);
    const tools = (reply.messages[0] as { result: { tools: Array<{ name: string }> } }).result.tools;
    expect(tools.map((t) => t.name)).toContain("faults__echo");
  });
});

describe("malformed frames over WebSocket", () => {
  let socket: WebSocket;
  const replies: Array<Record<string, unknown>> = [];

  /** Send a frame and wait for the next reply. */
  async function exchange(frame: string | Buffer, binary = false): Promise<Record<string, unknown>> {
    const seen = replies.length;
    socket.send(frame, { binary });
    const reply = await eventually(() => replies[seen], 30_000, 10);
    return reply as Record<string, unknown>;
  }

  beforeAll(async () => {
    socket = new WebSocket(gw.wsUrl, "mcp");
    socket.on("message", (data) => replies.push(JSON.parse(String(data)) as Record<string, unknown>));
    await new Promise((resolve, reject) => {
      socket.once("open", resolve);
      socket.once("error", reject);
    });
    const init = await exchange(initializeBody(1));
    expect(init).toMatchObject({ id: 1, result: { serverInfo: { name: "toolgate" } } });
    socket.send(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }));
  });

  afterAll(() => socket?.terminate());

  it.each([
    ["invalid JSON", "{oops", -32700],
    ["a JSON object that is not JSON-RPC", JSON.stringify({ hello: "world" }), -32600],
    ["a JSON number", "42", -32600],
  ] as const)("answers %s with JSON-RPC %i and keeps the socket", async (_what, frame, code) => {
    const reply = await exchange(frame);
    expect(reply).toMatchObject({ jsonrpc: "2.0", error: { code } });
    expect(socket.readyState).toBe(WebSocket.OPEN);
    await othersStillServed();
  });

  it("answers a binary frame with -32600", async () => {
    const reply = await exchange(
      Buffer.from(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" })),
      true,
    );
    expect(reply).toMatchObject({ error: { code: -32600 } });
    expect(socket.readyState).toBe(WebSocket.OPEN);
  });

  it("answers an unknown method with -32601 and the request's id", async () => {
    const reply = await exchange(JSON.stringify({ jsonrpc: "2.0", id: 3, method: "nope/what" }));
    expect(reply).toMatchObject({ id: 3, error: { code: -32601 } });
  });

  it("still serves the socket that sent the bad frames", async () => {
    const reply = await exchange(
      JSON.stringify({
        jsonrpc: "2.0",
        id: 4,
        method: "tools/call",
        params: { name: "faults__echo", arguments: { text: "ok" } },
      }),
    );
    expect(reply).toMatchObject({ id: 4, result: { content: [{ type: "text", text: "ok" }] } });
    await othersStillServed();
  });
});

describe("malformed lines from a stdio client", () => {
  let input: PassThrough;
  let replies: Array<Record<string, unknown>>;

  /** Write lines (a chunk each) and wait for the next reply. */
  async function exchange(...chunks: string[]): Promise<Record<string, unknown>> {
    const seen = replies.length;
    for (const chunk of chunks) input.write(chunk);
    return (await eventually(() => replies[seen], 30_000, 10)) as Record<string, unknown>;
  }

  beforeAll(async () => {
    ({ input, replies } = await rawStdio(gw.gateway));
    expect(await exchange(`${initializeBody(1)}\n`)).toMatchObject({ id: 1, result: {} });
    input.write(`${JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" })}\n`);
  });

  afterAll(() => input.end());

  it.each([
    [
      "invalid JSON",
      "{oops",
      { error: { code: -32700, message: expect.stringContaining("not valid JSON") } },
    ],
    ["a JSON object that is not JSON-RPC", JSON.stringify({ hello: "world" }), { error: { code: -32600 } }],
    [
      "a request whose method is not a string",
      '{"jsonrpc":"2.0","id":7,"method":5}',
      { id: 7, error: { code: -32600 } },
    ],
    [
      "an initialize whose clientInfo is not an object",
      '{"jsonrpc":"2.0","id":6,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":5}}',
      { id: 6, error: { code: -32602, message: expect.stringContaining("params.clientInfo") } },
    ],
  ] as const)("answers %s and keeps serving", async (_what, line, expected) => {
    const reply = await exchange(`${line}\n`);
    expect(reply).toMatchObject(expected);
    if (!("id" in expected)) expect(reply).not.toHaveProperty("id");
  });

  it("answers a line longer than gateway.maxBodyBytes once, with its id, and reads the next line whole", async () => {
    const long = JSON.stringify({
      jsonrpc: "2.0",
      id: 8,
      method: "ping",
      params: { pad: "x".repeat(MAX_BODY) },
    });
    const half = long.length >> 1;
    const reply = await exchange(long.slice(0, half), `${long.slice(half)}\n`);
    expect(reply).toMatchObject({
      id: 8,
      error: { code: -32600, message: expect.stringContaining("gateway.maxBodyBytes") },
    });
    const call = { name: "faults__echo", arguments: { text: "after the long line" } };
    const next = await exchange(
      `${JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/call", params: call })}\n`,
    );
    expect(next).toMatchObject({
      id: 9,
      result: { content: [{ type: "text", text: "after the long line" }] },
    });
    await othersStillServed();
  });
});
