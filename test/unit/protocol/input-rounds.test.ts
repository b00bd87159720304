import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ModernError } from "../../../src/protocol/era.ts";
import { InputRounds, type RoundSink } from "../../../src/protocol/input-rounds.ts";

const who = { principal: "alice", method: "tools/call", target: "book" };
const sink = (capabilities: Record<string, unknown> = { elicitation: {} }): RoundSink => ({
  capabilities,
  notify: async () => {},
});
const elicit = { message: "Name?", requestedSchema: { type: "object", properties: {} } };

describe("InputRounds", () => {
  let rounds: InputRounds;
  beforeEach(() => {
    vi.useFakeTimers();
    rounds = new InputRounds({ ttlMs: 60_000, gatherMs: 20 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("turns an upstream's elicitation into a round and resumes the call with the client's answer", async () => {
    const first = rounds.start(
      who,
      sink(),
      async (call) => {
        const answer = await call.ask("elicitation/create", {
          ...elicit,
          _meta: { "toolgate/inputKey": "name" },
        });
        return { content: [{ type: "text", text: `hi ${String((answer.content as { n: string }).n)}` }] };
      },
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    const round = await first;
    expect(round.kind).toBe("input");
    const input = (round as { result: Record<string, unknown> }).result;
    expect(input.inputRequests).toEqual({ name: { method: "elicitation/create", params: elicit } });
    const done = await rounds.resume(
      who,
      input.requestState,
      { name: { action: "accept", content: { n: "Ann" } } },
      sink(),
      new AbortController().signal,
    );
    expect(done).toEqual({ kind: "result", result: { content: [{ type: "text", text: "hi Ann" }] } });
    expect(rounds.size).toBe(0);
  });

  it("refuses a tampered, foreign or mismatched requestState", async () => {
    const first = rounds.start(
      who,
      sink(),
      (call) => call.ask("elicitation/create", elicit),
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    const state = String(((await first) as { result: Record<string, unknown> }).result.requestState);
    const resume = (w: typeof who, s: string) => () =>
      rounds.resume(w, s, {}, sink(), new AbortController().signal);
    expect(resume(who, `${state}x`)).toThrow(ModernError);
    expect(resume({ ...who, principal: "mallory" }, state)).toThrow(/another principal/);
    expect(resume({ ...who, target: "other" }, state)).toThrow(/another request/);
  });

  it("refuses a second concurrent retry with the same requestState instead of leaving one unanswered", async () => {
    const first = rounds.start(
      who,
      sink(),
      async (call) => {
        await call.ask("elicitation/create", { ...elicit, _meta: { "toolgate/inputKey": "a" } });
        return call.ask("elicitation/create", { ...elicit, _meta: { "toolgate/inputKey": "b" } });
      },
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    const state = ((await first) as { result: Record<string, unknown> }).result.requestState;
    const answer = { a: { action: "accept", content: {} } };
    const retry = rounds.resume(who, state, answer, sink(), new AbortController().signal);
    expect(() => rounds.resume(who, state, {}, sink(), new AbortController().signal)).toThrow(/in progress/);
    await vi.advanceTimersByTimeAsync(20);
    expect((await retry).kind).toBe("input");
  });

  it("counts running calls in its size, and forgets a call's id once the call is over", async () => {
    let finish: (result: Record<string, unknown>) => void = () => {};
    const plain = rounds.start(
      who,
      sink(),
      () => new Promise((resolve) => (finish = resolve)),
      new AbortController().signal,
    );
    // A call that never asks anything is held too: gateway.maxSessions bounds calls in flight.
    expect(rounds.size).toBe(1);
    finish({ content: [] });
    expect(await plain).toEqual({ kind: "result", result: { content: [] } });
    expect(rounds.size).toBe(0);
    const asking = rounds.start(
      who,
      sink(),
      (call) => call.ask("elicitation/create", elicit),
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    const round = (await asking) as { result: Record<string, unknown> };
    await vi.advanceTimersByTimeAsync(60_000);
    // Expired: its requestState still verifies, but names nothing held any more.
    expect(() =>
      rounds.resume(who, round.result.requestState, {}, sink(), new AbortController().signal),
    ).toThrow(/no longer holds/);
  });

  it("cancels a held call nobody comes back for after ttlMs", async () => {
    let signal: AbortSignal | undefined;
    const first = rounds.start(
      who,
      sink(),
      (call) => {
        signal = call.controller.signal;
        return call.ask("elicitation/create", elicit);
      },
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    expect((await first).kind).toBe("input");
    expect(signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(signal?.aborted).toBe(true);
    expect(rounds.size).toBe(0);
  });

  it("answers -32021 naming the capability when the client declared none the upstream needs", async () => {
    const first = rounds.start(
      who,
      sink({}),
      (call) => call.ask("sampling/createMessage", { messages: [], maxTokens: 1 }),
      new AbortController().signal,
    );
    await vi.advanceTimersByTimeAsync(20);
    const round = await first;
    expect(round.kind).toBe("error");
    const error = (round as { error: ModernError }).error;
    expect(error.code).toBe(-32021);
    expect(error.data).toEqual({ requiredCapabilities: { sampling: {} } });
  });

  it("cancels the call when the client closes a round's stream", async () => {
    let signal: AbortSignal | undefined;
    const closed = new AbortController();
    const first = rounds.start(
      who,
      sink(),
      (call) => {
        signal = call.controller.signal;
        return new Promise(() => {});
      },
      closed.signal,
    );
    closed.abort(new Error("gone"));
    expect((await first).kind).toBe("error");
    expect(signal?.aborted).toBe(true);
  });
});
