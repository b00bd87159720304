/**
 * The cluster side of the lock and the caps, when replicas share a store (Redis):
 * - a lock is also a lease with a fencing token, renewed while the call runs; a replica that dies stops
 *   renewing and its lease expires after `leaseTtlMs`. A lease that cannot be renewed in time aborts its
 *   call with LockUnavailable (another replica may take it after expiry), and a lease that cannot be taken
 *   because the store is away is refused with LockUnavailable (fail closed: never two runs at once);
 * - a call holds one permit of its tool, upstream and global caps, counted cluster-wide, all or none.
 *   Caps are soft: while the store is away they fall back to local bulkheads of limit / replicas.
 * Waits poll every `pollMs` (with jitter) within the caller's time limit; there is no cross-replica FIFO.
 * One timer renews everything this replica holds, every `leaseTtlMs / 3`.
 */
import { randomUUID } from "node:crypto";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { CapSlot, ClusterStores } from "../stores/store.ts";
import { StoreUnavailable } from "../stores/store.ts";
import { abortError } from "./abort.ts";
import type { CallContext } from "./types.ts";

export interface ClusterOptions {
  stores: ClusterStores;
  /** This replica: the holder named in its leases, the prefix of its permits. */
  instanceId: string;
  leaseTtlMs: number;
  /** Replicas in the cluster: local fallback limits are the shared ones divided by this. */
  replicas: number;
  /** How often a waiter retries a held lease or a full cap. */
  pollMs: number;
  /** What a lock does while the store is unreachable: refuse (fail closed) or fall back to the local lock only. */
  locksWhenUnavailable: "refuse" | "local";
}

interface Held {
  renewedAt: number;
  renew(): Promise<boolean>;
  /** Called once when the hold is lost (not renewable before it expires). */
  lost(why: string): void;
}

export interface HeldLease {
  readonly id: string;
  readonly token: number;
  /** Set by the caller: fires when the lease is lost while the call runs. */
  onLost: ((why: string) => void) | undefined;
}

export interface ClusterCounters {
  /** Calls whose caps fell back to local limits. */
  capFallbacks: number;
  /** Locks refused with LockUnavailable (store away at acquire, or lease lost mid-call). */
  locksRefused: number;
  /** Locks run on the local lock only (locksWhenUnavailable: local). */
  lockFallbacks: number;
  leasesLost: number;
}

export class Cluster {
  readonly options: ClusterOptions;
  readonly counters: ClusterCounters = { capFallbacks: 0, locksRefused: 0, lockFallbacks: 0, leasesLost: 0 };
  readonly #held = new Set<Held>();
  readonly #leases = new Map<HeldLease, Held>();
  readonly #timer: ReturnType<typeof setInterval>;

  constructor(options: ClusterOptions) {
    this.options = options;
    this.#timer = setInterval(() => this.#renewAll(), Math.max(10, Math.floor(options.leaseTtlMs / 3)));
    this.#timer.unref();
  }

  /** True while the store answers: caps and locks are cluster-wide. */
  get shared(): boolean {
    return this.options.stores.health.available;
  }

  /** Leases this replica holds now (for the status page). */
  leasesHeld(): Array<{ id: string; token: number }> {
    return [...this.#leases.keys()].map((l) => ({ id: l.id, token: l.token }));
  }

  /**
   * Takes the lease of lock `id`, waiting until `waitUntil` (performance.now() ms). Undefined: the store
   * is away and locks fall back to local (the caller's local lock is all there is).
   */
  async acquireLease(id: string, ctx: CallContext, waitUntil: number): Promise<HeldLease | undefined> {
    const { stores, instanceId, leaseTtlMs } = this.options;
    const started = performance.now();
    for (;;) {
      let token: number | undefined;
      try {
        token = await stores.leases.tryAcquire(id, instanceId, leaseTtlMs);
      } catch (err) {
        if (!(err instanceof StoreUnavailable)) throw err;
        if (this.options.locksWhenUnavailable === "local") {
          this.counters.lockFallbacks++;
          return undefined;
        }
        this.counters.locksRefused++;
        throw lockUnavailable(
          ctx,
          id,
          `the lock store is unreachable (${err.message}); the call was not run, so it cannot run twice: retry when the store is back`,
        );
      }
      if (token !== undefined) {
        const lease = this.#hold(id, token);
        if (ctx.signal.aborted) {
          await this.releaseLease(lease);
          throw abortError(ctx, "lock", `while taking the cluster lease of lock ${id}`);
        }
        return lease;
      }
      await this.#pause(
        ctx,
        waitUntil,
        () =>
          new GatewayError(
            ErrorCode.LockTimeout,
            `waited ${Math.round(performance.now() - started)} ms for lock ${id} held by another replica: retry later, or raise lock.timeoutMs`,
            { upstream: ctx.upstream, tool: ctx.tool, policy: "lock", data: { lock: id } },
          ),
      );
    }
  }

  /** Gives a lease back; a failure is harmless (the lease expires on its own). */
  async releaseLease(lease: HeldLease): Promise<void> {
    const held = this.#leases.get(lease);
    if (held) this.#held.delete(held);
    this.#leases.delete(lease);
    try {
      await this.options.stores.leases.release(lease.id, lease.token);
    } catch {}
  }

  /**
   * Takes a permit of every cap, waiting until `waitUntil`. Returns its release function, or undefined
   * when the store is away (the caller then uses its local fallback limits).
   */
  async acquirePermits(
    caps: readonly CapSlot[],
    ctx: CallContext,
    waitUntil: number,
  ): Promise<(() => void) | undefined> {
    const { stores, instanceId, leaseTtlMs } = this.options;
    const permit = `${instanceId}:${randomUUID()}`;
    const started = performance.now();
    for (;;) {
      let full: number;
      try {
        full = await stores.permits.tryAcquire(caps, permit, leaseTtlMs);
      } catch (err) {
        if (!(err instanceof StoreUnavailable)) throw err;
        this.counters.capFallbacks++;
        return undefined;
      }
      if (full < 0) {
        const held: Held = {
          renewedAt: performance.now(),
          renew: () => stores.permits.renew(caps, permit, leaseTtlMs),
          lost: () => {},
        };
        this.#held.add(held);
        const release = () => {
          this.#held.delete(held);
          stores.permits.release(caps, permit).catch(() => {});
        };
        if (ctx.signal.aborted) {
          release();
          throw abortError(ctx, "bulkhead", "while taking cluster permits");
        }
        return release;
      }
      const cap = caps[full] as CapSlot;
      await this.#pause(
        ctx,
        waitUntil,
        () =>
          new GatewayError(
            ErrorCode.QueueTimeout,
            `waited ${Math.round(performance.now() - started)} ms for a slot of ${cap.name} (limit ${cap.limit} across the cluster): retry later, or raise its maxInFlight or queueTimeoutMs`,
            { upstream: ctx.upstream, tool: ctx.tool, policy: "bulkhead", data: { bulkhead: cap.name } },
          ),
      );
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  #hold(id: string, token: number): HeldLease {
    const lease: HeldLease = { id, token, onLost: undefined };
    const { stores, leaseTtlMs } = this.options;
    const held: Held = {
      renewedAt: performance.now(),
      renew: () => stores.leases.renew(id, token, leaseTtlMs),
      lost: (why) => {
        this.counters.leasesLost++;
        lease.onLost?.(why);
      },
    };
    this.#held.add(held);
    this.#leases.set(lease, held);
    return lease;
  }

  /** Renews every hold; one that is gone, or cannot be renewed before it would expire, is lost. */
  #renewAll(): void {
    const { leaseTtlMs } = this.options;
    const interval = Math.max(10, Math.floor(leaseTtlMs / 3));
    for (const held of this.#held) {
      held.renew().then(
        (ok) => {
          if (!this.#held.has(held)) return;
          if (ok) held.renewedAt = performance.now();
          else this.#lose(held, "its lease expired or was taken over");
        },
        (err) => {
          if (!this.#held.has(held)) return;
          // The next renewal would come after expiry: give up now, while the call can still be stopped.
          if (performance.now() + interval >= held.renewedAt + leaseTtlMs) {
            this.#lose(held, `it could not be renewed: ${(err as Error).message}`);
          }
        },
      );
    }
  }

  #lose(held: Held, why: string): void {
    this.#held.delete(held);
    held.lost(why);
  }

  /** Sleeps one poll interval (jittered), or throws at the time limit or on abort. */
  async #pause(ctx: CallContext, waitUntil: number, onTimeout: () => GatewayError): Promise<void> {
    const left = waitUntil - performance.now();
    if (left <= 0) throw onTimeout();
    if (ctx.signal.aborted) throw abortError(ctx, "cluster", "while waiting");
    const ms = Math.min(left, this.options.pollMs * (0.5 + Math.random()));
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        ctx.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      ctx.signal.addEventListener("abort", done, { once: true });
    });
    if (ctx.signal.aborted) throw abortError(ctx, "cluster", "while waiting");
  }
}

export function lockUnavailable(ctx: CallContext, id: string, why: string): GatewayError {
  return new GatewayError(ErrorCode.LockUnavailable, `lock ${id}: ${why}`, {
    upstream: ctx.upstream,
    tool: ctx.tool,
    policy: "lock",
    data: { lock: id },
  });
}
