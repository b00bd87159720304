import type { PolicyEvent, PolicyEvents, PolicyEventType } from "../../../src/policies/events.ts";
import type { CallContext } from "../../../src/policies/types.ts";

export interface Recorder extends PolicyEvents {
  readonly all: PolicyEvent[];
  of<K extends PolicyEventType>(type: K): Array<Extract<PolicyEvent, { type: K }>>;
}

export function recorder(): Recorder {
  const all: PolicyEvent[] = [];
  return {
    all,
    emit: (event) => void all.push(event),
    of: <K extends PolicyEventType>(type: K) =>
      all.filter((e): e is Extract<PolicyEvent, { type: K }> => e.type === type),
  };
}

export function context(overrides: Partial<CallContext> = {}): CallContext {
  return {
    signal: new AbortController().signal,
    deadline: Number.POSITIVE_INFINITY,
    upstream: "up",
    tool: "up__tool",
    args: {},
    priority: 0,
    idempotent: false,
    attempt: 1,
    events: recorder(),
    ...overrides,
  };
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (err: unknown) => void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Settles a promise into a value or an error without an unhandled rejection. */
export function settle<T>(promise: Promise<T>): {
  readonly value?: T;
  readonly error?: unknown;
  readonly done: boolean;
} {
  const state: { value?: T; error?: unknown; done: boolean } = { done: false };
  promise.then(
    (value) => {
      state.value = value;
      state.done = true;
    },
    (error: unknown) => {
      state.error = error;
      state.done = true;
    },
  );
  return state;
}
