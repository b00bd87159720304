/**
 * 2025-11-25 sessions on any replica, with no shared lookup: the Mcp-Session-Id a replica hands out is the
 * session's own state (the principal and the client's `initialize` request: protocol version, capabilities,
 * client info), encrypted and authenticated with AES-256-GCM under a key every replica shares. A replica that
 * gets a request for a session it does not hold opens the id, checks the principal, and rebuilds the session
 * by replaying that `initialize` locally (http.ts). Ids are `tg1.<base64url(iv | ciphertext | tag)>`.
 *
 * What is not carried: per-session settings made later (logging level, resource subscriptions), and calls or
 * streams in flight on the replica that died.
 *
 * Ending a session: a sealed id stays valid until it is `maxAgeMs` old, so with Redis a DELETE also records the
 * id as revoked and announces it (stores/revocations.ts): every replica closes its copy and refuses to rebuild
 * it (404); while Redis cannot say, a rebuild is refused with 503 (fail closed: a DELETE is a logout). Without
 * Redis a DELETE ends the session only on the replica holding it, and another replica would still accept the
 * id until it is `maxAgeMs` old. An idle session expiring on one replica is not ended elsewhere.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";
import type { JSONRPCRequest } from "@modelcontextprotocol/sdk/types.js";

const PREFIX = "tg1.";
const AAD = Buffer.from("toolgate session id v1");
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SealedSession {
  /** Principal id the session belongs to. */
  principal: string;
  /** The client's `initialize` request, replayed to rebuild the session. */
  initialize: JSONRPCRequest;
  /** Epoch ms when the session began. */
  issuedAt: number;
}

export interface SessionSealerOptions {
  /** Shared secret, 32+ characters; the AES key is derived from it (HKDF-SHA256). */
  secret: string;
  /** A sealed id older than this is refused (the client initializes again). */
  maxAgeMs: number;
  now?: () => number;
}

export class SessionSealer {
  readonly #key: Buffer;
  readonly #maxAgeMs: number;
  readonly #now: () => number;

  constructor(options: SessionSealerOptions) {
    this.#key = Buffer.from(hkdfSync("sha256", options.secret, "toolgate", "session id v1", 32));
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? Date.now;
  }

  /** A session id carrying `principal` and the client's `initialize` request. */
  seal(principal: string, initialize: JSONRPCRequest): string {
    const { jsonrpc, id, method, params } = initialize;
    const state: SealedSession = {
      principal,
      initialize: { jsonrpc, id, method, params },
      issuedAt: this.#now(),
    };
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
    cipher.setAAD(AAD);
    const body = Buffer.concat([cipher.update(JSON.stringify(state), "utf8"), cipher.final()]);
    return PREFIX + Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
  }

  /** How long a sealed id issued with `state` is still accepted, ms (0 or less: no longer). */
  remainingMs(state: SealedSession): number {
    return state.issuedAt + this.#maxAgeMs - this.#now();
  }

  /** The state in a sealed id; undefined when it is not ours, tampered with, or too old. */
  open(sessionId: string): SealedSession | undefined {
    if (!sessionId.startsWith(PREFIX)) return undefined;
    const raw = Buffer.from(sessionId.slice(PREFIX.length), "base64url");
    if (raw.length <= IV_BYTES + TAG_BYTES) return undefined;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, IV_BYTES));
      decipher.setAAD(AAD);
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const text = Buffer.concat([
        decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)),
        decipher.final(),
      ]).toString("utf8");
      const state = JSON.parse(text) as SealedSession;
      if (this.#now() - state.issuedAt > this.#maxAgeMs) return undefined;
      return state;
    } catch {
      return undefined;
    }
  }
}
