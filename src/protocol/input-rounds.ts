/**
 * Translation for a modern (2026-07-28) client in front of a legacy upstream: the upstream asks for input
 * with server→client requests (elicitation/create, sampling/createMessage, roots/list) while its call
 * runs; the modern client cannot receive requests, so the gateway holds the upstream call open and answers
 * the client with an InputRequiredResult (multi round-trip). The client re-sends its request with
 * `inputResponses` and the `requestState` it got; the gateway hands each response to the waiting upstream
 * request and waits for the next thing: the result, or another round.
 *
 * State: the held call lives in this process (the upstream's session does too); `requestState` names it,
 * signed with HMAC over the principal, the method, the target and an expiry, so a tampered, expired or
 * someone else's state is refused. A held call nobody comes back for is cancelled after `ttlMs`.
 */
import { createHmac, randomBytes, randomUUID, timingSafeEqual } from "node:crypto";
import { InFlightSet } from "../in-flight.ts";
import { ModernCode, ModernError } from "./era.ts";

/** A question the upstream asked, waiting for the client's answer. */
interface Ask {
  key: string;
  method: string;
  params: Record<string, unknown>;
  resolve(result: Record<string, unknown>): void;
}

/** What a round ends with. */
export type RoundOutcome =
  | { kind: "result"; result: Record<string, unknown> }
  | { kind: "error"; error: unknown }
  | { kind: "input"; result: Record<string, unknown> };

/** Sinks of the round in progress: the client's response stream and what it declared. */
export interface RoundSink {
  /** `_meta["io.modelcontextprotocol/clientCapabilities"]` of this round's request. */
  capabilities: Record<string, unknown>;
  /** This round's progress token, under which the call's progress goes out (none: progress is dropped). */
  progressToken?: unknown;
  /** A notification related to the request (progress) on this round's response stream. */
  notify(method: string, params: Record<string, unknown>): Promise<void>;
}

export interface HeldCall {
  readonly id: string;
  readonly controller: AbortController;
  /** Asks the upstream (through the router) for input; resolves with the client's answer. */
  ask(
    method: string,
    params: Record<string, unknown> | undefined,
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>>;
  /** Progress and other request-scoped notifications, to whichever round is running. */
  notify(method: string, params: Record<string, unknown>): Promise<void>;
}

/** Client capability each server→client request needs. */
const NEEDS: Record<string, string> = {
  "elicitation/create": "elicitation",
  "sampling/createMessage": "sampling",
  "roots/list": "roots",
};

/** Key hint an upstream may put on its request's `_meta` to name the input request (toolgate's own). */
export const INPUT_KEY_META = "toolgate/inputKey";

interface Held extends HeldCall {
  principal: string;
  method: string;
  target: string;
  asks: Map<string, Ask>;
  settled: RoundOutcome | undefined;
  sink: RoundSink | undefined;
  /** What the client declared on its latest round (asks between rounds are judged by it). */
  capabilities: Record<string, unknown>;
  /** Wakes the round in progress: the call settled, or asks are ready to send. */
  wake: (() => void) | undefined;
  gather: NodeJS.Timeout | undefined;
  refused: Record<string, unknown>;
  expiry: NodeJS.Timeout | undefined;
  seq: number;
  /** Answers the client sent before the upstream asked. */
  pool: Map<string, Record<string, unknown>>;
}

export interface InputRoundsOptions {
  /** How long a held call waits for the client's next round before it is cancelled. */
  ttlMs: number;
  /** Asks arriving within this window after the first one go out in one round. */
  gatherMs: number;
}

export class InputRounds {
  /** Every call held here, running or waiting for the client's next round. */
  readonly #held = new InFlightSet<Held>();
  /** Held calls a `requestState` was issued for, by id: the only ones a retry can name. */
  readonly #named = new Map<string, Held>();
  readonly #secret = randomBytes(32);
  readonly #options: InputRoundsOptions;

  constructor(options: InputRoundsOptions) {
    this.#options = options;
  }

  get size(): number {
    return this.#held.size;
  }

  /**
   * First round of a request: runs `run` with a held call whose `ask` turns upstream questions into
   * input requests. Resolves when the call finishes or needs input.
   */
  start(
    who: { principal: string; method: string; target: string },
    sink: RoundSink,
    run: (call: HeldCall) => Promise<Record<string, unknown>>,
    signal: AbortSignal,
    inputResponses?: unknown,
  ): Promise<RoundOutcome> {
    const early = inputResponses === undefined ? undefined : entries(inputResponses);
    const held = this.#create(who, sink);
    // Answers sent up front (a client that already knows the keys) answer the asks that use those keys.
    if (early) for (const [key, response] of early) held.pool.set(key, response);
    run(held).then(
      (result) => this.#settle(held, { kind: "result", result }),
      (error) => this.#settle(held, { kind: "error", error }),
    );
    return this.#round(held, signal);
  }

  /**
   * A retry carrying `requestState`: verifies it, hands the responses to the waiting asks, and resolves
   * with the round's outcome. Throws ModernError -32602 when the state is bad, expired, or not held here.
   */
  resume(
    who: { principal: string; method: string; target: string },
    requestState: unknown,
    inputResponses: unknown,
    sink: RoundSink,
    signal: AbortSignal,
  ): Promise<RoundOutcome> {
    const id = this.#verify(requestState, who);
    const responses = entries(inputResponses);
    const held = this.#named.get(id);
    if (!held) {
      throw new ModernError(
        -32602,
        "requestState names a call this gateway no longer holds (expired or served by another replica); send the request again without requestState",
      );
    }
    if (
      inputResponses !== undefined &&
      (typeof inputResponses !== "object" || inputResponses === null || Array.isArray(inputResponses))
    ) {
      throw new ModernError(-32602, "inputResponses must be an object keyed by the inputRequests keys");
    }
    if (held.wake) {
      // requestState is for one retry at a time; a second concurrent one would leave the first unanswered.
      throw new ModernError(-32602, "a retry with this requestState is already in progress");
    }
    held.sink = sink;
    held.capabilities = sink.capabilities;
    clearTimeout(held.expiry);
    for (const [key, response] of responses) {
      const ask = held.asks.get(key);
      // Keys not asked yet wait for an ask that uses them; the rest is ignored, as the spec asks.
      if (!ask) {
        held.pool.set(key, response);
        continue;
      }
      held.asks.delete(key);
      ask.resolve(response);
    }
    return this.#round(held, signal);
  }

  /** Cancel every held call (shutdown). */
  close(): void {
    for (const held of this.#held) this.#drop(held, "toolgate is shutting down");
  }

  #create(who: { principal: string; method: string; target: string }, sink: RoundSink): Held {
    const controller = new AbortController();
    // Each field by name: a spread in this literal made V8 build the object property by property (the
    // hot path's costliest line in a profile of the face).
    const held: Held = {
      // randomUUID draws from a pooled buffer; randomBytes per call cost ~3 µs (requestState is signed anyway).
      id: randomUUID(),
      controller,
      principal: who.principal,
      method: who.method,
      target: who.target,
      asks: new Map(),
      settled: undefined,
      sink,
      capabilities: sink.capabilities,
      wake: undefined,
      gather: undefined,
      refused: {},
      expiry: undefined,
      seq: 0,
      pool: new Map(),
      ask: (method, params, signal) => this.#ask(held, method, params ?? {}, signal),
      notify: async (method, params) => {
        const current = held.sink;
        if (!current) return;
        if (method === "notifications/progress") {
          // Each round has its own progress token (or none): progress goes out under the current one.
          const token = current.progressToken;
          if (token === undefined) return;
          return current.notify(method, { ...params, progressToken: token });
        }
        return current.notify(method, params);
      },
    };
    this.#held.add(held);
    return held;
  }

  #ask(held: Held, method: string, params: Record<string, unknown>, signal?: AbortSignal) {
    const need = NEEDS[method];
    if (!need) return Promise.reject(new Error(`${method} cannot be asked of a 2026-07-28 client`));
    if (held.capabilities[need] === undefined) {
      // Not declared by the client: refused to the upstream now; the round reports it if nothing else is asked.
      held.refused[need] = {};
      this.#schedule(held);
      return Promise.reject(
        Object.assign(new Error(`the client did not declare the ${need} capability`), {
          code: ModernCode.MissingRequiredClientCapability,
          data: { requiredCapabilities: { [need]: {} } },
        }),
      );
    }
    const { _meta, ...rest } = params as { _meta?: Record<string, unknown> };
    const { [INPUT_KEY_META]: hint, ...meta } = _meta ?? {};
    held.seq++;
    const key = typeof hint === "string" && hint && !held.asks.has(hint) ? hint : `${need}-${held.seq}`;
    const request = Object.keys(meta).length ? { ...rest, _meta: meta } : rest;
    const ready = held.pool.get(key);
    if (ready) {
      held.pool.delete(key);
      return Promise.resolve(ready);
    }
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      held.asks.set(key, { key, method, params: request, resolve });
      signal?.addEventListener(
        "abort",
        () => {
          held.asks.delete(key);
          reject(signal.reason);
        },
        { once: true },
      );
      this.#schedule(held);
    });
  }

  /** Asks sent together go out together: the round answers once the gather window has passed. */
  #schedule(held: Held): void {
    if (held.gather) return;
    held.gather = setTimeout(() => {
      held.gather = undefined;
      held.wake?.();
    }, this.#options.gatherMs);
  }

  #settle(held: Held, outcome: RoundOutcome): void {
    held.settled = outcome;
    clearTimeout(held.gather);
    held.gather = undefined;
    held.wake?.();
  }

  /** Waits for the call to finish or to need input; then this round's answer. */
  #round(held: Held, signal: AbortSignal): Promise<RoundOutcome> {
    return new Promise<RoundOutcome>((resolve) => {
      const finish = () => {
        const outcome = this.#outcome(held);
        if (!outcome) return;
        held.wake = undefined;
        signal.removeEventListener("abort", onAbort);
        resolve(outcome);
      };
      // The client closed this round's stream: on HTTP that is cancellation of the request.
      const onAbort = () => {
        held.wake = undefined;
        this.#drop(held, "the client closed the request's stream");
        resolve({ kind: "error", error: signal.reason });
      };
      held.wake = finish;
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      if (!held.gather) finish();
    });
  }

  #outcome(held: Held): RoundOutcome | undefined {
    if (held.settled) {
      this.#forget(held);
      const failed = held.settled.kind === "error" || held.settled.result.isError === true;
      // The upstream gave up after being refused a capability the client lacks: say that, not its error.
      if (failed && Object.keys(held.refused).length > 0) return missing(held.refused);
      return held.settled;
    }
    if (held.gather) return undefined;
    if (held.asks.size === 0) {
      if (Object.keys(held.refused).length === 0) return undefined;
      // Everything the upstream wanted needs capabilities the client lacks: say which.
      const refused = held.refused;
      this.#drop(held, "the client lacks a capability the upstream needs");
      return missing(refused);
    }
    held.refused = {};
    held.sink = undefined;
    held.expiry = setTimeout(
      () => this.#drop(held, "no client round within the hold time"),
      this.#options.ttlMs,
    );
    held.expiry.unref();
    const inputRequests: Record<string, unknown> = {};
    for (const ask of held.asks.values()) inputRequests[ask.key] = { method: ask.method, params: ask.params };
    this.#named.set(held.id, held);
    return {
      kind: "input",
      result: { resultType: "input_required", inputRequests, requestState: this.#sign(held) },
    };
  }

  #drop(held: Held, reason: string): void {
    this.#forget(held);
    held.controller.abort(new Error(reason));
  }

  #forget(held: Held): void {
    clearTimeout(held.expiry);
    clearTimeout(held.gather);
    this.#held.delete(held);
    this.#named.delete(held.id);
  }

  #sign(held: Held): string {
    const payload = Buffer.from(
      JSON.stringify({
        c: held.id,
        p: held.principal,
        m: held.method,
        t: held.target,
        e: Date.now() + this.#options.ttlMs,
      }),
    ).toString("base64url");
    return `${payload}.${this.#mac(payload)}`;
  }

  #verify(state: unknown, who: { principal: string; method: string; target: string }): string {
    const bad = (why: string) => new ModernError(-32602, `requestState rejected: ${why}`);
    if (typeof state !== "string") throw bad("it must be the string the gateway sent");
    const [payload, mac] = state.split(".");
    if (!payload || !mac) throw bad("malformed");
    const expected = Buffer.from(this.#mac(payload));
    const given = Buffer.from(mac);
    if (expected.length !== given.length || !timingSafeEqual(expected, given)) {
      throw bad("integrity check failed (tampered or from another gateway)");
    }
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    if (claims.p !== who.principal) throw bad("issued to another principal");
    if (claims.m !== who.method || claims.t !== who.target) throw bad("issued for another request");
    if (typeof claims.e !== "number" || claims.e < Date.now()) throw bad("expired");
    return String(claims.c);
  }

  #mac(payload: string): string {
    return createHmac("sha256", this.#secret).update(payload).digest("base64url");
  }
}

function missing(requiredCapabilities: Record<string, unknown>): RoundOutcome {
  return {
    kind: "error",
    error: new ModernError(
      ModernCode.MissingRequiredClientCapability,
      `the upstream needs client capabilities this request did not declare: ${Object.keys(requiredCapabilities).join(", ")}`,
      400,
      { requiredCapabilities },
    ),
  };
}

/** `inputResponses` as [key, response] pairs; anything but an object of objects is a -32602. */
function entries(inputResponses: unknown): Array<[string, Record<string, unknown>]> {
  if (inputResponses === undefined) return [];
  if (typeof inputResponses !== "object" || inputResponses === null || Array.isArray(inputResponses)) {
    throw new ModernError(-32602, "inputResponses must be an object keyed by the inputRequests keys");
  }
  return Object.entries(inputResponses).filter(
    (pair): pair is [string, Record<string, unknown>] => typeof pair[1] === "object" && pair[1] !== null,
  );
}
