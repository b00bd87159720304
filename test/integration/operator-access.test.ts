/**
 * The operator routes over real HTTP: with authentication on, /status, the status page and /metrics answer
 * only operators (and /metrics its scrape keys), while /healthz and /readyz stay open; without
 * authentication they are served to loopback clients as before; `telemetry.metrics.listen` serves /metrics
 * alone on an address of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";

const OPS_KEY = "ops-key-0123456789abcdef";
const USER_KEY = "user-key-0123456789abcdef";
const SCRAPE_KEY = "scrape-key-0123456789abcdef";

let upstream: RunningFaultServer;

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
});

afterAll(async () => {
  await upstream?.close();
});

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const basic = (key: string) => ({ authorization: `Basic ${Buffer.from(`ops:${key}`).toString("base64")}` });

describe("with API keys configured", () => {
  let gw: InProcessGateway;

  beforeAll(async () => {
    gw = await startGateway({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      security: {
        auth: {
          apiKeys: [
            { id: "ops", key: OPS_KEY },
            { id: "user", key: USER_KEY },
          ],
        },
        operators: { principals: ["ops"], metricsKeys: [{ id: "prometheus", key: SCRAPE_KEY }] },
      },
    });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  const get = (path: string, headers: Record<string, string> = {}) => fetch(`${gw.base}${path}`, { headers });

  it.each(["/status", "/status/stream", "/", "/ui", "/metrics"])(
    "answers %s without credentials with 401",
    async (path) => {
      const res = await get(path);
      expect(res.status).toBe(401);
      const body = await res.text();
      expect(body).toMatch(/authentication required/);
      expect(body).not.toMatch(/faults/);
    },
  );

  it("challenges a browser on the page with HTTP Basic", async () => {
    const res = await get("/");
    expect(res.headers.get("www-authenticate")).toMatch(/^Basic realm="toolgate operators"/);
  });

  it.each(["/status", "/", "/metrics"])(
    "refuses %s to a principal that is not an operator (403)",
    async (path) => {
      const res = await get(path, bearer(USER_KEY));
      expect(res.status).toBe(403);
      expect(await res.text()).toMatch(
        /principal "user" is not an operator: list it in security.operators.principals/,
      );
    },
  );

  it("serves an operator's key as Bearer and as the HTTP Basic password", async () => {
    const status = await get("/status", bearer(OPS_KEY));
    expect(status.status).toBe(200);
    expect(((await status.json()) as { upstreams: unknown[] }).upstreams).toHaveLength(1);
    const page = await get("/", basic(OPS_KEY));
    expect(page.status).toBe(200);
    expect(await page.text()).toContain("<title>toolgate status</title>");
    expect((await get("/metrics", bearer(OPS_KEY))).status).toBe(200);
  });

  it("takes a scrape key on /metrics and nowhere else", async () => {
    const metrics = await get("/metrics", bearer(SCRAPE_KEY));
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("toolgate_upstream_up");
    expect((await get("/status", bearer(SCRAPE_KEY))).status).toBe(401);
    expect((await get("/", basic(SCRAPE_KEY))).status).toBe(401);
  });

  it("keeps /healthz and /readyz open, /readyz with counts but no upstream's name, version or error", async () => {
    expect((await get("/healthz")).status).toBe(200);
    const ready = await eventually(async () => {
      const res = await get("/readyz");
      return res.status === 200 ? await res.text() : undefined;
    });
    expect(JSON.parse(ready ?? "")).toEqual({
      ready: true,
      detail: { catalog: "complete", draining: false, upstreams: { ready: 1 } },
    });
    expect(ready).not.toMatch(/faults/);
  });
});

describe("with an OAuth-free, key-free loopback gateway", () => {
  let gw: InProcessGateway;

  beforeAll(async () => {
    gw = await startGateway({
      mcpServers: { faults: { type: "http", url: upstream.url } },
      telemetry: { metrics: { listen: "127.0.0.1:0" } },
    });
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it("serves the operator routes to loopback clients", async () => {
    expect((await fetch(`${gw.base}/status`)).status).toBe(200);
    expect((await fetch(`${gw.base}/metrics`)).status).toBe(200);
  });

  it("still refuses a rebinding Host on them", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${gw.base}/status`, { headers: { host: "evil.example:80" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.once("error", reject).end();
    });
    expect(status).toBe(403);
  });

  it("serves /metrics alone on telemetry.metrics.listen", async () => {
    const port = await gw.gateway.metricsPort();
    expect(port).toBeGreaterThan(0);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("toolgate_upstream_up");
    expect((await fetch(`http://127.0.0.1:${port}/status`)).status).toBe(404);
  });
});
