/**
 * TaskInputs (server/eras/modern-tasks.ts): what a 2026 task waits for from its client, parked under the
 * task's handle until `tasks/update` answers it.
 */
import { describe, expect, it } from "vitest";
import { TaskInputs } from "../../../src/server/eras/modern-tasks.ts";

const RELATED = "io.modelcontextprotocol/related-task";

function question(handle: string, message: string, key?: string) {
  return {
    message,
    requestedSchema: { type: "object", properties: {} },
    _meta: { [RELATED]: { taskId: handle }, ...(key && { "toolgate/inputKey": key }), other: 1 },
  };
}

describe("TaskInputs", () => {
  it("parks questions per task under the upstream's key hint, without the routing _meta", async () => {
    const inputs = new TaskInputs();
    const answered = inputs.ask("elicitation/create", question("h1", "Name?", "name"));
    void inputs.ask("elicitation/create", question("h2", "Other task?"));
    expect(inputs.pending("h1")).toEqual({
      name: {
        method: "elicitation/create",
        params: {
          message: "Name?",
          requestedSchema: { type: "object", properties: {} },
          _meta: { other: 1 },
        },
      },
    });
    expect(Object.keys(inputs.pending("h2") ?? {})).toEqual([expect.stringMatching(/^elicitation-/)]);
    inputs.answer("h1", { name: { action: "accept", content: { name: "Ada" } } });
    await expect(answered).resolves.toEqual({ action: "accept", content: { name: "Ada" } });
    expect(inputs.pending("h1")).toBeUndefined();
  });

  it("answers parallel questions one at a time, ignoring unknown keys and other tasks' keys", async () => {
    const inputs = new TaskInputs();
    const first = inputs.ask("elicitation/create", question("h", "One?", "one"));
    const second = inputs.ask("sampling/createMessage", {
      messages: [],
      _meta: { [RELATED]: { taskId: "h" } },
    });
    const secondKey = Object.keys(inputs.pending("h") ?? {}).find((k) => k !== "one") as string;
    expect(secondKey).toMatch(/^sampling-/);
    inputs.answer("other", { one: { action: "decline" } });
    inputs.answer("h", { one: { action: "decline" }, nope: { action: "accept" } });
    await expect(first).resolves.toEqual({ action: "decline" });
    expect(Object.keys(inputs.pending("h") ?? {})).toEqual([secondKey]);
    inputs.answer("h", { [secondKey]: { role: "assistant" } });
    await expect(second).resolves.toEqual({ role: "assistant" });
  });

  it("drops a question whose request is cancelled, and forgets a task that ended", async () => {
    const inputs = new TaskInputs();
    const controller = new AbortController();
    const asked = inputs.ask("elicitation/create", question("h", "Q?", "q"), controller.signal);
    controller.abort(new Error("upstream gave up"));
    await expect(asked).rejects.toThrow("upstream gave up");
    expect(inputs.pending("h")).toBeUndefined();
    void inputs.ask("elicitation/create", question("h", "Again?", "q"));
    inputs.forget("h");
    expect(inputs.pending("h")).toBeUndefined();
  });

  it("refuses a question that belongs to no task, or that a 2026 client cannot be asked", async () => {
    const inputs = new TaskInputs();
    await expect(inputs.ask("elicitation/create", { message: "Q?" })).rejects.toThrow(/outside a task/);
    await expect(inputs.ask("tools/list", { _meta: { [RELATED]: { taskId: "h" } } })).rejects.toThrow(
      /outside a task/,
    );
  });
});
