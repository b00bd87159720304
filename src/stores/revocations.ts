/**
 * Ended sessions, shared by the replicas (server/session-seal.ts says why a sealed session id outlives the
 * replica that ended it). A DELETE records the id in Redis as `revoked:<sha256 of the id>` with a TTL of the
 * id's remaining max age (the set cleans itself) and announces the digest on the channel `sessions:revoked`;
 * every replica closes its copy on that message. A replica about to rebuild a session it does not hold asks
 * first (`isRevoked`); a held session is never looked up.
 *
 * Only digests travel and are stored: a sealed id names its principal's session and is not written anywhere.
 * A revocation that cannot be written (Redis lost) is kept here and written when Redis is back, and this
 * replica refuses that id meanwhile.
 */
import { createHash } from "node:crypto";
import type { RedisAccess } from "./redis.ts";

export interface SessionRevocations {
  /**
   * Records that session `id` ended, for `ttlMs` (its remaining max age), and tells every replica. Resolves
   * false when Redis cannot take it now: it is written when Redis is back.
   */
  revoke(id: string, ttlMs: number): Promise<boolean>;
  /** Whether session `id` was ended on any replica. Throws StoreUnavailable when that cannot be told. */
  isRevoked(id: string): Promise<boolean>;
  /**
   * Calls `listener` with the digest (`sessionDigest`) of each session ended on any replica, and with
   * `undefined` when announcements may have been missed (the subscriber reconnected): re-check what is held.
   */
  onRevoked(listener: (digest: string | undefined) => void): void;
  /** Of these ids, those ended on any replica (after missed announcements). Throws StoreUnavailable. */
  revokedAmong(ids: readonly string[]): Promise<string[]>;
}

/** What revocations need of the cluster's Redis (RedisStores). */
export interface RevocationBackend {
  readonly access: RedisAccess;
  onAvailability(listener: (available: boolean) => void): void;
  subscribe(channel: string, listener: (message: string) => void, onReady?: () => void): void;
}

const CHANNEL = "sessions:revoked";

/** The hex SHA-256 of a session id: how revocations name it in keys and messages. */
export function sessionDigest(id: string): string {
  return createHash("sha256").update(id).digest("hex");
}

export class RedisSessionRevocations implements SessionRevocations {
  readonly #backend: RevocationBackend;
  /** Revocations not written yet (Redis lost): digest → expiry (epoch ms). */
  readonly #unwritten = new Map<string, number>();
  readonly #now: () => number;

  constructor(backend: RevocationBackend, options: { now?: () => number } = {}) {
    this.#backend = backend;
    this.#now = options.now ?? Date.now;
    backend.onAvailability((available) => {
      if (available) void this.#writeUnwritten();
    });
  }

  async revoke(id: string, ttlMs: number): Promise<boolean> {
    if (ttlMs <= 0) return true; // too old to be rebuilt anywhere already
    const digest = sessionDigest(id);
    this.#unwritten.set(digest, this.#now() + ttlMs);
    try {
      await this.#write(digest, ttlMs);
      return true;
    } catch {
      return !this.#unwritten.has(digest); // written, only the announcement was lost
    }
  }

  async isRevoked(id: string): Promise<boolean> {
    const digest = sessionDigest(id);
    if (this.#isUnwritten(digest)) return true;
    const { client, key, run } = this.#backend.access;
    return (await run(() => client.exists(key(`revoked:${digest}`)))) === 1;
  }

  async revokedAmong(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    const { client, key, run } = this.#backend.access;
    const digests = ids.map(sessionDigest);
    const found = await run(() => Promise.all(digests.map((d) => client.exists(key(`revoked:${d}`)))));
    return ids.filter((_, i) => found[i] === 1 || this.#isUnwritten(digests[i] as string));
  }

  onRevoked(listener: (digest: string | undefined) => void): void {
    // Re-checked when the subscriber is back and when commands run again: either may come first.
    this.#backend.subscribe(
      CHANNEL,
      (digest) => listener(digest),
      () => listener(undefined),
    );
    this.#backend.onAvailability((available) => {
      if (available) listener(undefined);
    });
  }

  #isUnwritten(digest: string): boolean {
    const expiresAt = this.#unwritten.get(digest);
    if (expiresAt === undefined) return false;
    if (expiresAt > this.#now()) return true;
    this.#unwritten.delete(digest);
    return false;
  }

  /** SET with the TTL, then the announcement; the digest leaves `unwritten` once both are done. */
  async #write(digest: string, ttlMs: number): Promise<void> {
    const { client, key, run } = this.#backend.access;
    await run(() => client.set(key(`revoked:${digest}`), "1", "PX", Math.ceil(ttlMs)));
    this.#unwritten.delete(digest);
    await run(() => client.publish(key(CHANNEL), digest));
  }

  async #writeUnwritten(): Promise<void> {
    for (const [digest, expiresAt] of [...this.#unwritten]) {
      const ttlMs = expiresAt - this.#now();
      if (ttlMs <= 0) {
        this.#unwritten.delete(digest);
        continue;
      }
      try {
        await this.#write(digest, ttlMs);
      } catch {
        return; // lost again: the next recovery writes the rest
      }
    }
  }
}
