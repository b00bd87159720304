/**
 * toolgate as an OAuth client of one upstream MCP server. The SDK's `auth()` does the protocol (RFC 9728
 * and RFC 8414 discovery, Client ID Metadata Documents, dynamic registration as the fallback, PKCE S256,
 * RFC 8707 resource indicators, scope selection and step-up, refresh, credentials bound to the issuer that
 * gave them); this provider keeps what it needs in a CredentialStore, refreshes tokens before they expire,
 * and runs the client-credentials grant for machine-to-machine upstreams.
 */
import { randomBytes } from "node:crypto";
import {
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
} from "@modelcontextprotocol/sdk/client/auth.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";
import type { FetchLike } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { TransportConfig, UpstreamOAuthOptions } from "../../config/load.ts";
import type { CredentialStore, StoredCredentials } from "./credential-store.ts";

/**
 * Refresh an access token this long before it expires, so no request goes out with a dying token; a token
 * that lives less than four times that, a quarter of its lifetime before (else a 60-second token would be
 * renewed before every request).
 */
const REFRESH_EARLY_MS = 60_000;

export interface UpstreamOAuthDeps {
  store: CredentialStore;
  /** What a person runs to authorize this upstream (shown when it needs authorization). */
  loginCommand: string;
  /** Called with the authorization URL when consent is needed (the login command prints and opens it). */
  onAuthorizationUrl?: (url: URL) => void;
  /**
   * Per-principal credentials: the principal (`kind:id`) whose tokens these are. The client registration
   * and discovery stay shared by the upstream; tokens and step-up scope are the principal's own.
   */
  principal?: string;
  /** The consent callback when it is not the loopback one (the gateway's own `/oauth/callback`). */
  redirectUrl?: () => string;
  /** What to tell someone who must authorize (default: run the login command). */
  authorizationHint?: () => string;
}

export class UpstreamOAuth implements OAuthClientProvider {
  readonly upstream: string;
  readonly serverUrl: string;
  readonly options: UpstreamOAuthOptions;
  readonly #deps: UpstreamOAuthDeps;
  /** Credentials are keyed by upstream name and URL: a changed URL never reuses another server's tokens. */
  readonly key: string;
  /** Where the client registration and discovery live: the upstream's key, shared by its principals. */
  readonly #clientKey: string;
  #state: string | undefined;
  /** Set for a step-up of a principal whose shared registration cannot ask for the wider scope. */
  #ownClient = false;
  #refreshing: Promise<void> | undefined;
  #codeVerifier: string | undefined;

  constructor(upstream: string, serverUrl: string, options: UpstreamOAuthOptions, deps: UpstreamOAuthDeps) {
    this.upstream = upstream;
    this.serverUrl = serverUrl;
    this.options = options;
    this.#deps = deps;
    this.#clientKey = `${upstream} ${serverUrl}`;
    this.key = deps.principal ? `${this.#clientKey} principal ${deps.principal}` : this.#clientKey;
  }

  get loginCommand(): string {
    return this.#deps.loginCommand;
  }

  get principal(): string | undefined {
    return this.#deps.principal;
  }

  /** What a person does to authorize: run the login command, or open the gateway's consent URL. */
  get authorizationHint(): string {
    return this.#deps.authorizationHint?.() ?? `run \`${this.#deps.loginCommand}\``;
  }

  get interactive(): boolean {
    return this.options.grant === "authorization_code";
  }

  get redirectUrl(): string | undefined {
    if (!this.interactive) return undefined;
    return this.#deps.redirectUrl?.() ?? `http://127.0.0.1:${this.options.callbackPort}/callback`;
  }

  get clientMetadataUrl(): string | undefined {
    return this.options.clientMetadataUrl;
  }

  get clientMetadata(): OAuthClientMetadata {
    const redirect = this.redirectUrl;
    // SEP-837: a loopback redirect is a native application; the gateway's own callback is a web one. (The
    // SDK's metadata type predates the field; the SDK sends the object as given.)
    const application = { application_type: this.#deps.redirectUrl ? "web" : "native" };
    return {
      ...application,
      client_name: "toolgate",
      redirect_uris: redirect ? [redirect] : [],
      grant_types: this.interactive ? ["authorization_code", "refresh_token"] : ["client_credentials"],
      response_types: this.interactive ? ["code"] : [],
      token_endpoint_auth_method: this.options.clientSecret ? "client_secret_basic" : "none",
      ...(this.options.scopes.length > 0 && { scope: this.options.scopes.join(" ") }),
    };
  }

  state(): string {
    this.#state = randomBytes(16).toString("base64url");
    return this.#state;
  }

  /** The state of the authorization request in progress (the login callback checks it). */
  get expectedState(): string | undefined {
    return this.#state;
  }

  async clientInformation(): Promise<OAuthClientInformationMixed | undefined> {
    const stored = await this.#client();
    const { clientId, clientSecret } = this.options;
    if (!clientId) return stored;
    // A pre-registered client: the stored copy carries the issuer the SDK bound it to after first use.
    if (stored?.client_id === clientId) return stored;
    return { client_id: clientId, ...(clientSecret && { client_secret: clientSecret }) };
  }

  /** Client credentials: the grant and its scope; the authorization-code flow keeps the SDK's default. */
  prepareTokenRequest(scope?: string): URLSearchParams | undefined {
    if (this.interactive) return undefined;
    const params = new URLSearchParams({ grant_type: "client_credentials" });
    const wanted = scope ?? this.clientMetadata.scope;
    if (wanted) params.set("scope", wanted);
    return params;
  }

  saveClientInformation(client: OAuthClientInformationMixed): Promise<void> {
    return this.#deps.store.update(this.#ownClient ? this.key : this.#clientKey, { client });
  }

  /**
   * The registration in use: the upstream's shared one, or a principal's own (registered for a step-up the
   * shared registration's scope does not allow, so other principals' grants stay untouched).
   */
  async #client(): Promise<OAuthClientInformationMixed | undefined> {
    const own = this.#deps.principal ? (await this.#stored())?.client : undefined;
    if (own || this.#ownClient) return own;
    return (await this.#deps.store.get(this.#clientKey))?.client;
  }

  /** Per principal: the next registration is this principal's own (its previous own one is dropped). */
  async registerOwnClient(): Promise<void> {
    this.#ownClient = true;
    await this.#deps.store.update(this.key, { client: undefined, tokens: undefined });
  }

  async tokens(): Promise<OAuthTokens | undefined> {
    const tokens = (await this.#stored())?.tokens;
    if (!tokens || this.#refreshing) return tokens;
    const renewable = tokens.refresh_token !== undefined || !this.interactive;
    if (renewable && refreshDue(tokens)) {
      this.#refreshing = this.#refresh();
      try {
        await this.#refreshing;
      } finally {
        this.#refreshing = undefined;
      }
      return (await this.#stored())?.tokens;
    }
    return tokens;
  }

  /** A refresh (or a new client-credentials token) through the SDK; failures leave "needs authorization". */
  async #refresh(): Promise<void> {
    await auth(this, { serverUrl: this.serverUrl }).catch(() => undefined);
  }

  async saveTokens(tokens: OAuthTokens): Promise<void> {
    const expiresAt = tokens.expires_in !== undefined ? Date.now() + tokens.expires_in * 1000 : undefined;
    const granted = new Set(tokens.scope?.split(" "));
    const stepUp = await this.stepUpScope();
    // A token that carries the stepped-up scope settles it.
    const settled = stepUp?.split(" ").every((s) => granted.has(s));
    await this.#deps.store.update(this.key, {
      tokens: { ...tokens, ...(expiresAt && { expiresAt }) },
      ...(settled && { stepUpScope: undefined }),
    });
  }

  redirectToAuthorization(url: URL): void {
    this.#deps.onAuthorizationUrl?.(url);
  }

  /** PKCE verifiers stay in memory: one login starts and finishes the flow in one process. */
  saveCodeVerifier(codeVerifier: string): void {
    this.#codeVerifier = codeVerifier;
  }

  codeVerifier(): string {
    if (!this.#codeVerifier)
      throw new Error(`no authorization of upstream "${this.upstream}" is in progress`);
    return this.#codeVerifier;
  }

  /**
   * Whether connecting can succeed without a person: a consent-based upstream needs stored tokens. Without
   * them the gateway does not contact the authorization server at all (no registrations on every retry).
   */
  async hasCredentials(): Promise<boolean> {
    return !this.interactive || (await this.#stored())?.tokens !== undefined;
  }

  async invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): Promise<void> {
    const shared: Partial<StoredCredentials> = {};
    const own = this.#deps.principal !== undefined && (await this.#stored())?.client !== undefined;
    if (own && (scope === "all" || scope === "client"))
      await this.#deps.store.update(this.key, { client: undefined });
    else if (scope === "all" || scope === "client") shared.client = undefined;
    if (scope === "all" || scope === "discovery") shared.discovery = undefined;
    if (scope === "all" || scope === "verifier") this.#codeVerifier = undefined;
    if (Object.keys(shared).length > 0) await this.#deps.store.update(this.#clientKey, shared);
    if (scope === "all" || scope === "tokens") await this.#deps.store.update(this.key, { tokens: undefined });
  }

  /**
   * RFC 8414 §3.3: metadata whose issuer is not the authorization server it was fetched for is not used (the
   * SDK does not check it; throwing here stops `auth()` before any of its endpoints is contacted).
   */
  saveDiscoveryState(discovery: OAuthDiscoveryState): Promise<void> {
    const issuer = discovery.authorizationServerMetadata?.issuer;
    if (issuer !== undefined && !sameIssuer(issuer, discovery.authorizationServerUrl)) {
      throw new Error(
        `the authorization server metadata of ${discovery.authorizationServerUrl} names issuer ${issuer}; refusing to use it (RFC 8414)`,
      );
    }
    return this.#deps.store.update(this.#clientKey, { discovery });
  }

  async discoveryState(): Promise<OAuthDiscoveryState | undefined> {
    return (await this.#deps.store.get(this.#clientKey))?.discovery;
  }

  /**
   * Wraps the transport's fetch to notice a 403 insufficient_scope: a gateway cannot ask a person for the
   * wider scope mid-call, so it remembers the scope for the next `toolgate auth login`.
   */
  observeFetch = (fetchFn: FetchLike): FetchLike => {
    return async (input, init) => {
      const response = await fetchFn(input, init);
      if (response.status === 403) {
        const { error, scope } = extractWWWAuthenticateParams(response);
        if (error === "insufficient_scope" && scope)
          await this.#deps.store.update(this.key, { stepUpScope: scope });
      }
      return response;
    };
  };

  /** The scope a login must ask for beyond what the upstream's 401 names (after a 403 insufficient_scope). */
  async stepUpScope(): Promise<string | undefined> {
    return (await this.#stored())?.stepUpScope;
  }

  /** Token state for `toolgate auth status` and the status page; never the tokens themselves. */
  async describe(): Promise<TokenState> {
    const stored = await this.#stored();
    const tokens = stored?.tokens;
    const issuer = (await this.#deps.store.get(this.#clientKey))?.discovery?.authorizationServerUrl;
    if (!tokens) return { state: "needs authorization", ...(issuer && { issuer }) };
    const expiresAt = tokens.expiresAt;
    const expired = expiresAt !== undefined && expiresAt <= Date.now();
    const renewable = tokens.refresh_token !== undefined || !this.interactive;
    return {
      state: expired ? (renewable ? "expired (refreshable)" : "expired") : "authorized",
      ...(expiresAt !== undefined && { expiresAt: new Date(expiresAt).toISOString() }),
      ...(tokens.scope && { scope: tokens.scope }),
      ...(issuer && { issuer }),
    };
  }

  #stored(): Promise<StoredCredentials | undefined> {
    return this.#deps.store.get(this.key);
  }
}

export interface TokenState {
  state: "authorized" | "expired (refreshable)" | "expired" | "needs authorization";
  expiresAt?: string;
  scope?: string;
  issuer?: string;
}

function refreshDue(tokens: NonNullable<StoredCredentials["tokens"]>): boolean {
  if (tokens.expiresAt === undefined) return false;
  const early = Math.min(REFRESH_EARLY_MS, ((tokens.expires_in ?? Number.POSITIVE_INFINITY) * 1000) / 4);
  return tokens.expiresAt - Date.now() < early;
}

/** Issuer identifiers compare as URLs, a lone trailing slash aside (`new URL` adds one to a bare origin). */
function sameIssuer(a: string, b: string): boolean {
  const norm = (u: string) => {
    try {
      return new URL(u).href.replace(/\/$/, "");
    } catch {
      return u;
    }
  };
  return norm(a) === norm(b);
}

/** What a person runs to authorize an upstream of this config. */
export function loginCommand(upstream: string, configFile: string | undefined): string {
  return `toolgate auth login ${upstream}${configFile ? ` --config ${configFile}` : ""}`;
}

/** The `oauthFor` hook of the upstreams: an OAuth client for each upstream whose config asks for one. */
export function oauthClients(
  store: CredentialStore,
  loginCommand: (upstream: string) => string,
): (upstream: string, transport: TransportConfig) => UpstreamOAuth | undefined {
  return (upstream, transport) =>
    "oauth" in transport && transport.oauth
      ? new UpstreamOAuth(upstream, transport.url, transport.oauth, {
          store,
          loginCommand: loginCommand(upstream),
        })
      : undefined;
}
