import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { FAULT_SERVER, NODE, writeConfig } from "../helpers/gateway.ts";

async function files(lines: string[]): Promise<{ config: string; calls: string }> {
  const config = await writeConfig({ mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } } });
  const calls = join(dirname(config), "calls.jsonl");
  await writeFile(calls, `${lines.join("\n")}\n`);
  return { config, calls };
}

type Answer = {
  line: number;
  id?: unknown;
  ok: boolean;
  result?: { content: Array<{ text: string }> };
  error?: { message: string };
};

describe("toolgate batch", () => {
  it("answers every line exactly once, failures included, and shows progress", async () => {
    const lines: string[] = [];
    for (let i = 0; i < 300; i++) {
      lines.push(JSON.stringify({ id: i, tool: "f__echo", arguments: { text: `n${i}` }, priority: i % 3 }));
    }
    lines.push(JSON.stringify({ tool: "f__fail", arguments: { times: 1, key: "b", mode: "toolError" } }));
    lines.push("{not json");
    lines.push(JSON.stringify({ tool: "f__nope" }));
    lines.push("");
    lines.push(JSON.stringify({ tool: "f__echo", arguments: [] }));
    lines.push(JSON.stringify({ name: "f__echo", arguments: { text: "x" } }));
    const { config, calls } = await files(lines);
    const run = await runCli(["batch", "--config", config, calls, "--parallel", "8"]);
    expect(run.code).toBe(1);
    const answers = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Answer);
    const byLine = new Map(answers.map((a) => [a.line, a]));
    expect(answers).toHaveLength(305);
    expect(byLine.size).toBe(305);
    for (let i = 0; i < 300; i++) {
      const a = byLine.get(i + 1);
      expect(a?.ok).toBe(true);
      expect(a?.id).toBe(i);
      expect(a?.result?.content[0]?.text).toBe(`n${i}`);
    }
    expect(byLine.get(301)?.ok).toBe(false);
    expect(byLine.get(302)?.error?.message).toMatch(/line 302 is not JSON/);
    expect(byLine.get(303)?.error?.message).toMatch(/ToolNotFound/);
    expect(byLine.has(304)).toBe(false);
    expect(byLine.get(305)?.error?.message).toMatch(/"arguments" must be an object/);
    expect(byLine.get(306)?.error?.message).toBe(
      'line 306 needs "tool" (a string); it has "name": write {"tool": "f__echo", …}',
    );
    expect(run.stderr).toMatch(/305\/305 answered, 5 failed/);
  }, 90_000);

  it("starts calls in priority order, file order among equals", async () => {
    const lines = [0, 5, 1, 5, 9, 0].map((priority, i) =>
      JSON.stringify({ id: i, tool: "f__echo", arguments: { text: String(i) }, priority }),
    );
    const { config, calls } = await files(lines);
    const run = await runCli(["batch", "--config", config, calls, "--parallel", "1"]);
    expect(run.code).toBe(0);
    const order = run.stdout
      .trim()
      .split("\n")
      .map((l) => (JSON.parse(l) as Answer).id);
    expect(order).toEqual([4, 1, 3, 2, 0, 5]);
  }, 90_000);
});
