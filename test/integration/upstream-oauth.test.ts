/**
 * toolgate as an OAuth client of protected upstreams, against a real authorization server (oidc-provider)
 * and an MCP server that validates its tokens: consent through `toolgate auth login` (the browser played
 * by following redirects), tokens encrypted on disk, refresh on expiry, a revoked grant back to "needs
 * authorization", and the client-credentials grant.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readFile, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileCredentialStore } from "../../src/upstreams/auth/credential-store.ts";
import {
  type AuthServer,
  CC_CLIENT,
  consentInBrowser,
  type ProtectedMcp,
  startAuthServer,
  startProtectedMcp,
} from "../fixtures/oauth.ts";
import {
  eventually,
  type GatewayProcess,
  NODE,
  ROOT,
  spawnGateway,
  textOf,
  writeConfig,
} from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

let as: AuthServer;
let mcp: ProtectedMcp;
const TTL_S = 3;

beforeAll(async () => {
  let resource = "";
  let issuer = "";
  as = await startAuthServer({ resource: () => resource, accessTokenTtlS: TTL_S });
  issuer = as.issuer;
  mcp = await startProtectedMcp(() => issuer);
  resource = mcp.url;
});

afterAll(async () => {
  await mcp?.close();
  await as?.close();
});

/** `toolgate auth login UPSTREAM` as a person runs it; the test is the browser. */
function runLogin(
  configFile: string,
  upstream: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      NODE,
      [join(ROOT, "src/main.ts"), "auth", "login", upstream, "--config", configFile],
      {
        cwd: dirname(configFile),
        env: { ...process.env, TOOLGATE_NO_BROWSER: "1" },
      },
    );
    let stdout = "";
    let stderr = "";
    let consenting = false;
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
      const url = /^\s+(http\S+)$/m.exec(stderr)?.[1];
      if (url && !consenting) {
        consenting = true;
        consentInBrowser(new URL(url)).catch(reject);
      }
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function connect(url: string): Promise<Client> {
  const client = new Client({ name: "oauth-test", version: "1.0.0" });
  return client.connect(new StreamableHTTPClientTransport(new URL(url))).then(() => client);
}

describe("an upstream that needs OAuth with consent (authorization code)", () => {
  let configFile: string;
  let gateway: GatewayProcess;

  beforeAll(async () => {
    configFile = await writeConfig({
      mcpServers: { p: { url: mcp.url, auth: { oauth: { callbackPort: await freePort() } } } },
      upstreams: { p: { reconnect: { initialDelayMs: 100, maxDelayMs: 300 } } },
    });
    gateway = await spawnGateway(configFile);
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it("shows as needing authorization, naming the command, until someone consents", async () => {
    const status = await eventually(async () => {
      const body = (await (await fetch(`${gateway.base}/status`)).json()) as {
        upstreams: Array<{ name: string; needsAuthorization?: string; lastError?: string; state: string }>;
      };
      return body.upstreams.find((u) => u.name === "p" && u.needsAuthorization);
    });
    expect(status?.state).toBe("down");
    expect(status?.needsAuthorization).toBe(`toolgate auth login p --config ${configFile}`);
    expect(status?.lastError).toContain("toolgate auth login p");
    // Its tools fail at once, naming the fix, instead of "no such tool".
    const client = await connect(gateway.url);
    try {
      const result = await client.callTool({ name: "p__whoami", arguments: {} });
      expect(result.isError).toBe(true);
      expect(textOf(result)).toContain(
        `needs authorization: run \`toolgate auth login p --config ${configFile}\``,
      );
    } finally {
      await client.close();
    }
  });

  it("logs in through the browser, stores the tokens encrypted, and the running gateway serves the upstream", async () => {
    const login = await runLogin(configFile, "p");
    expect(login.stderr).toContain("Open this URL to authorize toolgate");
    expect(login.code, login.stderr).toBe(0);
    expect(login.stdout).toMatch(/^p: authorized, expires /);

    const file = join(dirname(configFile), ".toolgate/upstream-credentials.enc");
    const raw = await readFile(file);
    expect(raw.toString("latin1")).not.toMatch(/access_token|refresh_token|alice/);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const stored = await new FileCredentialStore(dirname(file), undefined).get(`p ${mcp.url}`);
    expect(stored?.tokens?.access_token).toBeTruthy();
    expect(stored?.tokens?.refresh_token).toBeTruthy();

    const client = await connect(gateway.url);
    try {
      await eventually(
        async () => (await client.listTools()).tools.some((t) => t.name === "p__whoami"),
        15_000,
      );
      const result = await client.callTool({ name: "p__whoami", arguments: {} });
      expect(textOf(result)).toBe("alice");
    } finally {
      await client.close();
    }
  });

  it("refreshes an expired access token and keeps serving", async () => {
    const store = new FileCredentialStore(join(dirname(configFile), ".toolgate"), undefined);
    const before = (await store.get(`p ${mcp.url}`))?.tokens?.access_token;
    const refreshes = as.issued.refresh_token ?? 0;
    // Wait for the access token to expire (the server issues 3-second tokens), then call.
    await eventually(
      async () => ((await store.get(`p ${mcp.url}`))?.tokens?.expiresAt ?? 0) < Date.now(),
      15_000,
    );
    const client = await connect(gateway.url);
    try {
      const result = await client.callTool({ name: "p__whoami", arguments: {} });
      expect(textOf(result)).toBe("alice");
    } finally {
      await client.close();
    }
    expect(as.issued.refresh_token ?? 0).toBeGreaterThan(refreshes);
    expect((await store.get(`p ${mcp.url}`))?.tokens?.access_token).not.toBe(before);
  });

  it("steps up: a call needing a wider scope names the login, which then asks for that scope", async () => {
    const client = await connect(gateway.url);
    try {
      const refused = await client.callTool({ name: "p__admin", arguments: {} });
      expect(refused.isError).toBe(true);
      expect(textOf(refused)).toContain(
        `needs a scope toolgate was not granted; run \`toolgate auth login p --config ${configFile}\``,
      );
      const login = await runLogin(configFile, "p");
      expect(login.code, login.stderr).toBe(0);
      expect(decodeURIComponent(login.stderr)).toMatch(/scope=mcp[+ ]admin/);
      const granted = await eventually(async () => {
        const result = await client.callTool({ name: "p__admin", arguments: {} });
        return result.isError ? undefined : result;
      }, 15_000);
      expect(textOf(granted)).toBe("admin for alice");
    } finally {
      await client.close();
    }
  });

  it("reports auth status without printing a token", async () => {
    const run = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = spawn(NODE, [
        join(ROOT, "src/main.ts"),
        "auth",
        "status",
        "--json",
        "--config",
        configFile,
      ]);
      let stdout = "";
      child.stdout.on("data", (c: Buffer) => {
        stdout += c;
      });
      child.once("close", (code) => resolve({ code, stdout }));
    });
    expect(run.code).toBe(0);
    const [row] = JSON.parse(run.stdout) as Array<Record<string, string>>;
    expect(row).toMatchObject({ upstream: "p", issuer: as.issuer });
    expect(["authorized", "expired (refreshable)"]).toContain(row?.state);
    expect(run.stdout).not.toMatch(/access_token|refresh_token/);
  });
});

describe("a grant revoked at the authorization server", () => {
  it("puts the upstream back to needing authorization once the access token expires", async () => {
    const configFile = await writeConfig({
      mcpServers: { r: { url: mcp.url, auth: { oauth: { callbackPort: await freePort() } } } },
      upstreams: { r: { reconnect: { initialDelayMs: 100, maxDelayMs: 300 } } },
    });
    expect((await runLogin(configFile, "r")).code).toBe(0);
    const gateway = await spawnGateway(configFile);
    const store = new FileCredentialStore(join(dirname(configFile), ".toolgate"), undefined);
    const client = await connect(gateway.url);
    try {
      await eventually(
        async () => (await client.listTools()).tools.some((t) => t.name === "r__whoami"),
        15_000,
      );
      const stored = await store.get(`r ${mcp.url}`);
      const revoked = await fetch(`${as.issuer}/token/revocation`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          token: String(stored?.tokens?.refresh_token),
          token_type_hint: "refresh_token",
          client_id: String(stored?.client?.client_id),
        }),
      });
      expect(revoked.status).toBe(200);
      await eventually(
        async () => ((await store.get(`r ${mcp.url}`))?.tokens?.expiresAt ?? 0) < Date.now(),
        15_000,
      );
      const failed = await client.callTool({ name: "r__whoami", arguments: {} });
      expect(failed.isError).toBe(true);
      const status = await eventually(async () => {
        const body = (await (await fetch(`${gateway.base}/status`)).json()) as {
          upstreams: Array<{ name: string; needsAuthorization?: string }>;
        };
        return body.upstreams.find((u) => u.name === "r" && u.needsAuthorization);
      });
      expect(status?.needsAuthorization).toBe(`toolgate auth login r --config ${configFile}`);
    } finally {
      await client.close();
      await gateway.stop();
    }
  });
});

describe("a login whose callback port is taken", () => {
  it("fails at once, naming the port and the setting to change", async () => {
    const port = await freePort();
    const holder = createServer().listen(port, "127.0.0.1");
    await once(holder, "listening");
    try {
      const configFile = await writeConfig({
        mcpServers: { t: { url: mcp.url, auth: { oauth: { callbackPort: port } } } },
      });
      const login = await runLogin(configFile, "t");
      expect(login.code).not.toBe(0);
      expect(login.stderr).toContain(`the login's callback port 127.0.0.1:${port} is in use`);
      expect(login.stderr).toContain("auth.oauth.callbackPort");
    } finally {
      holder.close();
    }
  });
});

describe("an upstream reached with the client-credentials grant", () => {
  it("gets a token without any person and calls as the machine client; unsubscribes with the last session", async () => {
    const configFile = await writeConfig({
      mcpServers: {
        m: {
          url: mcp.url,
          auth: {
            oauth: { grant: "client_credentials", clientId: CC_CLIENT.id, clientSecret: CC_CLIENT.secret },
          },
        },
      },
    });
    const gateway = await spawnGateway(configFile);
    const client = await connect(gateway.url);
    try {
      await eventually(
        async () => (await client.listTools()).tools.some((t) => t.name === "m__whoami"),
        15_000,
      );
      const result = await client.callTool({ name: "m__whoami", arguments: {} });
      expect(textOf(result)).toBe(CC_CLIENT.id);

      // The shared connection is subscribed while any session is, and unsubscribed when the last one ends.
      const other = await connect(gateway.url);
      await client.subscribeResource({ uri: "whoami://me" });
      await other.subscribeResource({ uri: "whoami://me" });
      const dropped = `${CC_CLIENT.id} whoami://me`;
      await (other.transport as StreamableHTTPClientTransport).terminateSession();
      expect(textOf(await client.callTool({ name: "m__whoami", arguments: {} }))).toBe(CC_CLIENT.id);
      expect(mcp.unsubscriptions).not.toContain(dropped);
      await (client.transport as StreamableHTTPClientTransport).terminateSession();
      await eventually(() => mcp.unsubscriptions.includes(dropped), 15_000);
    } finally {
      await client.close();
      await gateway.stop();
    }
  });
});

describe("a legacy SSE upstream reached with the client-credentials grant (40-second tokens)", () => {
  let as40: AuthServer;
  let sse: ProtectedMcp;
  let gateway: GatewayProcess;
  let client: Client;
  const whoami = async () => textOf(await client.callTool({ name: "l__whoami", arguments: {} }));

  beforeAll(async () => {
    let resource = "";
    as40 = await startAuthServer({ resource: () => resource, accessTokenTtlS: 40 });
    sse = await startProtectedMcp(() => as40.issuer);
    resource = sse.url;
    const oauth = { grant: "client_credentials", clientId: CC_CLIENT.id, clientSecret: CC_CLIENT.secret };
    gateway = await spawnGateway(
      await writeConfig({ mcpServers: { l: { type: "sse", url: sse.url, auth: { oauth } } } }),
    );
    client = await connect(gateway.url);
    await eventually(
      async () => (await client.listTools()).tools.some((t) => t.name === "l__whoami"),
      15_000,
    );
  });

  afterAll(async () => {
    await client?.close();
    await gateway?.stop();
    await sse?.close();
    await as40?.close();
  });

  it("opens its event stream and posts with one token, renewed only when it is due", async () => {
    const grants = as40.issued.client_credentials;
    expect(grants).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) expect(await whoami()).toBe(CC_CLIENT.id);
    // A 40-second token is renewed 10 seconds before it expires, not before each request (60 seconds early).
    expect(as40.issued.client_credentials).toBe(grants);
  });

  it("gets a new token when a POST is refused with 401, and sends the message again", async () => {
    const grants = as40.issued.client_credentials ?? 0;
    sse.refuseTokensSeen();
    expect(await whoami()).toBe(CC_CLIENT.id);
    expect(as40.issued.client_credentials).toBe(grants + 1);
    expect(await whoami()).toBe(CC_CLIENT.id);
  });
});
