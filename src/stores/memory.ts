/**
 * The cluster stores in one process: the same contract as the Redis ones (leases with fencing tokens and
 * expiry, all-or-nothing permits with expiry, fixed-window rate counters), on a clock of its own. A gateway
 * without Redis does not use it (its local bulkheads, locks and token buckets already are the whole truth);
 * tests drive the cluster policies with it, and `setAvailable(false)` plays a lost Redis.
 */
import {
  type CapSlot,
  type ClusterSnapshot,
  type ClusterStores,
  type LeaseStore,
  type PermitStore,
  type RateDecision,
  type RateStore,
  type StoreHealth,
  StoreUnavailable,
} from "./store.ts";

export interface MemoryStoresOptions {
  /** Milliseconds clock (default Date.now). */
  now?: () => number;
}

export class MemoryStores implements ClusterStores {
  readonly kind = "memory";
  readonly leases: LeaseStore;
  readonly permits: PermitStore;
  readonly rates: RateStore;
  readonly #now: () => number;
  readonly #listeners: Array<(available: boolean) => void> = [];
  #available = true;

  constructor(options: MemoryStoresOptions = {}) {
    this.#now = options.now ?? Date.now;
    const check = () => {
      if (!this.#available) throw new StoreUnavailable("the memory store is marked unavailable");
    };
    this.leases = memoryLeases(this.#now, check);
    this.permits = memoryPermits(this.#now, check);
    this.rates = memoryRates(this.#now, check);
  }

  get health(): StoreHealth {
    return { available: this.#available, latencyMs: this.#available ? 0 : undefined };
  }

  onAvailability(listener: (available: boolean) => void): void {
    this.#listeners.push(listener);
  }

  /** Plays a lost (false) or recovered (true) backend. */
  setAvailable(available: boolean): void {
    if (available === this.#available) return;
    this.#available = available;
    for (const listener of this.#listeners) listener(available);
  }

  /** Leases are not listed (tests read them through the policies). */
  async snapshot(): Promise<ClusterSnapshot> {
    if (!this.#available) throw new StoreUnavailable("the memory store is marked unavailable");
    return { replicas: [], leases: [] };
  }

  async close(): Promise<void> {}
}

function memoryLeases(now: () => number, check: () => void): LeaseStore {
  const held = new Map<string, { token: number; expiresAt: number }>();
  let fence = 0; // one counter for every lease, as on Redis
  const live = (id: string) => {
    const lease = held.get(id);
    if (lease && lease.expiresAt <= now()) {
      held.delete(id);
      return undefined;
    }
    return lease;
  };
  return {
    async tryAcquire(id, _holder, ttlMs) {
      check();
      if (live(id)) return undefined;
      const token = ++fence;
      held.set(id, { token, expiresAt: now() + ttlMs });
      return token;
    },
    async renew(id, token, ttlMs) {
      check();
      const lease = live(id);
      if (lease?.token !== token) return false;
      lease.expiresAt = now() + ttlMs;
      return true;
    },
    async release(id, token) {
      check();
      if (live(id)?.token === token) held.delete(id);
    },
  };
}

function memoryPermits(now: () => number, check: () => void): PermitStore {
  /** Per cap name: permit id → expiry. */
  const caps = new Map<string, Map<string, number>>();
  const permitsOf = (name: string) => {
    let permits = caps.get(name);
    if (!permits) {
      permits = new Map();
      caps.set(name, permits);
    }
    for (const [id, expiresAt] of permits) if (expiresAt <= now()) permits.delete(id);
    return permits;
  };
  return {
    async tryAcquire(slots: readonly CapSlot[], permit, ttlMs) {
      check();
      const full = slots.findIndex((s) => permitsOf(s.name).size >= s.limit);
      if (full >= 0) return full;
      for (const s of slots) permitsOf(s.name).set(permit, now() + ttlMs);
      return -1;
    },
    async renew(slots, permit, ttlMs) {
      check();
      let all = true;
      for (const s of slots) {
        const permits = permitsOf(s.name);
        if (!permits.has(permit)) all = false;
        permits.set(permit, now() + ttlMs);
      }
      return all;
    },
    async release(slots, permit) {
      check();
      for (const s of slots) caps.get(s.name)?.delete(permit);
    },
  };
}

function memoryRates(now: () => number, check: () => void): RateStore {
  const windows = new Map<string, { count: number; endsAt: number }>();
  return {
    async consume(key, perMinute): Promise<RateDecision> {
      check();
      let window = windows.get(key);
      if (!window || window.endsAt <= now()) {
        window = { count: 0, endsAt: now() + 60_000 };
        windows.set(key, window);
      }
      if (window.count >= perMinute) return { allowed: false, retryAfterMs: window.endsAt - now() };
      window.count++;
      return { allowed: true };
    },
  };
}
