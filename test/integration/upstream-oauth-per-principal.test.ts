/**
 * Per-principal upstream credentials (auth.oauth.perPrincipal) against a real authorization server
 * (oidc-provider) and an MCP server that validates its tokens: two API-key principals of one gateway, each
 * connecting its own account through the gateway's consent routes, each call reaching the upstream with the
 * caller's own token and never another principal's.
 */
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  ElicitationCompleteNotificationSchema,
  ElicitRequestSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileCredentialStore } from "../../src/upstreams/auth/credential-store.ts";
import {
  type AuthServer,
  consentInBrowser,
  type ProtectedMcp,
  startAuthServer,
  startProtectedMcp,
} from "../fixtures/oauth.ts";
import {
  eventually,
  type GatewayProcess,
  type InProcessGateway,
  NODE,
  ROOT,
  spawnGateway,
  startGateway,
  textOf,
  writeConfig,
} from "../helpers/gateway.ts";

const KEY_A = "key-of-principal-a-0123456789";
const KEY_B = "key-of-principal-b-0123456789";
const KEY_C = "key-of-principal-c-0123456789";
/** Principals a, b and c, each by its API key. */
const API_KEYS = [
  { id: "a", key: KEY_A },
  { id: "b", key: KEY_B },
  { id: "c", key: KEY_C },
];

let as: AuthServer;
let mcp: ProtectedMcp;
let gateway: GatewayProcess;
let configFile: string;
const clients: Client[] = [];

beforeAll(async () => {
  let resource = "";
  let issuer = "";
  as = await startAuthServer({ resource: () => resource });
  issuer = as.issuer;
  mcp = await startProtectedMcp(() => issuer);
  resource = mcp.url;
});

afterAll(async () => {
  await mcp?.close();
  await as?.close();
});

async function connectAs(key: string, url = gateway.url): Promise<Client> {
  const client = new Client({ name: "per-principal-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  clients.push(client);
  return client;
}

/** Consent at upstream `q` started with the same credentials as /mcp (no ticket), as a client with a browser would. */
async function consentWithKey(base: string, key: string, account: string): Promise<void> {
  const start = await fetch(`${base}/oauth/upstreams/q/authorize`, {
    headers: { authorization: `Bearer ${key}` },
    redirect: "manual",
  });
  expect(start.status).toBe(302);
  const page = await consentInBrowser(new URL(String(start.headers.get("location"))), { account });
  expect(page.text).toContain("is connected");
}

/** A gateway whose upstream `q` keeps per-principal connections with `pool`; principals a, b and c by API key. */
async function startPoolGateway(
  pool: { maxConnections: number; idleTimeoutMs: number },
  extra: Record<string, unknown> = {},
): Promise<InProcessGateway> {
  const stateDir = await mkdtemp(join(tmpdir(), "toolgate-pool-"));
  return startGateway({
    gateway: { stateDir },
    mcpServers: { q: { url: mcp.url, auth: { oauth: { perPrincipal: true, ...pool } } } },
    security: {
      auth: { apiKeys: API_KEYS },
    },
    ...extra,
  });
}

/** A and B connect `accountA` and `accountB` at `q`, then each opens a session that lists q's tools. */
async function principalsConnected(
  gw: InProcessGateway,
  accountA: string,
  accountB: string,
): Promise<{ a: Client; b: Client }> {
  await consentWithKey(gw.base, KEY_A, accountA);
  await consentWithKey(gw.base, KEY_B, accountB);
  const a = await connectAs(KEY_A, gw.url);
  const b = await connectAs(KEY_B, gw.url);
  await eventually(async () => (await a.listTools()).tools.some((t) => t.name === "q__whoami"), 15_000);
  return { a, b };
}

/** Runs `test` against its own gateway from startPoolGateway(pool), stopped afterwards. */
async function withPoolGateway(
  pool: { maxConnections: number; idleTimeoutMs: number },
  test: (gw: InProcessGateway) => Promise<void>,
): Promise<void> {
  const gw = await startPoolGateway(pool);
  try {
    await test(gw);
  } finally {
    await gw.stop();
  }
}

/** Whose resource updates (the upstream names the account in `_meta.who`) reach `client`, in order. */
function updatesOf(client: Client): unknown[] {
  const got: unknown[] = [];
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void got.push(n.params._meta?.who));
  return got;
}

/** Ends `client`'s session at the gateway (DELETE), as a client that is done does. */
async function endSession(client: Client): Promise<void> {
  await (client.transport as StreamableHTTPClientTransport).terminateSession();
  await client.close();
}

/** Whether the upstream session of `account` ended. */
const ended = (account: string) => mcp.ended.includes(account);

/** `closed`'s connection closes (its upstream session ends) while `kept`'s stays, leaving `open` in the pool. */
async function closesOnly(gw: InProcessGateway, closed: string, kept: string, open: number): Promise<void> {
  await eventually(() => ended(closed), 15_000);
  expect(ended(kept)).toBe(false);
  expect(gw.gateway.principals?.size("q")).toBe(open);
}

/** An update of `account`'s resource reaches its subscribed session, whose updates `got` collects. */
async function updateReaches(got: unknown[], account: string): Promise<void> {
  await mcp.updated(account);
  await eventually(() => got.length > 0);
  expect(got).toEqual([account]);
}

/** `toolgate ARGS` as a person runs it. */
function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(NODE, [join(ROOT, "src/main.ts"), ...args], { cwd: dirname(configFile) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c;
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c;
    });
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** The consent URL an isError result names. */
function authorizeUrl(result: unknown): URL {
  const url = /(http\S+\/oauth\/upstreams\/p\/authorize\?ticket=\S+)/.exec(textOf(result))?.[1];
  if (!url) throw new Error(`no authorize URL in ${textOf(result)}`);
  return new URL(url);
}

describe("an upstream with per-principal credentials", () => {
  let a: Client;
  let b: Client;
  let urlA: URL;

  beforeAll(async () => {
    configFile = await writeConfig({
      mcpServers: { p: { url: mcp.url, auth: { oauth: { perPrincipal: true } } } },
      upstreams: { p: { reconnect: { initialDelayMs: 100, maxDelayMs: 300 } } },
      security: {
        auth: { apiKeys: API_KEYS },
      },
    });
    gateway = await spawnGateway(configFile);
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gateway?.stop();
  });

  it("answers a principal without a token with an isError naming where to connect its account", async () => {
    a = await connectAs(KEY_A);
    const result = await a.callTool({ name: "p__whoami", arguments: {} });
    expect(result.isError).toBe(true);
    expect(textOf(result)).toContain('upstream "p" needs your own account: open');
    urlA = authorizeUrl(result);
    expect(urlA.origin).toBe(gateway.base);
    const meta = (result._meta as Record<string, { authorizeUrl?: string }>)["toolgate/error"];
    expect(meta?.authorizeUrl).toBe(urlA.href);
    expect(mcp.callers).toEqual([]);
  });

  it("refuses to start consent without a valid ticket or credentials", async () => {
    const bare = await fetch(`${gateway.base}/oauth/upstreams/p/authorize`, { redirect: "manual" });
    expect(bare.status).toBe(401);
    const forged = new URL(urlA);
    forged.searchParams.set("ticket", `${urlA.searchParams.get("ticket")?.split(".")[0]}.forged`);
    const refused = await fetch(forged, { redirect: "manual" });
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain("not valid");
    const callback = await fetch(`${gateway.base}/oauth/callback?state=made-up&code=x`);
    expect(callback.status).toBe(400);
  });

  it("connects A's account through the browser; A's calls reach the upstream with A's token", async () => {
    const page = await consentInBrowser(urlA, { account: "alice" });
    expect(page.status).toBe(200);
    expect(page.text).toContain('your account at upstream "p" is connected');
    // The catalog comes from the first connected principal's connection.
    await eventually(async () => (await a.listTools()).tools.some((t) => t.name === "p__whoami"), 15_000);
    const result = await a.callTool({ name: "p__whoami", arguments: {} });
    expect(result.isError).toBeFalsy();
    expect(textOf(result)).toBe("alice");
    expect(mcp.callers).toEqual(["alice"]);
  });

  it("gives B its own authorize URL and never A's token", async () => {
    b = await connectAs(KEY_B);
    expect((await b.listTools()).tools.some((t) => t.name === "p__whoami")).toBe(true);
    const result = await b.callTool({ name: "p__whoami", arguments: {} });
    expect(result.isError).toBe(true);
    const urlB = authorizeUrl(result);
    expect(urlB.searchParams.get("ticket")).not.toBe(urlA.searchParams.get("ticket"));
    // B's call never reached the upstream (no call under A's token either).
    expect(mcp.callers).toEqual(["alice"]);

    const page = await consentInBrowser(urlB, { account: "bob" });
    expect(page.text).toContain("is connected");
    const asB = await b.callTool({ name: "p__whoami", arguments: {} });
    expect(textOf(asB)).toBe("bob");
    const asA = await a.callTool({ name: "p__whoami", arguments: {} });
    expect(textOf(asA)).toBe("alice");
    expect(mcp.callers).toEqual(["alice", "bob", "alice"]);
  });

  it("subscribes each principal on its own connection, and sends each only its own connection's updates", async () => {
    const updates = { a: updatesOf(a), b: updatesOf(b) };
    expect((await a.listResources()).resources.map((r) => r.uri)).toContain("whoami://me");
    await a.subscribeResource({ uri: "whoami://me" });
    await b.subscribeResource({ uri: "whoami://me" });
    // B's subscription reaches B's own connection, not only the first subscriber's.
    expect(mcp.subscriptions).toEqual(["alice whoami://me", "bob whoami://me"]);

    await mcp.updated("alice");
    await eventually(() => updates.a.length > 0);
    await mcp.updated("bob");
    // B's notifications come in order on its one stream: an update of A's connection sent to B would be first.
    await eventually(() => updates.b.length > 0);
    expect(updates).toEqual({ a: ["alice"], b: ["bob"] });
  });

  it("asks a client with URL-mode elicitation to open the consent URL, then runs the call as that principal", async () => {
    const c = new Client(
      { name: "per-principal-test", version: "1.0.0" },
      { capabilities: { elicitation: { url: {} } } },
    );
    const asked: Array<{ mode?: string; url?: string; elicitationId?: string }> = [];
    const completed: string[] = [];
    let consent: Promise<unknown> = Promise.resolve();
    c.setRequestHandler(ElicitRequestSchema, async (request) => {
      const params = request.params as { mode?: string; url?: string; elicitationId?: string };
      asked.push(params);
      // The person opens the link; the client answers at once, as URL mode has it.
      consent = consentInBrowser(new URL(String(params.url)), { account: "erin" });
      return { action: "accept" };
    });
    c.setNotificationHandler(ElicitationCompleteNotificationSchema, (n) => {
      completed.push(n.params.elicitationId);
    });
    await c.connect(
      new StreamableHTTPClientTransport(new URL(gateway.url), {
        requestInit: { headers: { authorization: `Bearer ${KEY_C}` } },
      }),
    );
    clients.push(c);
    const result = await c.callTool({ name: "p__whoami", arguments: {} });
    await consent;
    expect(textOf(result)).toBe("erin");
    expect(asked).toHaveLength(1);
    expect(asked[0]?.mode).toBe("url");
    expect(asked[0]?.url).toMatch(/\/oauth\/upstreams\/p\/authorize\?ticket=/);
    await eventually(async () => completed.length > 0);
    expect(completed).toEqual([asked[0]?.elicitationId]);
  });

  it("steps up per principal: a call needing a wider scope names the caller's own consent URL", async () => {
    const refused = await a.callTool({ name: "p__admin", arguments: {} });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toContain("needs a scope toolgate was not granted; open http");
    const url = authorizeUrl(refused);
    const page = await consentInBrowser(url, { account: "alice" });
    expect(page.text).toContain("is connected");
    expect(textOf(await a.callTool({ name: "p__admin", arguments: {} }))).toBe("admin for alice");
    // B's grant is B's own: still without the admin scope.
    const asB = await b.callTool({ name: "p__admin", arguments: {} });
    expect(asB.isError).toBe(true);
    expect(authorizeUrl(asB).searchParams.get("ticket")).not.toBe(url.searchParams.get("ticket"));
  });

  it("lists the upstream as per principal, and logs one principal out without touching another", async () => {
    const status = await runCli(["auth", "status", "--json", "--config", configFile]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([
      {
        upstream: "p",
        url: mcp.url,
        state: "per principal",
        catalogPrincipal: "apiKey:a",
        issuer: as.issuer,
      },
    ]);
    expect(status.stdout).not.toMatch(/access_token|refresh_token/);
    const refused = await runCli(["auth", "login", "p", "--config", configFile]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("/oauth/upstreams/p/authorize");

    const logout = await runCli(["auth", "logout", "p", "--principal", "apiKey:b", "--config", configFile]);
    expect(logout.code).toBe(0);
    const again = await eventually(async () => {
      const result = await b.callTool({ name: "p__whoami", arguments: {} });
      return textOf(result).includes("/oauth/upstreams/p/authorize?ticket=") ? result : undefined;
    });
    expect(again?.isError).toBe(true);
    expect(textOf(await a.callTool({ name: "p__whoami", arguments: {} }))).toBe("alice");
  });

  it("stores each principal's tokens under its own key, beside one shared client registration", async () => {
    const store = new FileCredentialStore(join(dirname(configFile), ".toolgate"), undefined);
    const shared = await store.get(`p ${mcp.url}`);
    const ofA = await store.get(`p ${mcp.url} principal apiKey:a`);
    const ofB = await store.get(`p ${mcp.url} principal apiKey:c`);
    expect(shared?.client?.client_id).toBeTruthy();
    expect(shared?.tokens).toBeUndefined();
    expect(shared?.catalogPrincipal).toBe("apiKey:a");
    expect(ofA?.tokens?.access_token).toBeTruthy();
    expect(ofB?.tokens?.access_token).toBeTruthy();
    expect(ofA?.tokens?.access_token).not.toBe(ofB?.tokens?.access_token);
    // C uses the shared registration; A registered its own for the step-up.
    expect(ofB?.client).toBeUndefined();
    expect(ofA?.client?.client_id).toBeTruthy();
    expect(ofA?.client?.client_id).not.toBe(shared?.client?.client_id);
  });
});

describe("the pool of per-principal connections", () => {
  let gw: InProcessGateway;

  beforeAll(async () => {
    gw = await startPoolGateway(
      { maxConnections: 1, idleTimeoutMs: 5000 },
      { upstreams: { q: { reconnect: { initialDelayMs: 100, maxDelayMs: 300 } } } },
    );
  });

  afterAll(async () => {
    await gw?.stop();
  });

  it("keeps at most maxConnections open, reopens an evicted one on demand, and closes idle ones", async () => {
    const pool = gw.gateway.principals;
    const { a, b } = await principalsConnected(gw, "carol", "dave");

    expect(textOf(await a.callTool({ name: "q__whoami", arguments: {} }))).toBe("carol");
    expect(pool?.size("q")).toBe(1);
    expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("dave");
    expect(pool?.size("q")).toBe(1);
    expect(gw.gateway.snapshot().upstreams.find((u) => u.name === "q")?.principalConnections).toBe(1);
    // A's connection was evicted for B's: the next call opens a new one, still with A's own token.
    expect(textOf(await a.callTool({ name: "q__whoami", arguments: {} }))).toBe("carol");
    expect(pool?.size("q")).toBe(1);
    // Unused past idleTimeoutMs (5 s, long enough that no call above outlives it): closed.
    await eventually(async () => pool?.size("q") === 0, 15_000);
    expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("dave");
  });

  it("subscribes a principal's reopened connection again, so its updates keep coming", async () => {
    const a = await connectAs(KEY_A, gw.url);
    const b = await connectAs(KEY_B, gw.url);
    const got = updatesOf(a);
    const carols = () => mcp.subscriptions.filter((s) => s === "carol whoami://me").length;
    const before = carols();
    await a.subscribeResource({ uri: "whoami://me" });
    expect(carols()).toBe(before + 1);
    // maxConnections 1: B's call closes A's connection, and A's next call opens a new one.
    expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("dave");
    expect(textOf(await a.callTool({ name: "q__whoami", arguments: {} }))).toBe("carol");
    await eventually(() => carols() === before + 2);
    await updateReaches(got, "carol");
  });
});

describe("per-principal connections and their sessions' subscriptions", () => {
  it("stay open past idleTimeoutMs while subscribed on, and close once no session is", async () => {
    await withPoolGateway({ maxConnections: 10, idleTimeoutMs: 1000 }, async (gw) => {
      const { a, b } = await principalsConnected(gw, "gina", "hank");
      const got = updatesOf(a);

      await a.subscribeResource({ uri: "whoami://me" });
      // Hank's connection is used after gina's, so its idle timeout ends after gina's: once it closed,
      // gina's timed out too, and stayed open.
      expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("hank");
      await closesOnly(gw, "hank", "gina", 1);
      await updateReaches(got, "gina");

      await a.unsubscribeResource({ uri: "whoami://me" });
      await eventually(() => ended("gina"), 15_000);
      expect(gw.gateway.principals?.size("q")).toBe(0);
    });
  });

  it("unsubscribes a resource on the connection when its last subscriber's session ends", async () => {
    await withPoolGateway({ maxConnections: 10, idleTimeoutMs: 600_000 }, async (gw) => {
      const { a, b } = await principalsConnected(gw, "pia", "quin");
      await a.subscribeResource({ uri: "whoami://me" });
      await b.subscribeResource({ uri: "whoami://me" });
      const second = await connectAs(KEY_A, gw.url);
      await second.subscribeResource({ uri: "whoami://me" });

      // Pia's other session still listens: nothing to drop yet.
      await endSession(a);
      expect(textOf(await second.callTool({ name: "q__whoami", arguments: {} }))).toBe("pia");
      expect(mcp.unsubscriptions).not.toContain("pia whoami://me");
      await endSession(second);
      await eventually(() => mcp.unsubscriptions.includes("pia whoami://me"), 15_000);
      expect(mcp.unsubscriptions).not.toContain("quin whoami://me");
      const got = updatesOf(b);
      await updateReaches(got, "quin");
    });
  });

  it("a full pool evicts the least recently used connection no session is subscribed on, not a subscribed one", async () => {
    await withPoolGateway({ maxConnections: 2, idleTimeoutMs: 600_000 }, async (gw) => {
      const { a, b } = await principalsConnected(gw, "ivan", "judy");
      await consentWithKey(gw.base, KEY_C, "kurt");
      const c = await connectAs(KEY_C, gw.url);
      const got = updatesOf(a);

      await a.subscribeResource({ uri: "whoami://me" });
      expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("judy");
      // The pool is full, and ivan's connection is the least recently used: judy's goes in its place.
      expect(textOf(await c.callTool({ name: "q__whoami", arguments: {} }))).toBe("kurt");
      await closesOnly(gw, "judy", "ivan", 2);
      await updateReaches(got, "ivan");
    });
  });

  it("an unsubscribe after its connection closed opens no connection to say so", async () => {
    await withPoolGateway({ maxConnections: 1, idleTimeoutMs: 600_000 }, async (gw) => {
      const { a, b } = await principalsConnected(gw, "nora", "olaf");
      await a.subscribeResource({ uri: "whoami://me" });
      // One connection at most, and every one subscribed on: olaf's call closes nora's (with a warning).
      expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("olaf");
      await closesOnly(gw, "nora", "olaf", 1);
      const subscribed = mcp.subscriptions.length;

      await a.unsubscribeResource({ uri: "whoami://me" });
      expect(gw.gateway.principals?.size("q")).toBe(1);
      // Nora's next call reopens her connection, and nothing is subscribed on it any more.
      expect(textOf(await a.callTool({ name: "q__whoami", arguments: {} }))).toBe("nora");
      await eventually(() => ended("olaf"), 15_000);
      expect(mcp.subscriptions.length).toBe(subscribed);
    });
  });

  it("a reload that removes a principal's API key closes that principal's connections at once, and only theirs", async () => {
    await withPoolGateway({ maxConnections: 10, idleTimeoutMs: 600_000 }, async (gw) => {
      const { a, b } = await principalsConnected(gw, "lena", "mike");
      expect(textOf(await a.callTool({ name: "q__whoami", arguments: {} }))).toBe("lena");
      expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("mike");
      expect(gw.gateway.principals?.size("q")).toBe(2);

      const { config } = gw.gateway;
      const apiKeys = config.security.auth.apiKeys.filter((key) => key.principal !== "a");
      await gw.gateway.reload({
        ...config,
        security: { ...config.security, auth: { ...config.security.auth, apiKeys } },
      });
      await closesOnly(gw, "lena", "mike", 1);
      expect(textOf(await b.callTool({ name: "q__whoami", arguments: {} }))).toBe("mike");
    });
  });
});
