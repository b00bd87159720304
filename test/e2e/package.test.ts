/**
 * The package as a user installs it: `npm pack`, install the tarball into an empty directory, let an MCP
 * client spawn the installed `toolgate serve --stdio` the way Claude Desktop or Cursor do, list and call.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULT_SERVER, NODE, ROOT, textOf } from "../helpers/gateway.ts";

const run = promisify(execFile);
let dir: string;
let installed: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "toolgate-pack-"));
  const npm = { cwd: ROOT, env: process.env, maxBuffer: 16 << 20 };
  const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", dir], npm);
  const [packed] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  if (!packed) throw new Error(`npm pack printed no package: ${stdout}`);
  // Compiled JavaScript only: a user's Node need not run TypeScript.
  expect(packed.files.map((f) => f.path)).toContain("dist/main.js");
  expect(packed.files.some((f) => f.path.startsWith("src/") || f.path.startsWith("test/"))).toBe(false);
  await writeFile(join(dir, "package.json"), JSON.stringify({ name: "app", private: true }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", join(dir, packed.filename)], {
    ...npm,
    cwd: dir,
  });
  installed = join(dir, "node_modules/toolgate/bin/toolgate.js");
  expect(await readdir(join(dir, "node_modules/toolgate"))).not.toContain("src");
}, 240_000);

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the packed package", () => {
  it("serves its upstreams over stdio when a client spawns the installed binary", async () => {
    const config = join(dir, "toolgate.json");
    await writeFile(config, JSON.stringify({ mcpServers: { f: { command: NODE, args: [FAULT_SERVER] } } }));
    const client = new Client({ name: "pack-test", version: "1.0.0" });
    await client.connect(
      new StdioClientTransport({
        command: NODE,
        args: [installed, "serve", "--stdio", "--config", config],
        cwd: dir,
        stderr: "ignore",
      }),
    );
    try {
      // The first list a client makes is complete: the gateway holds it until its upstreams are ready.
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain("f__echo");
      const result = await client.callTool({ name: "f__echo", arguments: { text: "from the tarball" } });
      expect(textOf(result)).toBe("from the tarball");
    } finally {
      await client.close();
    }
  });

  it("prints its version", async () => {
    const { stdout } = await run(NODE, [installed, "--version"], { cwd: dir });
    expect(stdout.trim()).toMatch(/^toolgate \d+\.\d+\.\d+/);
  });
});
