/**
 * Both SDK clients (v1 and v2) drop a progress update they read in the same chunk as the call's response:
 * the response removes the call's progress route before the update's handler runs, and the update goes to
 * `onerror` as an unknown token (typescript-sdk#2580). A loaded machine can deschedule a client between
 * the gateway's two writes, so a progress test counts those late updates as delivered, once it has
 * checked that each carries the token the client sent.
 */

import { expect } from "vitest";

export interface Update {
  progressToken: unknown;
  progress: number;
}

type Send = (message: unknown, ...rest: unknown[]) => Promise<void>;
type OnMessage = (message: unknown, ...rest: unknown[]) => void;

/** What both SDK clients expose: the error hook and the transport they send and receive on. */
interface SdkClient {
  onerror?: ((error: Error) => void) | undefined;
  readonly transport?: object | undefined;
}

export interface ProgressWatch {
  /** In the order the transport read them: each progress update, and `"answer"` for each response. */
  received: Array<Update | "answer">;
  /** Updates the client reported to `onerror` as an unknown token: read, but not given to `onprogress`. */
  late: Update[];
  /** The `_meta.progressToken` of each `tools/call` sent while watching. */
  tokens: unknown[];
  /** Restores the client's `onerror` and its transport's `send` and `onmessage`. */
  stop(): void;
}

export function watchProgress(client: SdkClient): ProgressWatch {
  const transport = client.transport as { send: Send; onmessage?: OnMessage } | undefined;
  const { onmessage, send } = transport ?? {};
  if (!transport || !onmessage || !send) throw new Error("watchProgress needs a connected client");
  const watch: ProgressWatch = {
    received: [],
    late: [],
    tokens: [],
    stop() {
      client.onerror = onerror;
      transport.send = send;
      transport.onmessage = onmessage;
    },
  };
  const onerror = client.onerror;
  client.onerror = (error) => {
    const notification = /unknown token: (.*)$/s.exec(error.message)?.[1];
    if (notification) watch.late.push((JSON.parse(notification) as { params: Update }).params);
    else onerror?.(error);
  };
  transport.send = (message, ...rest) => {
    const m = message as { method?: string; params?: { _meta?: { progressToken?: unknown } } };
    if (m.method === "tools/call") watch.tokens.push(m.params?._meta?.progressToken);
    return send.call(transport, message, ...rest);
  };
  transport.onmessage = (message, ...rest) => {
    const m = message as { method?: string; params?: Update; result?: unknown; error?: unknown };
    if (m.method === "notifications/progress" && m.params) watch.received.push(m.params);
    else if ("result" in m || "error" in m) watch.received.push("answer");
    onmessage.call(transport, message, ...rest);
  };
  return watch;
}

/**
 * What a progress test asserts: the transport read every update, with the token of the one call sent, before
 * the answer (the gateway's order), and `onprogress` saw them all but those the SDK reported late.
 */
export function expectAllProgress(watch: ProgressWatch, seen: number[], updates: number[]): void {
  expect(watch.tokens).toHaveLength(1);
  const token = watch.tokens[0];
  expect(token).toBeDefined();
  expect(watch.received.map((m) => (m === "answer" ? m : m.progress))).toEqual([...updates, "answer"]);
  for (const m of [...watch.received, ...watch.late])
    if (m !== "answer") expect(m.progressToken).toEqual(token);
  expect([...seen, ...watch.late.map((p) => p.progress)]).toEqual(updates);
}
