/**
 * A client that stops reading its response stream while the upstream keeps sending it progress: the gateway
 * holds at most MAX_UNSENT_BYTES for it, then cuts the stream and logs why, and other clients are served
 * throughout. A 2026-07-28 call is cancelled upstream at once; a 2025 session's call waits the resume grace
 * first (its client may come back with Last-Event-ID). Both eras, on raw sockets that read nothing.
 */
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_UNSENT_BYTES } from "../../src/server/slow-reader.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
  warningsLogger,
} from "../helpers/gateway.ts";
import { rawRequest, rawSession } from "../helpers/raw-mcp.ts";

/** Progress updates of 64 KiB each, far more of them than the bound holds. */
const FLOOD = { steps: 100_000, intervalMs: 0, pad: 64 * 1024 };

let upstream: RunningFaultServer;
let gw: InProcessGateway;
const { log, warnings } = warningsLogger();

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway(
    { mcpServers: { faults: { type: "http", url: upstream.url } }, defaults: { retry: { maxAttempts: 1 } } },
    { log },
  );
  await eventually(() => gw.gateway.catalog.tool("faults__progress") !== undefined);
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

/** POSTs `body` on a socket that reads nothing back; returns the socket. */
function postWithoutReading(headers: Record<string, string>, body: string): net.Socket {
  const { port } = new URL(gw.url);
  const socket = net.connect(Number(port), "127.0.0.1");
  socket.pause();
  const lines = Object.entries({
    ...headers,
    host: `127.0.0.1:${port}`,
    "content-length": Buffer.byteLength(body),
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  socket.write(`POST /mcp HTTP/1.1\r\n${lines}\r\n${body}`);
  return socket;
}

/**
 * Waits for the warning that names the cut `stream`, and for the gateway to have closed the socket (read once
 * resumed: a paused socket sees nothing); meanwhile another client is served.
 */
async function cut(socket: net.Socket, stream: string): Promise<void> {
  try {
    const said = () =>
      warnings.map((w) => JSON.stringify(w)).find((w) => w.includes(`stopped reading its ${stream}`));
    await eventually(() => said() !== undefined, 60_000, 50);
    expect(said()).toContain(`over ${MAX_UNSENT_BYTES} bytes unsent`);
    const client = await connectClient("http", gw);
    const echoed = await client.callTool({ name: "faults__echo", arguments: { text: "still served" } });
    expect(textOf(echoed)).toBe("still served");
    await client.close();
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.on("error", () => {}).resume();
    await closed;
  } finally {
    socket.destroy();
  }
}

describe("a client that stops reading its response stream", () => {
  it("2025-11-25 session: the POST stream is cut, and ending the session cancels its call", async () => {
    const session = await rawSession(gw.url);
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "faults__progress", arguments: FLOOD, _meta: { progressToken: "p" } },
    });
    const before = upstream.stats().cancelled.length;
    await cut(postWithoutReading(session.headers, body), "POST response stream");
    // Ending the session does not wait for the grace: the call is cancelled upstream now.
    await rawRequest(gw.url, { method: "DELETE", headers: session.headers });
    await eventually(() => upstream.stats().cancelled.length > before, 60_000, 50);
  });

  it("2026-07-28: the request's stream is cut and the call cancelled upstream", async () => {
    const before = upstream.stats().cancelled.length;
    const meta = {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientCapabilities": {},
      progressToken: "p",
    };
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 3,
      method: "tools/call",
      params: { name: "faults__progress", arguments: FLOOD, _meta: meta },
    });
    const headers = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": "faults__progress",
    };
    await cut(postWithoutReading(headers, body), "response stream");
    // No resuming in this era: the call is cancelled upstream at once.
    await eventually(() => upstream.stats().cancelled.length > before, 60_000, 50);
  });
});
