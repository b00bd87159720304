/**
 * How the gateway's Streamable HTTP face frames its answers on the wire: a JSON answer (a call's result, a
 * refusal) carries its Content-Length and no chunked encoding, so it leaves in one write; a 202 has an empty
 * body of length 0; the same on the 2026-07-28 face and for a session's DELETE. Read with node:http, which
 * shows the raw response headers.
 */
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULT_SERVER, type InProcessGateway, NODE, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, type RawSession, rawSession } from "../helpers/raw-mcp.ts";

let gw: InProcessGateway;
let session: RawSession;

beforeAll(async () => {
  gw = await startGateway({
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
  });
  session = await rawSession(gw.url);
});

afterAll(async () => {
  await gw?.stop();
});

/** One request (a POST unless said), with the response's raw headers and body. */
function post(headers: Record<string, string>, body: string, method = "POST") {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request(gw.url, { method, headers }, (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          text += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(body);
    },
  );
}

describe("answers over Streamable HTTP", () => {
  it("sends a tools/call result as JSON with its Content-Length, not chunked", async () => {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "faults__echo", arguments: { text: "héllo" } },
    });
    const reply = await post(session.headers, body);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.headers["mcp-session-id"]).toBe(session.id);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(reply.body)));
    expect(JSON.parse(reply.body)).toMatchObject({ id: 3, result: { content: [{ text: "héllo" }] } });
  });

  it("sends a refusal with its Content-Length, not chunked", async () => {
    const reply = await post(BASE_HEADERS, "{not json");
    expect(reply.status).toBe(400);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(reply.body)));
    expect(JSON.parse(reply.body)).toMatchObject({ error: { code: -32700 } });
  });

  it("accepts a notification with 202 and an empty body of length 0", async () => {
    const reply = await post(
      session.headers,
      JSON.stringify({ jsonrpc: "2.0", method: "notifications/roots/list_changed" }),
    );
    expect(reply.status).toBe(202);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe("0");
    expect(reply.body).toBe("");
  });

  it("answers a session's DELETE with 200 and an empty body of length 0", async () => {
    const ended = await rawSession(gw.url);
    const reply = await post(ended.headers, "", "DELETE");
    expect(reply.status).toBe(200);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe("0");
  });
});

describe("answers on the 2026-07-28 face", () => {
  const VERSION = "2026-07-28";
  const modern = (id: number, method: string, params: Record<string, unknown>, mcpMethod = method) =>
    post(
      {
        ...BASE_HEADERS,
        "mcp-protocol-version": VERSION,
        "mcp-method": mcpMethod,
        ...(typeof params.name === "string" && { "mcp-name": params.name }),
      },
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        method,
        params: {
          ...params,
          _meta: {
            "io.modelcontextprotocol/protocolVersion": VERSION,
            "io.modelcontextprotocol/clientCapabilities": {},
          },
        },
      }),
    );

  it("sends a tools/call result as JSON with its Content-Length, not chunked", async () => {
    const reply = await modern(7, "tools/call", { name: "faults__echo", arguments: { text: "wörld" } });
    expect(reply.status).toBe(200);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(reply.body)));
    expect(JSON.parse(reply.body)).toMatchObject({ id: 7, result: { content: [{ text: "wörld" }] } });
  });

  it("sends an error with its Content-Length, not chunked", async () => {
    const reply = await modern(8, "tools/list", {}, "tools/call");
    expect(reply.status).toBe(400);
    expect(reply.headers["transfer-encoding"]).toBeUndefined();
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(reply.body)));
    expect(JSON.parse(reply.body)).toMatchObject({ id: 8, error: { code: -32020 } });
  });
});
