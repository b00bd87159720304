import type { Prompt, Resource, ResourceTemplate, Tool } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import { Catalog, type CatalogUpstream, type ToolVerdict } from "../../../src/catalog/catalog.ts";
import { resolveConfig } from "../../../src/config/load.ts";

interface Lists {
  tools?: Array<string | Tool>;
  prompts?: string[];
  resources?: string[];
  templates?: string[];
}

/** Upstreams as the catalog sees them: config from a raw config file, lists given in memory. */
function upstreams(
  raw: { mcpServers: Record<string, unknown>; [k: string]: unknown },
  lists: Record<string, Lists>,
) {
  const { config } = resolveConfig(raw, {});
  return config.upstreams.map<CatalogUpstream>((up) => {
    const l = lists[up.name] ?? {};
    return {
      name: up.name,
      config: up,
      tools: (l.tools ?? []).map((t) => (typeof t === "string" ? tool(t) : t)),
      prompts: (l.prompts ?? []).map<Prompt>((name) => ({ name })),
      resources: (l.resources ?? []).map<Resource>((uri) => ({ uri, name: uri })),
      resourceTemplates: (l.templates ?? []).map<ResourceTemplate>((uriTemplate) => ({
        uriTemplate,
        name: uriTemplate,
      })),
    };
  });
}

function tool(name: string, annotations?: Tool["annotations"]): Tool {
  return {
    name,
    description: `${name} tool`,
    inputSchema: { type: "object" },
    ...(annotations ? { annotations } : {}),
  };
}

const names = (catalog: Catalog) => catalog.tools.map((t) => t.name);
const server = { command: "srv" };

describe("Catalog", () => {
  it("serves every tool under <prefix><separator><name>, prefix defaulting to the upstream name", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        {
          mcpServers: { github: server, "mcp.fs": server, plain: server },
          upstreams: { plain: { prefix: "" } },
        },
        { github: { tools: ["create_issue"] }, "mcp.fs": { tools: ["read"] }, plain: { tools: ["echo"] } },
      ),
    );
    expect(names(catalog)).toEqual(["github__create_issue", "mcp_fs__read", "echo"]);
    expect(catalog.tool("github__create_issue")).toMatchObject({
      upstream: "github",
      upstreamTool: "create_issue",
    });
    expect(catalog.tool("github__create_issue")?.definition.description).toBe("create_issue tool");
  });

  it("filters tools by include and exclude globs on the upstream's own names", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        {
          mcpServers: { fs: server },
          upstreams: { fs: { include: ["read_*", "list_*"], exclude: ["*_media*"] } },
        },
        { fs: { tools: ["read_file", "read_media_file", "list_directory", "write_file"] } },
      ),
    );
    expect(names(catalog)).toEqual(["fs__read_file", "fs__list_directory"]);
  });

  it("serves a renamed tool under its new name and routes it to the original", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        {
          mcpServers: { fs: server },
          upstreams: { fs: { tools: { read_text_file: { rename: "read file" } } } },
        },
        { fs: { tools: ["read_text_file"] } },
      ),
    );
    expect(names(catalog)).toEqual(["read_file"]);
    expect(catalog.tool("read_file")).toMatchObject({ upstream: "fs", upstreamTool: "read_text_file" });
  });

  it("keeps the first upstream's tool on a name collision and reports the other", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        { mcpServers: { a: server, b: server }, upstreams: { a: { prefix: "" }, b: { prefix: "" } } },
        { a: { tools: ["search"], prompts: ["p"] }, b: { tools: ["search", "other"], prompts: ["p"] } },
      ),
    );
    expect(names(catalog)).toEqual(["search", "other"]);
    expect(catalog.tool("search")?.upstream).toBe("a");
    expect(catalog.collisions).toEqual([
      'tool "search" of upstream "b" collides with one already served; it is not served',
      'prompt "p" of upstream "b" collides with one already served',
    ]);
  });

  it("reports names that collide only after fitting", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(upstreams({ mcpServers: { a: server } }, { a: { tools: ["get.item", "get_item"] } }));
    expect(names(catalog)).toEqual(["a__get_item"]);
    expect(catalog.collisions).toHaveLength(1);
  });

  it("resolves each tool's policy over its upstream's and decides idempotency", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        {
          mcpServers: { fs: server },
          defaults: { retry: { maxAttempts: 5 } },
          upstreams: {
            fs: {
              policies: { timeout: { attemptMs: 1_000 } },
              tools: { write: { timeout: { attemptMs: 50 } }, delete: { idempotent: true } },
            },
          },
        },
        {
          fs: {
            tools: [
              "write",
              "delete",
              tool("read", { readOnlyHint: true }),
              tool("put", { idempotentHint: true }),
            ],
          },
        },
      ),
    );
    expect(catalog.tool("fs__write")?.policy.timeout.attemptMs).toBe(50);
    expect(catalog.tool("fs__read")?.policy.timeout.attemptMs).toBe(1_000);
    expect(catalog.tool("fs__read")?.policy.retry.maxAttempts).toBe(5);
    const idempotent = Object.fromEntries([...catalog.toolRoutes()].map((r) => [r.name, r.idempotent]));
    expect(idempotent).toEqual({ fs__write: false, fs__delete: true, fs__read: true, fs__put: true });
  });

  it("prefixes prompts like tools", () => {
    const catalog = new Catalog({ separator: "-" });
    catalog.rebuild(upstreams({ mcpServers: { docs: server } }, { docs: { prompts: ["summarize"] } }));
    expect(catalog.prompts.map((p) => p.name)).toEqual(["docs-summarize"]);
    expect(catalog.prompt("docs-summarize")).toMatchObject({ upstream: "docs", upstreamPrompt: "summarize" });
  });

  it("routes a resource by its exact URI first, then by the first matching template", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        { mcpServers: { a: server, b: server } },
        {
          a: { templates: ["file:///{+path}"] },
          b: { resources: ["file:///etc/hosts", "test://static"], templates: ["test://item/{id}/data"] },
        },
      ),
    );
    expect(catalog.resourceUpstream("file:///etc/hosts")).toBe("b");
    expect(catalog.resourceUpstream("file:///home/me/notes.txt")).toBe("a");
    expect(catalog.resourceUpstream("test://item/42/data")).toBe("b");
    expect(catalog.resourceUpstream("test://item/42")).toBeUndefined();
    expect(catalog.resourceUpstream("unknown://x")).toBeUndefined();
  });

  it("serves a URI listed by two upstreams from the first and reports it", () => {
    const catalog = new Catalog({ separator: "__" });
    catalog.rebuild(
      upstreams(
        { mcpServers: { a: server, b: server } },
        { a: { resources: ["x://1"] }, b: { resources: ["x://1"] } },
      ),
    );
    expect(catalog.resources.map((r) => r.uri)).toEqual(["x://1"]);
    expect(catalog.resourceUpstream("x://1")).toBe("a");
    expect(catalog.collisions).toEqual([
      'resource "x://1" of upstream "b" is also served by another upstream',
    ]);
  });

  it("reports which lists changed on a rebuild", () => {
    const catalog = new Catalog({ separator: "__" });
    const raw = { mcpServers: { a: server } };
    expect(catalog.rebuild(upstreams(raw, { a: { tools: ["t"], prompts: ["p"] } }))).toEqual(
      new Set(["tools", "resources", "prompts"]),
    );
    expect(catalog.rebuild(upstreams(raw, { a: { tools: ["t"], prompts: ["p"] } }))).toEqual(new Set());
    expect(catalog.rebuild(upstreams(raw, { a: { tools: ["t", "u"], prompts: ["p"] } }))).toEqual(
      new Set(["tools"]),
    );
    expect(catalog.rebuild(upstreams(raw, { a: { tools: ["t", "u"], templates: ["x://{id}"] } }))).toEqual(
      new Set(["resources", "prompts"]),
    );
  });

  it("hides a tool its gate holds and marks a flagged one in its description, naming the cause", () => {
    const verdicts: Record<string, ToolVerdict> = {
      held: { action: "hold", cause: "changed" },
      unread: { action: "hold", cause: "unverified" },
      flagged: { action: "flag", cause: "changed" },
      unchecked: { action: "flag", cause: "unverified" },
    };
    const catalog = new Catalog({ separator: "__", gate: (_upstream, t) => verdicts[t.name] ?? "ok" });
    catalog.rebuild(
      upstreams(
        { mcpServers: { a: server } },
        { a: { tools: ["held", "unread", "flagged", "unchecked", "fine"] } },
      ),
    );
    expect(names(catalog)).toEqual(["a__flagged", "a__unchecked", "a__fine"]);
    expect(catalog.heldBy("a__held")).toEqual({ upstream: "a", cause: "changed" });
    expect(catalog.heldBy("a__unread")).toEqual({ upstream: "a", cause: "unverified" });
    expect([catalog.heldCount("a"), catalog.heldCount("a", "changed")]).toEqual([2, 1]);
    expect(catalog.tool("a__flagged")?.definition.description).toMatch(
      /^\[toolgate: .*changed since it was approved.*\] flagged tool$/,
    );
    const unchecked = catalog.tool("a__unchecked")?.definition.description;
    expect(unchecked).toMatch(
      /^\[toolgate: .*could not be compared.*pins cannot be read.*\] unchecked tool$/,
    );
    expect(unchecked).not.toContain("changed");
  });
});
