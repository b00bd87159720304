/**
 * Attaching configured credentials to an HTTP request, per the operation's auth steps (operations.ts).
 * OAuth 2.0 client-credentials tokens are cached until shortly before they expire; concurrent calls share
 * one token request, and a 401 drops the cached token so the next attempt fetches a new one.
 * Credentials never reach logs or error messages.
 */
import type { OpenApiAuth } from "../../config/openapi-schema.ts";
import type { AuthStep } from "./operations.ts";

export interface RequestParts {
  url: URL;
  headers: Headers;
  cookies: string[];
}

/**
 * Refresh this long before `expires_in` runs out; a token that lives less than four times that, a quarter of
 * its life before.
 */
const EXPIRY_MARGIN_MS = 30_000;
const TOKEN_TIMEOUT_MS = 15_000;

export class Credentials {
  readonly #auth: OpenApiAuth;
  #token: { value: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;

  constructor(auth: OpenApiAuth) {
    this.#auth = auth;
  }

  async apply(steps: AuthStep[], parts: RequestParts, signal: AbortSignal): Promise<void> {
    const auth = this.#auth;
    for (const step of steps) {
      switch (step.kind) {
        case "bearer":
          if (auth.bearer) parts.headers.set("authorization", `Bearer ${auth.bearer}`);
          break;
        case "basic":
          if (auth.basic) {
            const pair = Buffer.from(`${auth.basic.username}:${auth.basic.password}`).toString("base64");
            parts.headers.set("authorization", `Basic ${pair}`);
          }
          break;
        case "apiKey": {
          const key = typeof auth.apiKey === "string" ? auth.apiKey : auth.apiKey?.value;
          if (!key) break;
          if (step.in === "header") parts.headers.set(step.name, key);
          else if (step.in === "query") parts.url.searchParams.set(step.name, key);
          else parts.cookies.push(`${step.name}=${encodeURIComponent(key)}`);
          break;
        }
        case "oauth2":
          parts.headers.set("authorization", `Bearer ${await this.#oauthToken(step.tokenUrl, signal)}`);
          break;
      }
    }
  }

  /** The API refused our credentials: a cached OAuth token is not used again. */
  rejected(): void {
    this.#token = undefined;
  }

  async #oauthToken(specTokenUrl: string | undefined, signal: AbortSignal): Promise<string> {
    if (this.#token && Date.now() < this.#token.expiresAt) return this.#token.value;
    // One token request at a time; callers share it. Its own timeout, not a caller's signal, bounds it.
    this.#pending ??= this.#fetchToken(specTokenUrl).finally(() => {
      this.#pending = undefined;
    });
    const pending = this.#pending;
    return new Promise<string>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      pending.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
  }

  async #fetchToken(specTokenUrl: string | undefined): Promise<string> {
    const oauth = this.#auth.oauth2;
    const tokenUrl = oauth?.tokenUrl ?? specTokenUrl;
    if (!oauth || !tokenUrl) {
      throw new Error(
        "OAuth 2.0: no token URL (set auth.oauth2.tokenUrl or a clientCredentials flow in the spec)",
      );
    }
    const form = new URLSearchParams({ grant_type: "client_credentials" });
    if (oauth.scopes?.length) form.set("scope", oauth.scopes.join(" "));
    const basic = Buffer.from(
      `${encodeURIComponent(oauth.clientId)}:${encodeURIComponent(oauth.clientSecret)}`,
    ).toString("base64");
    const response = await fetch(tokenUrl, {
      method: "POST",
      headers: {
        authorization: `Basic ${basic}`,
        "content-type": "application/x-www-form-urlencoded",
        accept: "application/json",
      },
      body: form,
      signal: AbortSignal.timeout(TOKEN_TIMEOUT_MS),
    });
    const body = (await response.json().catch(() => ({}))) as {
      access_token?: unknown;
      expires_in?: unknown;
    };
    if (!response.ok || typeof body.access_token !== "string") {
      throw new Error(
        `OAuth 2.0 token request to ${new URL(tokenUrl).origin} answered HTTP ${response.status}`,
      );
    }
    const lifetimeMs = typeof body.expires_in === "number" ? body.expires_in * 1000 : 3_600_000;
    this.#token = {
      value: body.access_token,
      // A 30-second token would otherwise be fetched again for every request.
      expiresAt: Date.now() + lifetimeMs - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 4),
    };
    return body.access_token;
  }
}
