/**
 * Upstream faults through an in-process gateway: every call in flight ends with a clear error (or its
 * result) within its deadline, nothing leaks (bulkhead slots, locks), and a returning upstream is served again.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type InProcessGateway,
  NODE,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

/** Fast reconnects, one attempt per call and no breaker: each fault shows as itself. */
const plain = {
  reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
  policies: { retry: { maxAttempts: 1 }, breaker: { enabled: false } },
};

interface Remote {
  child: ChildProcess;
  url: string;
}

/** The fault fixture over Streamable HTTP as its own process, so it can be killed mid-call. */
async function spawnRemote(port = 0): Promise<Remote> {
  const child = spawn(NODE, [FAULT_SERVER, "--transport", "http", "--port", String(port)], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`remote fixture exited with ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/**
 * Settles within `ms` or fails the test: a call that hangs is the defect under test. The bound is far above
 * any limit configured here, so a loaded machine cannot reach it; only a call that never ends does.
 */
const HANG_MS = 30_000;
async function within<T>(ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

function toolError(result: unknown): { code: string; upstream?: string; message: string } {
  const meta = (result as { _meta?: Record<string, unknown> })._meta ?? {};
  return meta["toolgate/error"] as { code: string; upstream?: string; message: string };
}

let gw: InProcessGateway;
let client: Client;
let remote: Remote;

async function stats(upstream = "faults"): Promise<{ cancelled: unknown[]; calls: Record<string, number> }> {
  return JSON.parse(textOf(await client.callTool({ name: `${upstream}__stats`, arguments: {} })));
}

/**
 * Progress is sent every PROGRESS_EVERY_MS against an attempt timeout twenty times as long, so a scheduling
 * delay cannot pass for a missing update; the drips outlast one attempt timeout, so only resets keep them going.
 */
const PROGRESS_EVERY_MS = 100;
const ATTEMPT_MS = 2_000;
const CALL_MS = 3_000;

/** A web server, not MCP: a page at `/`, 404 pages elsewhere (a url with the wrong path). */
let website: Server;

beforeAll(async () => {
  remote = await spawnRemote();
  website = createServer((req, res) =>
    res
      .writeHead(req.url === "/" ? 200 : 404, { "content-type": "text/html" })
      .end("<html><h1>Hi</h1></html>"),
  );
  await new Promise<void>((resolve) => website.listen(0, "127.0.0.1", resolve));
  const site = `http://127.0.0.1:${(website.address() as AddressInfo).port}`;
  gw = await startGateway({
    mcpServers: {
      faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] },
      garbled: { command: NODE, args: [FAULT_SERVER, "--garbage-on-start"] },
      refuses: { command: NODE, args: [FAULT_SERVER, "--fail-start"] },
      remote: { type: "http", url: remote.url },
      // Nothing listens on a port just freed; no such command exists.
      closed: { type: "http", url: `http://127.0.0.1:${await freePort()}/mcp` },
      missing: { command: "toolgate-test-no-such-command" },
      homepage: { type: "http", url: `${site}/` },
      notfound: { type: "http", url: `${site}/api` },
    },
    upstreams: {
      faults: {
        ...plain,
        tools: {
          hang: { timeout: { attemptMs: 400 } },
          progress: { timeout: { attemptMs: ATTEMPT_MS, resetOnProgress: true } },
        },
      },
      garbled: plain,
      refuses: plain,
      remote: {
        ...plain,
        tools: { progress: { timeout: { attemptMs: ATTEMPT_MS, callMs: CALL_MS, resetOnProgress: true } } },
      },
    },
  });
  client = await connectClient("http", gw);
  await eventually(async () => {
    const names = (await client.listTools()).tools.map((t) => t.name);
    return ["faults__echo", "garbled__echo", "remote__echo"].every((n) => names.includes(n));
  });
});

afterAll(async () => {
  await client?.close();
  await gw?.stop();
  if (remote) await killed(remote.child);
  website?.close();
});

describe("upstream faults", () => {
  it("times out a hanging call with UpstreamTimeout naming the limit, and cancels it upstream", async () => {
    const result = await within(HANG_MS, client.callTool({ name: "faults__hang", arguments: {} }));
    expect(result.isError).toBe(true);
    expect(toolError(result)).toMatchObject({ code: "UpstreamTimeout", upstream: "faults" });
    expect(textOf(result)).toMatch(/400 ms.*timeout\.attemptMs/);
    await eventually(async () => (await stats()).cancelled.length === 1);
  });

  it("keeps a call alive while progress drips in, each update restarting the attempt timer", async () => {
    const steps = (ATTEMPT_MS / PROGRESS_EVERY_MS) * 1.25;
    const seen: number[] = [];
    const started = performance.now();
    const result = await within(
      HANG_MS,
      client.callTool(
        { name: "faults__progress", arguments: { steps, intervalMs: PROGRESS_EVERY_MS } },
        undefined,
        { onprogress: (p) => void seen.push(p.progress) },
      ),
    );
    expect(textOf(result)).toBe("done");
    expect(seen).toEqual(Array.from({ length: steps }, (_, i) => i + 1));
    // The call outlived one attempt timeout (a lower bound: a slow machine only makes it longer).
    expect(performance.now() - started).toBeGreaterThan(ATTEMPT_MS);
  });

  it("ends a progress drip that outlasts the call deadline with UpstreamTimeout and cancels it upstream", async () => {
    const before = (await stats("remote")).cancelled.length;
    const steps = 1_000;
    const seen: number[] = [];
    const result = await within(
      HANG_MS,
      client.callTool(
        { name: "remote__progress", arguments: { steps, intervalMs: PROGRESS_EVERY_MS } },
        undefined,
        { onprogress: (p) => void seen.push(p.progress) },
      ),
    );
    expect(toolError(result)).toMatchObject({ code: "UpstreamTimeout", upstream: "remote" });
    // The call deadline ended it, not the attempt timeout (which the drips kept restarting).
    expect(textOf(result)).toMatch(new RegExp(`call deadline ${CALL_MS} ms.*timeout\\.callMs`));
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.length).toBeLessThan(steps);
    await eventually(async () => (await stats("remote")).cancelled.length === before + 1);
  });

  it("ignores a non-JSON line on a stdio upstream's stdout and keeps serving it", async () => {
    const result = await within(HANG_MS, client.callTool({ name: "faults__garbage", arguments: {} }));
    expect(textOf(result)).toBe("ok");
    const next = await client.callTool({ name: "faults__echo", arguments: { text: "after garbage" } });
    expect(textOf(next)).toBe("after garbage");
  });

  it("serves an upstream that printed garbage before the protocol started", async () => {
    const result = await client.callTool({ name: "garbled__echo", arguments: { text: "fine" } });
    expect(textOf(result)).toBe("fine");
  });

  it("names what a stdio upstream wrote to stdout when it never completes the handshake", async () => {
    // Logs to stdout, then reads requests and never answers.
    const script =
      'process.stdout.write("Server started\\n[info] listening on stdio\\n"); process.stdin.resume()';
    const mute = await startGateway({
      mcpServers: { mute: { command: NODE, args: ["-e", script] } },
      upstreams: { mute: { ...plain, connectTimeoutMs: 1_000 } },
    });
    try {
      // An attempt that timed out before the child wrote anything says only the timeout; a later one names it.
      const status = await eventually(() =>
        mute.gateway.registry.statuses().find((s) => s.name === "mute" && s.lastError?.includes("stdout")),
      );
      expect(status?.lastError).toBe(
        "initialize got no answer within 1000 ms (upstreams.mute.connectTimeoutMs); its stdout had lines that " +
          'are not JSON-RPC (a stdio server must log to stderr), the last: "Server started", "[info] listening on stdio"',
      );
    } finally {
      await mute.stop();
    }
  });

  // Correctness only: what passing 8 MiB through costs is measured by `node bench/big-result.ts`.
  it("passes an oversized result through whole and keeps serving", async () => {
    const bytes = 8 * 1024 * 1024;
    const result = await within(HANG_MS, client.callTool({ name: "faults__big", arguments: { bytes } }));
    const text = textOf(result);
    expect(text.length).toBe(bytes);
    expect(/^x*$/.test(text)).toBe(true);
    const next = await client.callTool({ name: "faults__echo", arguments: { text: "small" } });
    expect(textOf(next)).toBe("small");
  });

  it("fails a call whose stdio upstream crashes with ConnectionLost naming it, then serves the restarted one", async () => {
    const result = await within(HANG_MS, client.callTool({ name: "faults__crash", arguments: {} }));
    expect(toolError(result)).toMatchObject({ code: "ConnectionLost", upstream: "faults" });
    expect(textOf(result)).toContain('upstream "faults"');
    const after = await eventually(
      async () => {
        const r = await client.callTool({ name: "faults__echo", arguments: { text: "back" } });
        return r.isError ? undefined : r;
      },
      30_000,
      100,
    );
    expect(textOf(after)).toBe("back");
  });

  it("fails a call whose HTTP upstream is killed mid-call with ConnectionLost, then serves it when it returns", async () => {
    const pending = client.callTool({ name: "remote__hang", arguments: {} });
    await eventually(() => gw.gateway.pipelines.bulkheadStates().some((b) => b.inFlight > 0));
    await killed(remote.child);
    const result = await within(HANG_MS, pending);
    expect(result.isError).toBe(true);
    expect(toolError(result)).toMatchObject({ code: "ConnectionLost", upstream: "remote" });
    const down = await client.callTool({ name: "remote__echo", arguments: { text: "gone?" } });
    expect(down.isError).toBe(true);
    expect(toolError(down).upstream).toBe("remote");

    remote = await spawnRemote(Number(new URL(remote.url).port));
    const back = await eventually(
      async () => {
        const r = await client.callTool({ name: "remote__echo", arguments: { text: "back" } });
        return r.isError ? undefined : r;
      },
      30_000,
      100,
    );
    expect(textOf(back)).toBe("back");
  });

  it("reports an upstream that refuses to start as down, with its stderr, and serves the others", async () => {
    const status = await eventually(() =>
      gw.gateway.registry.statuses().find((s) => s.name === "refuses" && s.state === "down"),
    );
    expect(status?.lastError).toContain("--fail-start");
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith("refuses__"))).toBe(false);
    // A tool of the down upstream fails naming that upstream and why, not "no such tool".
    const refused = await client.callTool({ name: "refuses__echo", arguments: {} });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toMatch(
      /"refuses__echo" would come from upstream "refuses", which is down: .+; toolgate (?:reconnects at \d{4}-.+Z|is connecting to it now), call again once it is ready$/s,
    );
    expect(textOf(await client.callTool({ name: "garbled__echo", arguments: { text: "up" } }))).toBe("up");
  });

  it("says what a refused address, a missing command and a web page's url mean, and what to check", async () => {
    const lastError = (name: string) =>
      eventually(() => gw.gateway.registry.statuses().find((s) => s.name === name && s.lastError)?.lastError);
    expect(await lastError("closed")).toMatch(
      /\(ECONNREFUSED\): nothing accepts connections at that address; is the server running/,
    );
    expect(await lastError("missing")).toBe(
      "spawn toolgate-test-no-such-command ENOENT: command not found: put it on PATH, or give its full path (or one starting ./, relative to the config file)",
    );
    const wrongPath =
      'check its path (a Streamable HTTP server is often at …/mcp; a legacy SSE server at …/sse, with "type": "sse")';
    expect(await lastError("homepage")).toBe(
      `Streamable HTTP error: Unexpected content type: text/html: the url serves a web page: ${wrongPath}`,
    );
    expect(await lastError("notfound")).toBe(
      `Streamable HTTP error: Error POSTing to endpoint: HTTP 404: <html><h1>Hi</h1></html>: nothing serves MCP at that url: ${wrongPath}`,
    );
    const call = await client.callTool({ name: "missing__anything", arguments: {} });
    expect(textOf(call)).toContain("command not found");
  });

  it("leaks nothing: every bulkhead slot and lock is released after the faults", async () => {
    const states = gw.gateway.pipelines.bulkheadStates();
    expect(states.length).toBeGreaterThan(0);
    for (const state of states) expect(state, state.name).toMatchObject({ inFlight: 0, queued: 0 });
    expect(gw.gateway.pipelines.locks.size).toBe(0);
  });
});
