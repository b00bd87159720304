/**
 * An upstream's health as /status, /metrics and the registry report it: one that hangs at initialize is
 * down with the timeout as its error and its restarts counted; an idle HTTP upstream that dies, or whose
 * proxy answers 502, is seen down by the health-check ping, without any call.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { createInterface } from "node:readline";
import { afterEach, expect, it } from "vitest";
import type { UpstreamStatus } from "../../src/upstreams/upstream.ts";
import { FAULT_SERVER, type InProcessGateway, NODE, startGateway } from "../helpers/gateway.ts";

let gw: InProcessGateway | undefined;
let child: ChildProcess | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  child = undefined;
});

/** The fault fixture over Streamable HTTP as its own process, so it can be killed. */
async function spawnRemote(): Promise<{ child: ChildProcess; url: string }> {
  const proc = spawn(NODE, [FAULT_SERVER, "--transport", "http", "--port", "0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: proc.stdout as NodeJS.ReadableStream }).once("line", resolve);
    proc.once("exit", (code) => reject(new Error(`remote fixture exited with ${code}`)));
  });
  return { child: proc, url: (JSON.parse(line) as { url: string }).url };
}

/** The first `state` event of `name` that satisfies `check` (bounded). */
function stateEvent(
  gateway: InProcessGateway,
  name: string,
  check: (status: UpstreamStatus) => boolean,
  timeoutMs = 20_000,
): Promise<UpstreamStatus> {
  const { registry } = gateway.gateway;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      registry.off("state", onState);
      reject(new Error(`no matching state event for ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onState = (_: unknown, status: UpstreamStatus) => {
      if (status.name !== name || !check(status)) return;
      clearTimeout(timer);
      registry.off("state", onState);
      resolve(status);
    };
    registry.on("state", onState);
  });
}

it("shows an upstream that hangs at initialize as down, naming the timeout, and counts its restarts", async () => {
  gw = await startGateway({
    mcpServers: {
      stuck: { command: NODE, args: [FAULT_SERVER, "--hang-initialize"] },
    },
    upstreams: {
      stuck: { connectTimeoutMs: 300, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } },
    },
  });
  // The second process is running: the first one's initialize timed out.
  const restarted = await stateEvent(gw, "stuck", (s) => s.restarts >= 1);
  expect(restarted).toMatchObject({ state: "down" });
  expect(restarted.lastError).toMatch(
    /initialize got no answer within 300 ms \(upstreams\.stuck\.connectTimeoutMs\)/,
  );

  const report = (await (await fetch(`${gw.base}/status`)).json()) as { upstreams: UpstreamStatus[] };
  const stuck = report.upstreams.find((u) => u.name === "stuck");
  expect(stuck).toMatchObject({ state: "down", lastError: expect.stringContaining("initialize") });
  expect(stuck?.restarts).toBeGreaterThanOrEqual(1);
});

it("sees an idle HTTP upstream that was killed as down, without any call", async () => {
  const remote = await spawnRemote();
  child = remote.child;
  gw = await startGateway({
    mcpServers: { remote: { url: remote.url } },
    upstreams: { remote: { healthCheck: { intervalMs: 200, timeoutMs: 2_000 } } },
  });
  const upstream = gw.gateway.registry.get("remote");
  expect(await upstream?.whenReady(20_000)).toBe(true);
  const down = stateEvent(gw, "remote", (s) => s.state === "down");
  const exited = new Promise((resolve) => remote.child.once("exit", resolve));
  remote.child.kill("SIGKILL");
  await exited;

  // The broken event stream or the next ping, whichever sees it first.
  await down;
  const metrics = await (await fetch(`${gw.base}/metrics`)).text();
  expect(metrics).toMatch(/toolgate_upstream_up\{[^}]*toolgate_upstream="remote"[^}]*\} 0/);
});

it("marks an idle HTTP upstream that stopped answering down when its ping times out", async () => {
  const remote = await spawnRemote();
  child = remote.child;
  gw = await startGateway({
    mcpServers: { remote: { url: remote.url } },
    upstreams: { remote: { healthCheck: { intervalMs: 200, timeoutMs: 500 } } },
  });
  expect(await gw.gateway.registry.get("remote")?.whenReady(20_000)).toBe(true);
  const down = stateEvent(gw, "remote", (s) => s.state === "down");
  // Frozen, its sockets open: like a host that vanished. Only a request can tell.
  remote.child.kill("SIGSTOP");

  const status = await down;
  expect(status.lastError).toBe(
    "health check ping failed: no answer within 500 ms (upstreams.remote.healthCheck.timeoutMs)",
  );
});

it("marks an idle HTTP upstream down when the proxy in front of it answers the ping 502", async () => {
  const remote = await spawnRemote();
  child = remote.child;
  const target = new URL(remote.url);
  // A reverse proxy (an ingress) that forwards until its backend is gone, then answers 502 Bad Gateway.
  let backendGone = false;
  const proxy = createServer((req, res) => {
    if (backendGone)
      return void res.writeHead(502, { "content-type": "text/html" }).end("<h1>502 Bad Gateway</h1>");
    const forward = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = proxy.address() as AddressInfo;
    gw = await startGateway({
      mcpServers: { remote: { url: `http://127.0.0.1:${port}${target.pathname}` } },
      upstreams: { remote: { healthCheck: { intervalMs: 200, timeoutMs: 2_000 } } },
    });
    expect(await gw.gateway.registry.get("remote")?.whenReady(20_000)).toBe(true);
    const down = stateEvent(gw, "remote", (s) => s.state === "down");
    backendGone = true;
    const status = await down;
    expect(status.lastError).toMatch(/^health check ping failed: upstream "remote" answered .*HTTP 502/);
  } finally {
    proxy.closeAllConnections();
    proxy.close();
  }
});
