import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOpenApiServer, startOpenApiServer } from "../fixtures/openapi-server.ts";
import { runCli } from "../helpers/cli.ts";
import { writeConfig } from "../helpers/gateway.ts";

let api: RunningOpenApiServer;
let configFile: string;

beforeAll(async () => {
  api = await startOpenApiServer();
  configFile = await writeConfig({
    mcpServers: {
      inventory: {
        type: "openapi",
        spec: "specs/inventory.json",
        baseUrl: api.url,
        operations: { tags: ["items"] },
      },
    },
  });
  await mkdir(join(dirname(configFile), "specs"));
  await writeFile(join(dirname(configFile), "specs/inventory.json"), JSON.stringify(api.document));
});

afterAll(async () => {
  await api?.close();
});

describe("toolgate with an OpenAPI upstream", () => {
  it("lists the adapter upstream and its operations like any other upstream", async () => {
    const run = await runCli(["list", "--config", configFile]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^inventory \[openapi\] ready$/m);
    expect(run.stdout).toMatch(/^ {2}inventory__getItem {2}Get one item$/m);
    expect(run.stdout).toMatch(/^5 tools, 0 prompts, 0 resources$/m);
    expect(run.stderr).toContain("inventory: ready (5 tools)");
  });

  it("calls an operation", async () => {
    const run = await runCli([
      "call",
      "--json",
      "--config",
      configFile,
      "inventory__getItem",
      '{"itemId":"42"}',
    ]);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).structuredContent).toMatchObject({ itemId: "42" });
  });
});
