/**
 * The router's reverse path: what flows from an upstream back to clients. Server→client requests (sampling,
 * elicitation, roots) and notifications go to the sessions whose calls are in flight under the upstream's
 * routing key; resource updates go to the sessions subscribed to the URI; upstreams get the most verbose log
 * level any session asked for. The forward path (router.ts) registers each call in flight through `track`.
 */
import type { LoggingLevel } from "@modelcontextprotocol/sdk/types.js";
import { ErrorCode, GatewayError } from "../errors.ts";
import { InFlightSet } from "../in-flight.ts";
import type { Logger } from "../telemetry/log.ts";
import type { UpstreamHandle } from "../upstreams/handle.ts";
import type { Caller } from "./router.ts";

type Result = Record<string, unknown>;

const LEVELS: LoggingLevel[] = [
  "debug",
  "info",
  "notice",
  "warning",
  "error",
  "critical",
  "alert",
  "emergency",
];

export interface ReversePathOptions {
  upstreams: { all(): Iterable<UpstreamHandle> };
  log: Logger;
}

/** A request in flight on an upstream, and the session that made it. */
interface InFlight {
  caller: Caller;
  requestId: string | number;
  /** Order of entry: the set does not keep it. */
  seq: number;
}

export class ReversePath {
  readonly #options: ReversePathOptions;
  /** Calls in flight per routing key (an upstream's name, or a per-principal connection's key). */
  readonly #inFlight = new Map<string, InFlightSet<InFlight>>();
  #seq = 0;
  /**
   * Resource subscriptions per routing key, then per URI: a per-principal connection is asked, and notifies,
   * for its own principal's sessions only.
   */
  readonly #subscriptions = new Map<string, Map<string, Set<Caller>>>();
  readonly #logLevels = new Map<Caller, LoggingLevel>();

  constructor(options: ReversePathOptions) {
    this.#options = options;
  }

  /** Runs `fn` (a request to the upstream under `routingKey`) with the caller registered as in flight there. */
  async track<T>(
    routingKey: string,
    call: Pick<InFlight, "caller" | "requestId">,
    fn: () => Promise<T>,
  ): Promise<T> {
    const entry = this.enter(routingKey, call);
    try {
      return await fn();
    } finally {
      this.leave(routingKey, entry);
    }
  }

  /** Registers the caller as in flight under `routingKey` until `leave` (track's two halves, for the hot path). */
  enter(routingKey: string, call: Pick<InFlight, "caller" | "requestId">): InFlight {
    let set = this.#inFlight.get(routingKey);
    if (!set) {
      set = new InFlightSet();
      this.#inFlight.set(routingKey, set);
    }
    const entry: InFlight = { caller: call.caller, requestId: call.requestId, seq: this.#seq++ };
    set.add(entry);
    return entry;
  }

  leave(routingKey: string, entry: InFlight): void {
    this.#inFlight.get(routingKey)?.delete(entry);
  }

  /**
   * Records a session's subscription to `uri` on the connection under `routingKey`; true when it is the first
   * there, so that connection must be asked.
   */
  subscribe(routingKey: string, uri: string, caller: Caller): boolean {
    let byUri = this.#subscriptions.get(routingKey);
    if (!byUri) {
      byUri = new Map();
      this.#subscriptions.set(routingKey, byUri);
    }
    let callers = byUri.get(uri);
    if (!callers) {
      callers = new Set();
      byUri.set(uri, callers);
    }
    const first = callers.size === 0;
    callers.add(caller);
    return first;
  }

  /** Drops a session's subscription to `uri`; true when it was the last on that connection, which must be told. */
  unsubscribe(routingKey: string, uri: string, caller: Caller): boolean {
    const byUri = this.#subscriptions.get(routingKey);
    const callers = byUri?.get(uri);
    if (!byUri || !callers?.delete(caller) || callers.size > 0) return false;
    byUri.delete(uri);
    if (byUri.size === 0) this.#subscriptions.delete(routingKey);
    return true;
  }

  /** A session's log level; upstreams get the most verbose level any session asked for. */
  async setLogLevel(caller: Caller, level: LoggingLevel): Promise<void> {
    this.#logLevels.set(caller, level);
    const min = this.#logLevel() as LoggingLevel;
    const targets = [...this.#options.upstreams.all()].filter((u) => u.capabilities?.logging);
    await Promise.allSettled(targets.map((u) => u.request("logging/setLevel", { level: min }, {})));
  }

  /** The most verbose level any session asked for; undefined when none did. */
  #logLevel(): LoggingLevel | undefined {
    const levels = [...this.#logLevels.values()];
    if (levels.length === 0) return undefined;
    return levels.reduce((a, b) => (LEVELS.indexOf(a) <= LEVELS.indexOf(b) ? a : b));
  }

  /**
   * A connection under `routingKey` (re)connected: it holds none of an earlier one's state. The subscriptions
   * made on that key to its resources (`serves`) and the sessions' log level are sent again, so resource
   * updates and logs keep coming after a restart, or after a principal's connection was closed and reopened,
   * instead of stopping without a word.
   */
  async restore(
    routingKey: string,
    upstream: UpstreamHandle,
    serves: (uri: string) => boolean,
  ): Promise<void> {
    const requests: Array<[what: string, request: Promise<unknown>]> = [];
    for (const uri of this.#subscriptions.get(routingKey)?.keys() ?? []) {
      if (serves(uri))
        requests.push([`resources/subscribe ${uri}`, upstream.request("resources/subscribe", { uri }, {})]);
    }
    const level = this.#logLevel();
    if (level && upstream.capabilities?.logging) {
      requests.push([`logging/setLevel ${level}`, upstream.request("logging/setLevel", { level }, {})]);
    }
    const results = await Promise.allSettled(requests.map(([, request]) => request));
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        this.#options.log.warn("could not restore a session's request on a reconnected upstream", {
          upstream: upstream.name,
          request: requests[i]?.[0],
          error: (result.reason as Error)?.message,
        });
      }
    });
  }

  /** Whether any session is subscribed to a resource on the connection under `routingKey`. */
  subscribedOn(routingKey: string): boolean {
    return this.#subscriptions.has(routingKey);
  }

  /** Forget a session that ended; returns the subscriptions it was the last on, which their connections must drop. */
  sessionClosed(caller: Caller): Array<{ routingKey: string; uri: string }> {
    this.#logLevels.delete(caller);
    const emptied: Array<{ routingKey: string; uri: string }> = [];
    for (const [routingKey, byUri] of this.#subscriptions) {
      for (const [uri, callers] of byUri) {
        if (callers.delete(caller) && callers.size === 0) {
          byUri.delete(uri);
          emptied.push({ routingKey, uri });
        }
      }
      if (byUri.size === 0) this.#subscriptions.delete(routingKey);
    }
    return emptied;
  }

  /**
   * A server→client request from an upstream (sampling, elicitation, roots): sent to the session with the most
   * recent call in flight on that upstream, on that call's stream. Without one there is nobody to ask.
   */
  async serverRequest(
    upstream: string,
    method: string,
    params: Result | undefined,
    signal: AbortSignal,
  ): Promise<Result> {
    const target = this.#latestCall(upstream);
    // Upstreams often list roots right after connecting: with no call to attribute the question to, the
    // gateway has no roots to offer, which is an answer rather than an error.
    if (!target && method === "roots/list") return { roots: [] };
    if (!target) {
      throw new GatewayError(
        ErrorCode.MethodNotFound,
        `${method} from upstream "${upstream}" arrived with no client call in flight to route it to`,
        {
          upstream,
        },
      );
    }
    return target.caller.request(method, params, { relatedRequestId: target.requestId, signal });
  }

  /** A notification from an upstream: logging goes to callers in flight there, resource updates to subscribers. */
  routeNotification(upstream: string, method: string, params: Result | undefined): void {
    const send = (caller: Caller, related?: string | number) =>
      caller
        .notify(method, params, related)
        .catch((err) => this.#options.log.debug("notification not delivered", { err }));
    if (method === "notifications/resources/updated") {
      const uri = params?.uri;
      const callers = typeof uri === "string" ? this.#subscriptions.get(upstream)?.get(uri) : undefined;
      for (const caller of callers ?? []) send(caller);
      return;
    }
    const calls = this.#inFlight.get(upstream);
    if (!calls?.size) {
      this.#options.log.debug("upstream notification with no caller in flight", { upstream, method });
      return;
    }
    for (const call of calls) send(call.caller, call.requestId);
  }

  #latestCall(upstream: string): InFlight | undefined {
    let latest: InFlight | undefined;
    for (const call of this.#inFlight.get(upstream) ?? [])
      if (!latest || call.seq > latest.seq) latest = call;
    return latest;
  }
}
