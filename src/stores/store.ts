/**
 * State shared by the replicas of a cluster, behind small interfaces: leases (exclusive locks with
 * fencing tokens), counted permits (concurrency caps) and rate counters. `redis.ts` keeps them on Redis;
 * `memory.ts` keeps them in one process (unit tests, and the shape the Redis one must match).
 *
 * A store that cannot answer (connection lost, command timed out) throws StoreUnavailable: the policies
 * then fail closed (locks) or fall back to local limits (caps, rates). Every other answer is definite.
 */

export class StoreUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "StoreUnavailable";
  }
}

export interface LeaseStore {
  /**
   * Takes lease `id` for `ttlMs` if nobody holds it. Returns its fencing token (one counter for every
   * grant, cluster-wide, so a resource can refuse a stale holder), or undefined when it is held.
   */
  tryAcquire(id: string, holder: string, ttlMs: number): Promise<number | undefined>;
  /** Extends a lease still held with `token`; false when it expired or another holder has it. */
  renew(id: string, token: number, ttlMs: number): Promise<boolean>;
  /** Gives the lease back if `token` still holds it (a stale release is a no-op). */
  release(id: string, token: number): Promise<void>;
}

export interface CapSlot {
  /** Names the cap, e.g. `tool "fs__write"`, `upstream "fs"`, `global`. */
  name: string;
  limit: number;
}

export interface PermitStore {
  /**
   * Takes one permit of every cap in `caps` for `ttlMs`, all or none. Returns -1 when taken, else the
   * index of a cap that is full (nothing is held then).
   */
  tryAcquire(caps: readonly CapSlot[], permit: string, ttlMs: number): Promise<number>;
  /** Extends the permit on every cap; false when one of them had expired (it may be over its limit now). */
  renew(caps: readonly CapSlot[], permit: string, ttlMs: number): Promise<boolean>;
  release(caps: readonly CapSlot[], permit: string): Promise<void>;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterMs: number };

export interface RateStore {
  /** Counts one call of `key` against `perMinute`; a refused call is not counted. */
  consume(key: string, perMinute: number): Promise<RateDecision>;
}

export interface StoreHealth {
  /** False while the backend cannot be reached; the policies then use their local fallbacks. */
  readonly available: boolean;
  /** Round trip of the last health check, ms; undefined before the first one or while unavailable. */
  readonly latencyMs: number | undefined;
}

/** The cluster as the store sees it, for the status page (never on the call path). */
export interface ClusterSnapshot {
  /** Replicas that pinged the store recently (each announces itself with its health ping). */
  replicas: Array<{ id: string; seenAt: string }>;
  /** Lock leases held now, by any replica (at most a few hundred listed). */
  leases: Array<{ lock: string; token: number; holder: string; expiresInMs: number }>;
}

/** Everything the policies share across replicas, with the backend's health. */
export interface ClusterStores {
  readonly kind: "memory" | "redis";
  readonly leases: LeaseStore;
  readonly permits: PermitStore;
  readonly rates: RateStore;
  readonly health: StoreHealth;
  /** Called with the new availability each time it changes. */
  onAvailability(listener: (available: boolean) => void): void;
  /** Throws StoreUnavailable while the backend is away. */
  snapshot(): Promise<ClusterSnapshot>;
  close(): Promise<void>;
}
