/**
 * Consent as a person gives it: `toolgate auth login UPSTREAM`. Finds where the upstream wants its client
 * to authorize (its 401's WWW-Authenticate), lets the SDK start the authorization-code flow, waits for the
 * browser on a loopback callback, checks `state` and the RFC 9207 `iss` of the response, and exchanges the
 * code. Client-credentials upstreams get their token at once.
 */
import { createServer, type Server } from "node:http";
import { auth, extractWWWAuthenticateParams } from "@modelcontextprotocol/sdk/client/auth.js";
import type { UpstreamOAuth } from "./oauth-provider.ts";

export interface LoginOptions {
  /** Where the authorization URL goes (printed; a desktop opener may follow). */
  onAuthorizationUrl: (url: URL) => void;
  /** Give up waiting for the browser after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Runs the whole flow for one upstream; resolves once tokens are stored. */
export async function login(provider: UpstreamOAuth, options: LoginOptions): Promise<void> {
  if (!provider.interactive) {
    const { base } = await authorizationRequest(provider);
    if ((await auth(provider, base)) !== "AUTHORIZED")
      throw new Error("the authorization server gave no token");
    return;
  }
  const callback = await listenForCallback(provider.options.callbackPort);
  try {
    const started = await beginAuthorization(provider);
    if (!started.url) return;
    options.onAuthorizationUrl(started.url);
    await finishAuthorization(provider, started.base, await callback.next(options.timeoutMs, options.signal));
  } finally {
    await callback.close();
  }
}

/** What `auth()` needs to ask for consent: where the resource's metadata is and which scope to request. */
export interface AuthorizationBase {
  serverUrl: string;
  resourceMetadataUrl?: URL;
  scope?: string;
}

async function authorizationRequest(provider: UpstreamOAuth): Promise<{ base: AuthorizationBase }> {
  const probed = await probe(provider.serverUrl);
  const { resourceMetadataUrl } = probed;
  // After a 403 insufficient_scope the wider scope is asked for; a new consent replaces the old grant.
  const stepUp = await provider.stepUpScope();
  const scope =
    [...new Set([probed.scope, stepUp].filter(Boolean).join(" ").split(" ").filter(Boolean))].join(" ") ||
    undefined;
  if (stepUp) {
    // A dynamically registered client may be limited to the scope it registered with: register anew.
    const registered =
      provider.options.clientId !== undefined || provider.options.clientMetadataUrl !== undefined;
    // Per principal the shared registration stays (other principals' grants are bound to it).
    if (!registered && provider.principal) await provider.registerOwnClient();
    else await provider.invalidateCredentials(registered ? "tokens" : "all");
  }
  return {
    base: {
      serverUrl: provider.serverUrl,
      ...(resourceMetadataUrl && { resourceMetadataUrl }),
      ...(scope && { scope }),
    },
  };
}

/**
 * Starts the authorization-code flow: the URL the person's browser must open (undefined when the stored
 * credentials already work), with the base the callback's code exchange needs.
 */
export async function beginAuthorization(
  provider: UpstreamOAuth,
): Promise<{ url: URL | undefined; base: AuthorizationBase }> {
  const { base } = await authorizationRequest(provider);
  let authorizationUrl: URL | undefined;
  const original = provider.redirectToAuthorization.bind(provider);
  provider.redirectToAuthorization = (url) => {
    authorizationUrl = url;
    original(url);
  };
  let first: Awaited<ReturnType<typeof auth>>;
  try {
    first = await auth(provider, base);
  } finally {
    provider.redirectToAuthorization = original;
  }
  if (first === "AUTHORIZED") return { url: undefined, base };
  if (!authorizationUrl) throw new Error("the SDK asked for consent without an authorization URL");
  return { url: authorizationUrl, base };
}

/** The callback's query: checks error, `state` and the RFC 9207 `iss`, then exchanges the code for tokens. */
export async function finishAuthorization(
  provider: UpstreamOAuth,
  base: AuthorizationBase,
  params: URLSearchParams,
): Promise<void> {
  const error = params.get("error");
  if (error)
    throw new Error(
      `the authorization server refused: ${error} ${params.get("error_description") ?? ""}`.trim(),
    );
  if (params.get("state") !== provider.expectedState)
    throw new Error("the callback's state does not match this login (a forged or stale response)");
  await checkIssuer(provider, params.get("iss"));
  const code = params.get("code");
  if (!code) throw new Error("the callback carried no authorization code");
  if ((await auth(provider, { ...base, authorizationCode: code })) !== "AUTHORIZED") {
    throw new Error("the code exchange did not yield tokens");
  }
}

/** An unauthenticated request tells where the resource's metadata is and which scope it wants. */
async function probe(serverUrl: string): Promise<{ resourceMetadataUrl?: URL; scope?: string }> {
  const response = await fetch(serverUrl, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 0, method: "ping" }),
  }).catch(() => undefined);
  await response?.body?.cancel().catch(() => {});
  if (response?.status !== 401) return {};
  const { resourceMetadataUrl, scope } = extractWWWAuthenticateParams(response);
  return { ...(resourceMetadataUrl && { resourceMetadataUrl }), ...(scope && { scope }) };
}

/** RFC 9207: a response naming another issuer is a mix-up attack; one the server promises must be present. */
async function checkIssuer(provider: UpstreamOAuth, iss: string | null): Promise<void> {
  const metadata = (await provider.discoveryState())?.authorizationServerMetadata;
  if (!metadata) return;
  if (iss !== null && iss !== metadata.issuer) {
    throw new Error(`the authorization response names issuer ${iss}, expected ${metadata.issuer}`);
  }
  const promised = (metadata as { authorization_response_iss_parameter_supported?: boolean })
    .authorization_response_iss_parameter_supported;
  if (iss === null && promised === true)
    throw new Error(`the authorization response lacks the iss of ${metadata.issuer}`);
}

interface Callback {
  next(timeoutMs: number, signal?: AbortSignal): Promise<URLSearchParams>;
  close(): Promise<void>;
}

/** The loopback redirect target (RFC 8252): answers the browser and hands over the query. */
async function listenForCallback(port: number): Promise<Callback> {
  let deliver: ((params: URLSearchParams) => void) | undefined;
  const arrived = new Promise<URLSearchParams>((resolve) => {
    deliver = resolve;
  });
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/callback") {
      res.writeHead(404).end();
      return;
    }
    const ok = !url.searchParams.has("error");
    res.writeHead(ok ? 200 : 400, { "content-type": "text/plain; charset=utf-8" });
    res.end(
      ok
        ? "toolgate: authorization received; you can close this tab.\n"
        : "toolgate: authorization refused.\n",
    );
    deliver?.(url.searchParams);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code !== "EADDRINUSE") return reject(err);
      reject(
        new Error(
          `the login's callback port 127.0.0.1:${port} is in use (another login waiting for its browser, or ` +
            "any program holding the port); finish that login, or set auth.oauth.callbackPort of this " +
            "upstream to a free port (below the ephemeral range, /proc/sys/net/ipv4/ip_local_port_range) " +
            "that its authorization server accepts in the redirect URI",
        ),
      );
    });
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    next(timeoutMs, signal) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no authorization within ${Math.round(timeoutMs / 1000)} s`)),
          timeoutMs,
        );
        signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
        arrived.then((params) => {
          clearTimeout(timer);
          resolve(params);
        });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
