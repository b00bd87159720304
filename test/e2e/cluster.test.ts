/**
 * Three real gateway processes (`node src/main.ts serve`) sharing a real redis-server, in front of one
 * fault fixture that records its peak concurrency, driven by SDK clients in round robin. Short TTLs and
 * ping periods keep every case to a few seconds; the assertions are about counts, not timings.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";
import { RedisServer, redisServerBinary } from "../helpers/redis.ts";

const HAS_REDIS = redisServerBinary() !== undefined;
const HAS_HAPROXY = redisServerBinary("haproxy") !== undefined;
if (!HAS_REDIS)
  console.warn("cluster e2e skipped: redis-server is not installed (apt-get install redis-server)");

const MAIN_KEY = "main-key-0123456789abcdef0123456789";
const LIMITED_KEY = "limited-key-0123456789abcdef01234567";
const LEASE_TTL_MS = 1_000;
const PREFIX = `test-${process.pid}:`;
const SESSION_KEY = "session-key-0123456789abcdef0123456789";

interface Stats {
  calls: Record<string, number>;
  inFlight: number;
  peakByTool: Record<string, number>;
  overlaps: Record<string, number>;
}

type CallResult = { isError?: boolean; content?: unknown; _meta?: Record<string, unknown> };

function errorCode(result: CallResult): string | undefined {
  return (result._meta?.["toolgate/error"] as { code?: string } | undefined)?.code;
}

async function spawnFixture(): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(NODE, [FAULT_SERVER, "--transport", "http", "--port", "0"], {
    stdio: ["ignore", "pipe", "ignore"],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`fault fixture exited with ${code}`)));
  });
  return { child, url: (JSON.parse(line) as { url: string }).url };
}

/** An SDK client; `route` (when given) picks the replica of each HTTP request. */
async function connect(url: string, key: string, route?: () => string): Promise<Client> {
  const client = new Client({ name: "cluster-test", version: "1.0.0" });
  const routed = route && {
    fetch: (input: string | URL, init?: RequestInit) => {
      const target = new URL(input);
      target.host = new URL(route()).host;
      return fetch(target, init);
    },
  };
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { "X-API-Key": key } },
      ...routed,
    }),
  );
  return client;
}

async function metric(replica: GatewayProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${replica.base}/metrics`, { headers: { "X-API-Key": MAIN_KEY } })).text();
  const lines = text.split("\n").filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return lines.length === 0 ? undefined : lines.reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
}

describe.skipIf(!HAS_REDIS)("three replicas sharing Redis", () => {
  let redis: RedisServer;
  let fixture: { child: ChildProcess; url: string };
  let replicas: GatewayProcess[] = [];
  let clients: Client[] = [];
  let limited: Client[] = [];
  let haproxy: ChildProcess | undefined;
  let alive = [0, 1, 2];
  let turn = 0;

  /** The next live replica's client, round robin. */
  const next = (pool: Client[] = clients) => pool[alive[turn++ % alive.length] as number] as Client;
  const call = (name: string, args: Record<string, unknown> = {}, pool?: Client[]) =>
    next(pool).callTool({ name, arguments: args }) as Promise<CallResult>;
  const stats = async () => JSON.parse(textOf(await call("fs__stats"))) as Stats;
  const reset = () => call("fs__reset_stats");

  beforeAll(async () => {
    redis = await RedisServer.start();
    fixture = await spawnFixture();
    const config = {
      gateway: { maxInFlight: 3, logLevel: "info" },
      mcpServers: { fs: { type: "http", url: fixture.url }, free: { type: "http", url: fixture.url } },
      defaults: { retry: { maxAttempts: 1 }, breaker: { enabled: false } },
      upstreams: {
        fs: {
          tools: { slow: { lock: { timeoutMs: 20_000 } }, work: { lock: { key: "key", timeoutMs: 20_000 } } },
        },
      },
      security: {
        auth: {
          apiKeys: [
            { id: "main", key: MAIN_KEY },
            { id: "limited", key: LIMITED_KEY },
          ],
        },
        principals: { limited: { allow: ["*"], rateLimit: { perMinute: 6 } } },
        // The test reads /metrics and /status/cluster with the main key: an operator's.
        operators: { principals: ["main"] },
        pinning: { mode: "off" },
      },
      cluster: {
        redis: redis.url,
        keyPrefix: PREFIX,
        replicas: 3,
        leaseTtlMs: LEASE_TTL_MS,
        pollMs: 20,
        pingMs: 200,
        commandTimeoutMs: 500,
        sessions: { key: SESSION_KEY },
      },
    };
    replicas = await Promise.all([0, 1, 2].map(() => spawnGateway(config)));
    clients = await Promise.all(replicas.map((r) => connect(r.url, MAIN_KEY)));
    limited = await Promise.all(replicas.map((r) => connect(r.url, LIMITED_KEY)));
    for (const r of replicas) expect(await metric(r, "toolgate_cluster_store_up")).toBe(1);
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled([...clients, ...limited].map((c) => c.close()));
    await Promise.allSettled(replicas.map((r) => r.stop("SIGKILL")));
    haproxy?.kill("SIGKILL");
    fixture?.child.kill("SIGKILL");
    await redis?.stop();
  });

  it("runs an exclusive tool one call at a time across the replicas", async () => {
    await reset();
    const results = await Promise.all(Array.from({ length: 20 }, () => call("fs__slow", { ms: 30 })));
    expect(results.filter((r) => r.isError)).toEqual([]);
    const s = await stats();
    expect(s.calls.slow).toBe(20);
    expect(s.peakByTool.slow).toBe(1);
  });

  it("serializes a keyed lock per key only", async () => {
    await reset();
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => call("fs__work", { key: `k${i % 2}`, ms: 60 })),
    );
    expect(results.filter((r) => r.isError)).toEqual([]);
    const s = await stats();
    expect(s.overlaps).toEqual({});
    expect(s.peakByTool.work).toBe(2);
  });

  it("holds the global cap across the replicas at the upstream", async () => {
    await reset();
    const results = await Promise.all(Array.from({ length: 15 }, () => call("free__slow", { ms: 80 })));
    expect(results.filter((r) => r.isError)).toEqual([]);
    const s = await stats();
    expect(s.calls.slow).toBe(15);
    // Without the shared cap each replica would allow 3: up to 9 at once.
    expect(s.peakByTool.slow).toBeLessThanOrEqual(3);
  });

  it("shares a principal's rate limit across the replicas", async () => {
    const results = await Promise.all(
      Array.from({ length: 12 }, () => call("fs__echo", { text: "x" }, limited)),
    );
    expect(results.filter((r) => !r.isError)).toHaveLength(6);
    expect(results.filter((r) => r.isError).map(errorCode)).toEqual(Array(6).fill("RateLimited"));
  });

  it.skipIf(!HAS_HAPROXY)("serves 2025 sessions through HAProxy, pinned by Mcp-Session-Id", async () => {
    const port = await freePort();
    const env: Record<string, string> = { ...process.env, LISTEN: `127.0.0.1:${port}` } as Record<
      string,
      string
    >;
    replicas.forEach((r, i) => {
      env[`REPLICA_${i + 1}`] = r.base.replace(/^http:\/\//, "");
    });
    haproxy = spawn("haproxy", ["-db", "-f", "deploy/haproxy/haproxy.cfg"], { env, stdio: "ignore" });
    const url = `http://127.0.0.1:${port}/mcp`;
    await eventually(async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, 10_000, 100);
    // Each session's requests after `initialize` must reach the replica that created it, or get 404.
    const balanced = await Promise.all(Array.from({ length: 6 }, () => connect(url, MAIN_KEY)));
    try {
      await reset();
      const results = await Promise.all(
        Array.from({ length: 18 }, (_, i) =>
          (balanced[i % 6] as Client).callTool({ name: "fs__slow", arguments: { ms: 20 } }),
        ),
      );
      expect(results.filter((r) => r.isError)).toEqual([]);
      const s = await stats();
      expect(s.calls.slow).toBe(18);
      expect(s.peakByTool.slow).toBe(1);
      // The sessions were spread: every replica holds one or more besides the two direct clients'.
      for (const r of replicas) expect(await metric(r, "toolgate_sessions_open")).toBeGreaterThanOrEqual(3);
    } finally {
      await Promise.allSettled(balanced.map((c) => c.close()));
    }
  });

  it("serves one 2025 session from every replica in turn (sealed session ids)", async () => {
    let n = 0;
    const client = await connect(
      replicas[0]?.url as string,
      MAIN_KEY,
      () => replicas[n++ % 3]?.base as string,
    );
    try {
      const transport = client.transport as StreamableHTTPClientTransport;
      expect(transport.sessionId).toMatch(/^tg1\./);
      // Without the sealed id, the second request (on another replica) would get 404.
      for (let i = 0; i < 6; i++) {
        const result = (await client.callTool({
          name: "fs__echo",
          arguments: { text: `hop ${i}` },
        })) as CallResult;
        expect(result.isError).toBeFalsy();
        expect(textOf(result)).toContain(`hop ${i}`);
      }
      expect(n).toBeGreaterThanOrEqual(7);
      // A tampered id, or the id under another principal's key, is refused like any unknown session.
      const post = (sessionId: string, key: string) =>
        fetch(replicas[1]?.url as string, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            "mcp-session-id": sessionId,
            "x-api-key": key,
          },
          body: JSON.stringify({ jsonrpc: "2.0", id: 9, method: "tools/list" }),
        });
      const id = transport.sessionId as string;
      const tampered = id.slice(0, 12) + (id[12] === "A" ? "B" : "A") + id.slice(13);
      expect((await post(tampered, MAIN_KEY)).status).toBe(404);
      expect((await post(id, LIMITED_KEY)).status).toBe(404);
    } finally {
      await client.close();
    }
  });

  it("refuses exclusive calls while Redis is down, runs nothing twice, and returns to shared mode", async () => {
    await reset();
    // Load in flight when Redis dies: every call ends as a success or a LockUnavailable refusal.
    const load = Promise.all(Array.from({ length: 12 }, () => call("fs__slow", { ms: 40 })));
    await eventually(async () => ((await stats()).calls.slow ?? 0) >= 2, 10_000, 10);
    await redis.pause();
    const during = await load;
    for (const r of during) if (r.isError) expect(errorCode(r)).toBe("LockUnavailable");
    for (const r of replicas) {
      await eventually(
        () => r.logs.some((l) => String(l.msg).startsWith("cluster store unreachable")),
        10_000,
      );
      expect(await metric(r, "toolgate_cluster_store_up")).toBe(0);
    }
    const refused = await Promise.all(Array.from({ length: 6 }, () => call("fs__slow", { ms: 10 })));
    expect(refused.map(errorCode)).toEqual(Array(6).fill("LockUnavailable"));
    expect(textOf(refused[0])).toMatch(/LockUnavailable.*not run/);
    const s = await stats();
    const ok = during.filter((r) => !r.isError).length;
    // The upstream never saw two at a time, ran every success once and none of the refused calls.
    expect(s.peakByTool.slow).toBe(1);
    expect(s.calls.slow).toBeGreaterThanOrEqual(ok);
    expect(s.calls.slow).toBeLessThanOrEqual(during.length);
    // Caps fall back to local limits (3 / 3 replicas = 1 per replica): calls still run.
    const capped = await Promise.all(Array.from({ length: 6 }, () => call("free__slow", { ms: 20 })));
    expect(capped.filter((r) => r.isError)).toEqual([]);

    await redis.resume();
    for (const r of replicas) {
      await eventually(async () => (await metric(r, "toolgate_cluster_store_up")) === 1, 15_000, 100);
    }
    await reset();
    const after = await Promise.all(Array.from({ length: 10 }, () => call("fs__slow", { ms: 20 })));
    expect(after.filter((r) => r.isError)).toEqual([]);
    expect((await stats()).peakByTool.slow).toBe(1);
  });

  it("lets the next call run once a killed replica's lease expires, and its sessions go on elsewhere", async () => {
    await reset();
    // A session created on the replica about to die; its requests move to replica 0 afterwards.
    let target = replicas[2]?.base as string;
    const survivor = await connect(replicas[2]?.url as string, MAIN_KEY, () => target);
    const holder = clients[2] as Client;
    const held = holder.callTool({ name: "fs__slow", arguments: { ms: 8_000 } }).catch(() => undefined);
    await eventually(async () => (await stats()).inFlight === 1, 10_000, 20);
    // The cluster view of any replica shows all three and who holds the lock.
    const view = async (i: number) =>
      (await (
        await fetch(`${replicas[i]?.base}/status/cluster`, { headers: { "X-API-Key": MAIN_KEY } })
      ).json()) as {
        instance: string;
        mode: string;
        cluster: { replicas: Array<{ id: string }>; leases: Array<{ lock: string; holder: string }> };
      };
    const holderId = (await view(2)).instance;
    const seen = await view(0);
    expect(seen.mode).toBe("shared");
    const exposition = await (
      await fetch(`${replicas[0]?.base}/metrics`, { headers: { "X-API-Key": MAIN_KEY } })
    ).text();
    expect(exposition).toContain(`service_instance_id="${seen.instance}"`);
    expect(seen.cluster.replicas.map((r) => r.id)).toContain(holderId);
    expect(seen.cluster.replicas).toHaveLength(3);
    expect(seen.cluster.leases).toContainEqual(
      expect.objectContaining({ lock: "fs__slow", holder: holderId }),
    );
    replicas[2]?.child.kill("SIGKILL");
    alive = [0, 1];
    // The dead replica's lease still holds the lock cluster-wide, for at most its TTL.
    const direct = new Redis(redis.url);
    const ttl = await direct.pttl(`${PREFIX}lease:fs__slow`);
    direct.disconnect();
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(LEASE_TTL_MS);
    const started = performance.now();
    const result = await call("fs__slow", { ms: 10 });
    const waited = performance.now() - started;
    expect(result.isError).toBeFalsy();
    // Far sooner than the 8 s the dead replica's call would have held the lock: the lease expired.
    expect(waited).toBeLessThan(6_000);
    void held;
    target = replicas[0]?.base as string;
    const moved = (await survivor.callTool({
      name: "fs__echo",
      arguments: { text: "still here" },
    })) as CallResult;
    expect(textOf(moved)).toContain("still here");
    await survivor.close();
  });
});
