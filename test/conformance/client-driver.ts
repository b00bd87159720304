/**
 * The client under test for `conformance client` (the suite appends the scenario server's URL and sets
 * MCP_CONFORMANCE_SCENARIO / MCP_CONFORMANCE_CONTEXT): toolgate, with the scenario server as its one upstream
 * (no name prefix, protocol "auto"), driven by the official v1 SDK client through toolgate's HTTP endpoint.
 * What it drives per scenario mirrors the suite's reference client; the upstream side of every request is
 * toolgate's own.
 *
 *   node test/conformance/client-driver.ts http://localhost:PORT/mcp
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { FileCredentialStore } from "../../src/upstreams/auth/credential-store.ts";
import { login } from "../../src/upstreams/auth/login.ts";
import { UpstreamOAuth } from "../../src/upstreams/auth/oauth-provider.ts";
import { Upstream, type UpstreamStatus } from "../../src/upstreams/upstream.ts";
import { connectClient, startGateway } from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

interface ToolCall {
  name: string;
  arguments?: Record<string, unknown>;
}

interface Context {
  toolCalls?: ToolCall[];
  client_id?: string;
  client_secret?: string;
}

/** The Client ID Metadata Document URL the suite's authorization servers accept (as its reference client uses). */
const CIMD_URL = "https://conformance-test.local/client-metadata.json";
/** Client-credentials scenarios: machine to machine, no consent. */
const CLIENT_CREDENTIALS = new Set(["auth/client-credentials-basic"]);

async function main(): Promise<number> {
  const url = process.argv.at(-1);
  if (!url?.startsWith("http")) throw new Error("usage: client-driver.ts <server-url>");
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? "";
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as Context;
  const oauth = scenario.startsWith("auth/") ? await oauthOptions(scenario, context) : undefined;
  const stateDir = await mkdtemp(join(tmpdir(), "toolgate-conformance-auth-"));

  const gw = await startGateway({
    gateway: { stateDir },
    mcpServers: { target: { type: "http", url, ...(oauth && { auth: { oauth } }) } },
    upstreams: { target: { prefix: "", reconnect: { initialDelayMs: 100, maxDelayMs: 500 } } },
  });
  try {
    const upstream = gw.gateway.registry.get("target");
    // With OAuth each connection attempt is awaited in connectAuthorized: no second wait after a refusal.
    const ready =
      oauth && upstream instanceof Upstream
        ? await connectAuthorized(upstream, url, oauth, stateDir)
        : await upstream?.whenReady(20_000);
    if (!ready) {
      process.stderr.write(`upstream not ready: ${upstream?.status().lastError}\n`);
      return 1;
    }
    const client = await connectClient("http", gw, {
      capabilities: { elicitation: { form: { applyDefaults: true } } },
    });
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      const properties = (request.params as { requestedSchema?: { properties?: object } }).requestedSchema
        ?.properties;
      // Confirm what asks for confirmation; leave the rest to the schema's defaults.
      const content = properties && "confirmed" in properties ? { confirmed: true } : {};
      return { action: "accept", content };
    });
    try {
      const failed = await drive(client, scenario, context);
      // A call refused for authorization (a 403 insufficient_scope leaves the wider scope for the next
      // login; a 401 the gateway could not fix, e.g. a moved authorization server): consent again, retry,
      // as a person does when the error names `toolgate auth login`.
      if (oauth && failed) {
        await authorize(url, oauth, stateDir);
        await drive(client, scenario, context);
      }
    } finally {
      await client.close();
    }
    return 0;
  } finally {
    await gw.stop();
    await rm(stateDir, { recursive: true, force: true });
  }
}

type OAuthOptions = {
  grant: "authorization_code" | "client_credentials";
  clientId?: string;
  clientSecret?: string;
  clientMetadataUrl?: string;
  callbackPort: number;
};

/** The upstream's auth.oauth: what the scenario gives (client credentials) plus the suite's CIMD URL. */
async function oauthOptions(scenario: string, context: Context): Promise<OAuthOptions> {
  return {
    grant: CLIENT_CREDENTIALS.has(scenario) ? "client_credentials" : "authorization_code",
    ...(context.client_id && { clientId: context.client_id }),
    ...(context.client_secret && { clientSecret: context.client_secret }),
    clientMetadataUrl: CIMD_URL,
    callbackPort: await freePort(),
  };
}

/** The provider `toolgate auth login` builds, on the gateway's credential store (same state dir). */
function provider(url: string, oauth: OAuthOptions, stateDir: string): UpstreamOAuth {
  const store = new FileCredentialStore(stateDir, process.env.TOOLGATE_TOKEN_KEY);
  return new UpstreamOAuth("target", url, { scopes: [], perPrincipal: false, ...oauth } as never, {
    store,
    loginCommand: "toolgate auth login target",
  });
}

/**
 * Whenever the upstream waits for consent (at first, or again when its authorization server moved while
 * connecting), log in and let it reconnect at once; a few rounds at most.
 */
async function connectAuthorized(
  upstream: Upstream,
  url: string,
  oauth: OAuthOptions,
  stateDir: string,
): Promise<boolean> {
  let status = await attempted(upstream);
  for (let logins = 0; logins < 3; logins++) {
    if (status.state === "ready" || !status.lastError?.startsWith("needs authorization")) break;
    await authorize(url, oauth, stateDir).catch((err: unknown) =>
      process.stderr.write(`login: ${err instanceof Error ? err.message : String(err)}\n`),
    );
    status = await attemptAfterLogin(upstream);
  }
  return status.state === "ready";
}

/**
 * The outcome of a connection attempt begun after a login. On a loaded machine the retry timer can fire while
 * the login runs: that attempt found no tokens and fails, and a second login on its word would be one more
 * authorization request than the scenario expects (auth/scope-step-up counts them). Let it end, then start one.
 */
async function attemptAfterLogin(upstream: Upstream): Promise<UpstreamStatus> {
  const status = await attempted(upstream);
  if (status.state === "ready") return status;
  upstream.reconnectNow();
  return attempted(upstream);
}

/** The upstream's status once its connection attempt ended: ready, or failed with a retry scheduled. */
function attempted(upstream: Upstream): Promise<UpstreamStatus> {
  const done = (s: UpstreamStatus) => s.state === "ready" || s.nextRetryAt !== undefined;
  return new Promise((resolve) => {
    if (done(upstream.status())) return resolve(upstream.status());
    const timer = setTimeout(finish, 20_000);
    function finish() {
      clearTimeout(timer);
      upstream.off("state", onState);
      resolve(upstream.status());
    }
    function onState() {
      if (done(upstream.status())) finish();
    }
    upstream.on("state", onState);
  });
}

/**
 * `toolgate auth login target`, in process: the suite's authorization server approves at once by
 * redirecting to the redirect URI, so the "browser" follows redirects until the loopback callback.
 */
async function authorize(url: string, oauth: OAuthOptions, stateDir: string): Promise<void> {
  await login(provider(url, oauth, stateDir), {
    timeoutMs: 15_000,
    onAuthorizationUrl: (authorizationUrl) => {
      void browse(authorizationUrl).catch((err: unknown) =>
        process.stderr.write(`consent: ${err instanceof Error ? err.message : String(err)}\n`),
      );
    },
  });
}

async function browse(start: URL): Promise<void> {
  let next: URL = start;
  for (let hop = 0; hop < 10; hop++) {
    const response = await fetch(next, { redirect: "manual" });
    await response.body?.cancel().catch(() => {});
    const location = response.headers.get("location");
    if (response.status < 300 || response.status >= 400 || !location) return;
    next = new URL(location, next);
  }
  throw new Error("too many redirects");
}

/** Drives the scenario's calls; true when a tool call failed. */
async function drive(client: Client, scenario: string, context: Context): Promise<boolean> {
  let failed = false;
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    try {
      const result = await client.callTool({ name, arguments: args });
      if (result.isError) process.stderr.write(`${name}: isError ${JSON.stringify(result.content)}\n`);
      failed ||= result.isError === true;
    } catch (err) {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
      failed = true;
    }
  };
  await steps(client, scenario, context, call);
  return failed;
}

async function steps(
  client: Client,
  scenario: string,
  context: Context,
  call: (name: string, args?: Record<string, unknown>) => Promise<void>,
): Promise<void> {
  const { tools } = await client.listTools();
  if (context.toolCalls) {
    for (const tool of context.toolCalls) await call(tool.name, tool.arguments);
    return;
  }
  switch (scenario) {
    case "json-schema-ref-no-deref":
      return;
    case "http-standard-headers": {
      for (const tool of tools) await call(tool.name);
      const resources = await client.listResources().catch(() => ({ resources: [] }));
      for (const r of resources.resources) await client.readResource({ uri: r.uri }).catch(() => {});
      const prompts = await client.listPrompts().catch(() => ({ prompts: [] }));
      for (const p of prompts.prompts) await client.getPrompt({ name: p.name }).catch(() => {});
      return;
    }
    case "http-invalid-tool-headers":
      // toolgate's catalog holds only the tools with valid x-mcp-header declarations.
      for (const tool of tools) await call(tool.name, { region: "us-west1" });
      return;
    case "sep-2322-client-request-state":
      for (const tool of tools) await call(tool.name);
      return;
    case "elicitation-sep1034-client-defaults":
      await call("test_client_elicitation_defaults");
      return;
    default: {
      const [first] = tools;
      if (first) await call(first.name, { a: 2, b: 3 });
    }
  }
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`client-driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
});
