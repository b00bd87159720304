/**
 * Circuit breakers on opossum 10. Only transient failures (classify) count: client errors, overload
 * and `isError` results never open a breaker. Timeouts and cancellation are ours (opossum's timeout
 * neither cancels the call nor is per call), so opossum's `timeout` is off; latency goes to
 * OpenTelemetry, so its percentiles are off. An open breaker fails fast with CircuitOpen saying when it
 * tries again; after `resetTimeoutMs` one trial call runs (half-open) and closes or reopens it.
 */
import { EventEmitter } from "node:events";
import CircuitBreaker from "opossum";
import type { ResolvedPolicy } from "../config/policy.ts";
import { classify, ErrorCode, GatewayError } from "../errors.ts";
import { type BreakerState, noEvents, type PolicyEvents } from "./events.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";

export type BreakerOptions = Pick<
  ResolvedPolicy["breaker"],
  "failureRatePercent" | "volumeThreshold" | "windowMs" | "resetTimeoutMs"
>;

export interface BreakerStats {
  /** In the rolling window: calls that reached the breaker, rejected ones included. */
  calls: number;
  successes: number;
  failures: number;
  rejected: number;
}

export interface BreakerStatus {
  id: string;
  state: BreakerState;
  /** ISO time of the next trial call while open. */
  nextAttemptAt?: string;
  stats: BreakerStats;
}

type Action = (fn: PolicyFn<unknown>, ctx: CallContext) => Promise<unknown>;
const runAction: Action = (fn, ctx) => fn(ctx);

/** Buckets of the rolling window, as opossum's default. */
const BUCKETS = 10;

export class Breaker implements Policy {
  readonly name = "breaker";
  readonly id: string;
  readonly options: BreakerOptions;
  readonly #cb: CircuitBreaker<Parameters<Action>, unknown>;
  readonly #events: PolicyEvents;
  #state: BreakerState = "closed";
  #nextAttemptAt: number | undefined;
  #openedAfter = { failures: 0, calls: 0 };

  /** `rotation`: an emitter of `rotate` events shared by breakers with the same window (fewer timers). */
  constructor(id: string, options: BreakerOptions, events: PolicyEvents = noEvents, rotation?: EventEmitter) {
    this.id = id;
    this.options = options;
    this.#events = events;
    this.#cb = new CircuitBreaker(runAction, {
      name: id,
      timeout: false,
      // opossum opens above the threshold; the config means "at or above".
      errorThresholdPercentage: options.failureRatePercent - 1e-9,
      volumeThreshold: options.volumeThreshold,
      rollingCountTimeout: options.windowMs,
      rollingCountBuckets: BUCKETS,
      resetTimeout: options.resetTimeoutMs,
      rollingPercentilesEnabled: false,
      enableSnapshots: false,
      rotateBucketController: rotation,
      // true = "not a failure": everything but transient failures. A request refused because the
      // upstream is not connected never left the gateway: the upstream's own reconnect loop already fails
      // those fast, and counting them would keep the breaker open after the upstream is back.
      errorFilter: (err: unknown) => classify(err) !== "transient" || notSent(err),
    });
    this.#cb.on("open", () => {
      const { failures, fires } = this.#cb.stats;
      this.#openedAfter = { failures, calls: fires };
      this.#moveTo("open", Date.now() + options.resetTimeoutMs);
    });
    this.#cb.on("halfOpen", () => this.#moveTo("halfOpen", undefined));
    this.#cb.on("close", () => this.#moveTo("closed", undefined));
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Epoch ms of the next trial call while open. */
  get nextAttemptAt(): number | undefined {
    return this.#nextAttemptAt;
  }

  get stats(): BreakerStats {
    const s = this.#cb.stats;
    return { calls: s.fires, successes: s.successes, failures: s.failures, rejected: s.rejects };
  }

  status(): BreakerStatus {
    return {
      id: this.id,
      state: this.#state,
      ...(this.#nextAttemptAt === undefined
        ? {}
        : { nextAttemptAt: new Date(this.#nextAttemptAt).toISOString() }),
      stats: this.stats,
    };
  }

  execute<T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T> {
    const cb = this.#cb;
    // Closed (and running), opossum rejects nothing itself (no timeout, no capacity limit): what fails is
    // the call's own failure, passed on as is, so the common case needs no handler of ours.
    if (cb.closed && !cb.isShutdown) return cb.fire(fn, ctx) as Promise<T>;
    return (cb.fire(fn, ctx) as Promise<T>).then(undefined, (err: unknown) => {
      throw err instanceof Error && CircuitBreaker.isOurError(err) ? this.#rejection(err, ctx) : err;
    });
  }

  /** Stops opossum's timers; later calls fail with ShuttingDown. */
  shutdown(): void {
    this.#cb.shutdown();
  }

  #rejection(err: Error, ctx: CallContext): GatewayError {
    const context = { upstream: ctx.upstream, tool: ctx.tool, policy: "breaker", cause: err };
    if ((err as { code?: string }).code === "ESHUTDOWN") {
      return new GatewayError(ErrorCode.ShuttingDown, `circuit breaker "${this.id}" was shut down`, context);
    }
    const at = this.#nextAttemptAt;
    ctx.events.emit({
      type: "breakerRejected",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      breaker: this.id,
      state: this.#state,
      ...(at === undefined ? {} : { nextAttemptAt: at }),
    });
    if (at === undefined) {
      return new GatewayError(
        ErrorCode.CircuitOpen,
        `circuit breaker "${this.id}" is half-open and its trial call is still running: retry in a moment`,
        { ...context, data: { breaker: this.id, state: this.#state } },
      );
    }
    const inSeconds = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    const { failures, calls } = this.#openedAfter;
    return new GatewayError(
      ErrorCode.CircuitOpen,
      `circuit breaker "${this.id}" is open after ${failures} failures in ${calls} calls ` +
        `within ${this.options.windowMs / 1000} s: failing fast until ${new Date(at).toISOString()} ` +
        `(in ${inSeconds} s), then one trial call`,
      {
        ...context,
        data: {
          breaker: this.id,
          state: this.#state,
          nextAttemptAt: new Date(at).toISOString(),
          retryAfterS: inSeconds,
        },
      },
    );
  }

  #moveTo(to: BreakerState, nextAttemptAt: number | undefined): void {
    const from = this.#state;
    this.#state = to;
    this.#nextAttemptAt = nextAttemptAt;
    this.#events.emit({
      type: "breakerStateChange",
      breaker: this.id,
      from,
      to,
      ...(nextAttemptAt === undefined ? {} : { nextAttemptAt }),
    });
  }
}

/**
 * Every breaker of the gateway, by id, for the status page and shutdown. Breakers with the same window
 * share one bucket-rotation timer. The first options an id is created with win: with scope "upstream",
 * set breaker options at the upstream level.
 */
export class BreakerRegistry {
  readonly #breakers = new Map<string, Breaker>();
  readonly #rotations = new Map<number, { emitter: EventEmitter; timer: ReturnType<typeof setInterval> }>();
  readonly #events: PolicyEvents;

  constructor(options: { events?: PolicyEvents } = {}) {
    this.#events = options.events ?? noEvents;
  }

  /** The breaker guarding a call to `tool` of `upstream`, or undefined when breakers are off for it. */
  breakerFor(options: ResolvedPolicy["breaker"], upstream: string, tool: string): Breaker | undefined {
    if (!options.enabled) return undefined;
    return this.get(options.scope === "upstream" ? `upstream:${upstream}` : `tool:${tool}`, options);
  }

  get(id: string, options: BreakerOptions): Breaker {
    let breaker = this.#breakers.get(id);
    if (breaker === undefined) {
      breaker = new Breaker(id, options, this.#events, this.#rotation(options.windowMs));
      this.#breakers.set(id, breaker);
    }
    return breaker;
  }

  states(): BreakerStatus[] {
    return [...this.#breakers.values()].map((b) => b.status());
  }

  shutdown(): void {
    for (const breaker of this.#breakers.values()) breaker.shutdown();
    for (const { timer } of this.#rotations.values()) clearInterval(timer);
    this.#breakers.clear();
    this.#rotations.clear();
  }

  #rotation(windowMs: number): EventEmitter {
    let rotation = this.#rotations.get(windowMs);
    if (rotation === undefined) {
      const emitter = new EventEmitter().setMaxListeners(0);
      const timer = setInterval(() => emitter.emit("rotate"), Math.max(1, Math.floor(windowMs / BUCKETS)));
      timer.unref();
      rotation = { emitter, timer };
      this.#rotations.set(windowMs, rotation);
    }
    return rotation.emitter;
  }
}

function notSent(err: unknown): boolean {
  return err instanceof GatewayError && err.code === ErrorCode.UpstreamUnavailable && !err.reachedUpstream;
}
