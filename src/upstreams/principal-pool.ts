/**
 * Per-principal upstream connections (`auth.oauth.perPrincipal`): each gateway principal connects its own
 * account at the upstream, and its calls go over its own connection with its own tokens. Connections are
 * pooled per upstream, keyed by principal, bounded (least recently used closed first) and closed when idle.
 *
 * The catalog (tool list) comes from the shared Upstream of the registry, which for such an upstream uses
 * the tokens of the "catalog principal": the first principal that connected (persisted in the credential
 * store), replaced by the next one to connect while the catalog connection cannot authorize. Calls never go
 * over the catalog connection.
 *
 * Consent starts at `/oauth/upstreams/NAME/authorize` (server/upstream-auth-routes.ts). The URL handed to a
 * principal without a token carries a signed ticket naming that principal (valid 10 minutes), so it works in
 * a plain browser that has no API key to send.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { EventEmitter } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { isDeepStrictEqual } from "node:util";
import { LRUCache } from "lru-cache";
import type { UpstreamConfig } from "../config/load.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import type { CredentialStore } from "./auth/credential-store.ts";
import { UpstreamOAuth } from "./auth/oauth-provider.ts";
import type { UpstreamHandle } from "./handle.ts";
import { Upstream, type UpstreamOptions, type UpstreamStatus } from "./upstream.ts";

/** Who is calling (structurally server/auth's Principal). */
export interface PoolPrincipal {
  id: string;
  kind: string;
}

/** A connection for one call, and the key that routes the upstream's requests back to its callers. */
export interface Connection {
  handle: UpstreamHandle;
  routingKey: string;
}

export interface PrincipalPoolOptions {
  store: CredentialStore;
  log: Logger;
  /** The hooks every connection gets (server→client requests, notifications), by routing key. */
  upstreamOptions: (routingKey: string) => Omit<UpstreamOptions, "oauthFor">;
  /** A principal's connection (re)connected: it holds none of an earlier connection's subscriptions. */
  onConnected?: ((connection: Connection) => void) | undefined;
  /** Whether a session is subscribed to resources on this connection: being idle does not close such a one. */
  subscribedOn?: ((routingKey: string) => boolean) | undefined;
  /** What an operator runs for a shared upstream (unused here but required by the provider). */
  loginCommand: (upstream: string) => string;
  /**
   * Signs consent tickets (TOOLGATE_TOKEN_KEY): replicas sharing it accept each other's links. Without it a
   * key made for this process signs them, and links die with it.
   */
  ticketSecret?: string | undefined;
}

const TICKET_TTL_MS = 10 * 60_000;
/** An evicted connection is closed once its calls in flight end, or after this long at most. */
const EVICTION_DRAIN_MS = 5 * 60_000;

export function principalKey(principal: PoolPrincipal): string {
  return `${principal.kind}:${principal.id}`;
}

/** The routing key of a principal's connection to an upstream (the reverse path's key for it). */
function connectionKey(upstream: string, principal: string): string {
  return `${upstream} ${principal}`;
}

export function isPerPrincipal(config: UpstreamConfig): boolean {
  return "oauth" in config.transport && config.transport.oauth?.perPrincipal === true;
}

export class PrincipalPool {
  readonly #options: PrincipalPoolOptions;
  /** This gateway's origin as browsers reach it, once it listens (auth.oauth.publicUrl overrides it). */
  #origin: string | undefined;
  readonly #ticketKey: Buffer;
  /** One provider per (upstream, principal): a refresh of one principal's tokens is never run twice at once. */
  readonly #providers = new LRUCache<string, UpstreamOAuth>({ max: 10_000 });
  readonly #pools = new Map<string, LRUCache<string, Upstream>>();
  readonly #catalogPrincipal = new Map<string, string>();
  /** `authorized` events, by `upstream\nprincipal`: calls waiting on a URL-mode elicitation go on. */
  readonly #consents = new EventEmitter().setMaxListeners(0);

  constructor(options: PrincipalPoolOptions) {
    this.#options = options;
    this.#ticketKey = options.ticketSecret
      ? createHash("sha256").update(`toolgate consent tickets\n${options.ticketSecret}`).digest()
      : randomBytes(32);
  }

  set origin(origin: string) {
    this.#origin = origin;
  }

  /** Read which principal each per-principal upstream's catalog connection uses. */
  async load(configs: UpstreamConfig[]): Promise<void> {
    for (const config of configs.filter(isPerPrincipal)) {
      const principal = (await this.#options.store.get(sharedKey(config)))?.catalogPrincipal;
      if (principal) this.#catalogPrincipal.set(config.name, principal);
    }
  }

  /** The OAuth client of a per-principal upstream's shared (catalog) connection. */
  catalogOAuth(config: UpstreamConfig): UpstreamOAuth {
    const principal = this.#catalogPrincipal.get(config.name);
    if (principal) return this.provider(config, principal);
    // Nobody connected yet: no tokens under this key, so the upstream waits for the first consent.
    return new UpstreamOAuth(config.name, serverUrl(config), oauthOptions(config), {
      store: this.#options.store,
      loginCommand: this.consentUrl(config),
      principal: "(nobody yet)",
      redirectUrl: () => this.#callbackUrl(config),
      authorizationHint: () => `each principal connects their own account at ${this.consentUrl(config)}`,
    });
  }

  /** The provider (tokens) of one principal (`kind:id`) at one upstream. */
  provider(config: UpstreamConfig, principal: string): UpstreamOAuth {
    const key = `${config.name}\n${serverUrl(config)}\n${principal}`;
    let provider = this.#providers.get(key);
    if (!provider) {
      provider = new UpstreamOAuth(config.name, serverUrl(config), oauthOptions(config), {
        store: this.#options.store,
        loginCommand: this.#options.loginCommand(config.name),
        principal,
        redirectUrl: () => this.#callbackUrl(config),
        authorizationHint: () => `open ${this.consentUrl(config, principal)} in a browser`,
      });
      this.#providers.set(key, provider);
    }
    return provider;
  }

  /**
   * The connection a call by `principal` uses: the shared one, or for a per-principal upstream the
   * principal's own (opened on demand). Throws an UpstreamUnavailable naming the consent URL when the
   * principal has not connected an account, or the failure of its connection.
   */
  async connection(handle: UpstreamHandle, principal: PoolPrincipal): Promise<Connection> {
    const config = handle.config;
    if (!isPerPrincipal(config)) return { handle, routingKey: handle.name };
    const key = principalKey(principal);
    const routingKey = connectionKey(handle.name, key);
    const provider = this.provider(config, key);
    const pool = this.#pool(config);
    if (!(await provider.hasCredentials())) {
      // Never connected, or logged out (`toolgate auth logout --principal`): a connection left open goes.
      pool.delete(key);
      throw this.#needsConsent(config, key);
    }
    let upstream = pool.get(key);
    if (upstream && !isDeepStrictEqual(upstream.config.transport, config.transport)) {
      pool.delete(key);
      upstream = undefined;
    }
    if (!upstream) {
      const opened = new Upstream(config, {
        ...this.#options.upstreamOptions(routingKey),
        oauthFor: () => provider,
      });
      opened.on("connected", () => this.#options.onConnected?.({ handle: opened, routingKey }));
      pool.set(key, opened);
      opened.start();
      upstream = opened;
    } else if (!isDeepStrictEqual(upstream.config, config)) {
      upstream.reconfigure(config);
    }
    const status = await settled(upstream, config.connectTimeoutMs);
    if (status.state === "ready") return { handle: upstream, routingKey };
    if (status.needsAuthorization) {
      // Revoked or expired beyond refresh: close it; the next call after a new consent opens a fresh one.
      pool.delete(key);
      throw this.#needsConsent(config, key);
    }
    throw new GatewayError(
      ErrorCode.UpstreamUnavailable,
      `upstream "${config.name}" (the connection of principal ${principal.id}) is ${status.state}${status.lastError ? `: ${status.lastError}` : ""}`,
      { upstream: config.name, reachedUpstream: false },
    );
  }

  /** The routing key `connection` would give, and the connection only if it is open and ready now: none opens. */
  openConnection(
    handle: UpstreamHandle,
    principal: PoolPrincipal,
  ): Partial<Connection> & { routingKey: string } {
    if (!isPerPrincipal(handle.config)) return { handle, routingKey: handle.name };
    const key = principalKey(principal);
    const open = this.#pools.get(handle.name)?.peek(key);
    const routingKey = connectionKey(handle.name, key);
    return open?.status().state === "ready" ? { handle: open, routingKey } : { routingKey };
  }

  /**
   * A principal finished consent: its next call opens a connection with the new tokens, and a catalog
   * connection still waiting for authorization uses this principal from now on.
   */
  async authorized(shared: UpstreamHandle, key: string): Promise<void> {
    this.#consents.emit(`${shared.name}\n${key}`);
    this.#pools.get(shared.name)?.delete(key);
    const status = shared.status();
    if (status.state === "ready" && this.#catalogPrincipal.has(shared.name)) return;
    this.#catalogPrincipal.set(shared.name, key);
    this.#options.log.info("catalog connection uses this principal's tokens", {
      upstream: shared.name,
      principal: key,
    });
    await this.#options.store.update(sharedKey(shared.config), { catalogPrincipal: key });
    if (shared instanceof Upstream) shared.reconnectNow();
  }

  /**
   * Resolves when `principal` completes consent at `upstream` (as a consent link's ticket lives: 10 minutes
   * at most); rejects when `signal` aborts.
   */
  whenAuthorized(upstream: string, principal: PoolPrincipal, signal: AbortSignal): Promise<void> {
    const event = `${upstream}\n${principalKey(principal)}`;
    return new Promise((resolve, reject) => {
      const done = (err?: unknown) => {
        clearTimeout(timer);
        this.#consents.off(event, onConsent);
        signal.removeEventListener("abort", onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onConsent = () => done();
      const onAbort = () => done(signal.reason);
      const timer = setTimeout(
        () =>
          done(
            new GatewayError(
              ErrorCode.UpstreamUnavailable,
              `no consent at upstream "${upstream}" within ${TICKET_TTL_MS / 60_000} minutes`,
              { upstream },
            ),
          ),
        TICKET_TTL_MS,
      );
      timer.unref();
      if (signal.aborted) return onAbort();
      this.#consents.on(event, onConsent);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** A ticket (in the consent URL) that lets a browser start consent for `principal` at `upstream`. */
  ticket(upstream: string, principal: string, now = Date.now()): string {
    const body = Buffer.from(JSON.stringify({ u: upstream, p: principal, e: now + TICKET_TTL_MS })).toString(
      "base64url",
    );
    return `${body}.${this.#sign(body)}`;
  }

  /** The principal key a valid, unexpired ticket for `upstream` names; undefined otherwise. */
  verifyTicket(upstream: string, ticket: string, now = Date.now()): string | undefined {
    const [body = "", signature = ""] = ticket.split(".");
    const expected = Buffer.from(this.#sign(body));
    const given = Buffer.from(signature);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) return undefined;
    try {
      const { u, p, e } = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as {
        u: string;
        p: string;
        e: number;
      };
      return u === upstream && e > now && typeof p === "string" ? p : undefined;
    } catch {
      return undefined;
    }
  }

  #sign(body: string): string {
    return createHmac("sha256", this.#ticketKey).update(body).digest("base64url");
  }

  /** Where a principal starts consent; with `principal`, a ticket lets a browser do it without credentials. */
  consentUrl(config: UpstreamConfig, principal?: string): string {
    const url = `${this.#base(config)}/oauth/upstreams/${encodeURIComponent(config.name)}/authorize`;
    return principal ? `${url}?ticket=${this.ticket(config.name, principal)}` : url;
  }

  #callbackUrl(config: UpstreamConfig): string {
    return `${this.#base(config)}/oauth/callback`;
  }

  #base(config: UpstreamConfig): string {
    const configured = oauthOptions(config).publicUrl;
    return (configured ?? this.#origin ?? "").replace(/\/+$/, "");
  }

  #needsConsent(config: UpstreamConfig, principal: string): GatewayError {
    const url = this.consentUrl(config, principal);
    return new GatewayError(
      ErrorCode.UpstreamUnavailable,
      `upstream "${config.name}" needs your own account: open ${url} in a browser to connect it, then call again`,
      { upstream: config.name, reachedUpstream: false, data: { authorizeUrl: url } },
    );
  }

  #pool(config: UpstreamConfig): LRUCache<string, Upstream> {
    const open = this.#pools.get(config.name);
    if (open) return open;
    const { maxConnections, idleTimeoutMs } = oauthOptions(config);
    const pool: LRUCache<string, Upstream> = new LRUCache<string, Upstream>({
      max: maxConnections,
      ttl: idleTimeoutMs,
      updateAgeOnGet: true,
      ttlAutopurge: true,
      disposeAfter: (upstream, key, reason) => {
        const subscribed =
          (reason === "expire" || reason === "evict") &&
          this.#options.subscribedOn?.(connectionKey(config.name, key));
        if (!subscribed) return void stopWhenIdle(upstream);
        // Its subscribers still listen, so it stays: asked again one idle timeout on, and evicted only when every
        // other connection is subscribed on too. Put back once the cache is done removing it (its purge timer
        // included), and only if nothing took the key meanwhile.
        queueMicrotask(() => {
          if (pool.has(key)) return void stopWhenIdle(upstream);
          if (reason === "evict") {
            const spare = this.#spare(config.name, pool);
            if (spare === undefined) {
              this.#options.log.warn(
                "closed a per-principal connection a session is subscribed on: every connection is; raise auth.oauth.maxConnections",
                { upstream: config.name, principal: key, maxConnections },
              );
              return void stopWhenIdle(upstream);
            }
            pool.delete(spare);
          }
          pool.set(key, upstream);
        });
      },
    });
    this.#pools.set(config.name, pool);
    return pool;
  }

  /**
   * The least recently used connection no session is subscribed on, to evict in place of one that is. Never the
   * most recently used: the call that made the room needs it.
   */
  #spare(upstream: string, pool: LRUCache<string, Upstream>): string | undefined {
    const newest = pool.keys().next().value;
    for (const key of pool.rkeys()) {
      if (key !== newest && !this.#options.subscribedOn?.(connectionKey(upstream, key))) return key;
    }
    return undefined;
  }

  /** Open connections per upstream (status, tests). */
  size(upstream: string): number {
    return this.#pools.get(upstream)?.size ?? 0;
  }

  /**
   * A principal the gateway no longer admits (its API key left the config): its connections close, once their
   * calls in flight end, rather than at their idle timeout. Its tokens stay in the store.
   */
  forget(principal: PoolPrincipal): void {
    const key = principalKey(principal);
    for (const pool of this.#pools.values()) pool.delete(key);
  }

  /** An upstream left the config: close its principals' connections. */
  drop(upstream: string): void {
    this.#pools.get(upstream)?.clear();
    this.#pools.delete(upstream);
  }

  async stopAll(): Promise<void> {
    const open = [...this.#pools.values()].flatMap((pool) => [...pool.values()]);
    for (const pool of this.#pools.values()) pool.clear();
    this.#pools.clear();
    await Promise.all(open.map((u) => u.stop()));
  }
}

function oauthOptions(config: UpstreamConfig) {
  const options = "oauth" in config.transport ? config.transport.oauth : undefined;
  if (!options) throw new GatewayError(ErrorCode.Internal, `upstream "${config.name}" has no auth.oauth`);
  return options;
}

function serverUrl(config: UpstreamConfig): string {
  return "url" in config.transport ? config.transport.url : "";
}

function sharedKey(config: UpstreamConfig): string {
  return `${config.name} ${serverUrl(config)}`;
}

/** Close an evicted connection once it has no request in flight: eviction must not cut a running call. */
async function stopWhenIdle(upstream: Upstream): Promise<void> {
  const deadline = Date.now() + EVICTION_DRAIN_MS;
  while (upstream.pendingRequests() > 0 && Date.now() < deadline) {
    await sleep(1_000, undefined, { ref: false });
  }
  await upstream.stop();
}

/** Resolves with the status once the connection is ready or has failed (or the timeout passed). */
function settled(upstream: Upstream, timeoutMs: number): Promise<UpstreamStatus> {
  const now = upstream.status();
  if (now.state === "ready" || now.state === "down") return Promise.resolve(now);
  return new Promise((resolve) => {
    const done = (status: UpstreamStatus) => {
      clearTimeout(timer);
      upstream.off("state", onState);
      resolve(status);
    };
    const onState = (status: UpstreamStatus) => {
      if (status.state === "ready" || status.state === "down" || status.state === "stopped") done(status);
    };
    const timer = setTimeout(() => done(upstream.status()), timeoutMs);
    upstream.on("state", onState);
  });
}
