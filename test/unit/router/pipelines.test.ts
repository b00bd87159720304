/** Which breaker a tool's pipeline gets: shared per upstream, or its own when the tool sets its own settings. */
import type { Tool } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, expect, it } from "vitest";
import { Catalog } from "../../../src/catalog/catalog.ts";
import { resolveConfig } from "../../../src/config/load.ts";
import { noEvents } from "../../../src/policies/events.ts";
import { PipelineCache } from "../../../src/router/pipelines.ts";

const tool = (name: string): Tool => ({ name, inputSchema: { type: "object" } });
let cache: PipelineCache | undefined;
afterEach(() => cache?.shutdown());

it("shares one upstream breaker, and gives a tool with its own breaker settings a breaker of its own", () => {
  const { config } = resolveConfig({
    mcpServers: { api: { url: "http://127.0.0.1:9/mcp" } },
    upstreams: {
      api: {
        policies: { breaker: { volumeThreshold: 20 } },
        tools: { flaky: { breaker: { volumeThreshold: 3, resetTimeoutMs: 500 } } },
      },
    },
  });
  const [upstream] = config.upstreams;
  if (!upstream) throw new Error("no upstream");
  const catalog = new Catalog({ separator: "__" });
  catalog.rebuild([
    {
      name: "api",
      config: upstream,
      tools: [tool("a"), tool("b"), tool("flaky")],
      resources: [],
      resourceTemplates: [],
      prompts: [],
    },
  ]);
  cache = new PipelineCache({ config: () => config, events: noEvents });
  for (const route of catalog.toolRoutes()) cache.pipeline(route, true);
  const breakers = cache.breakers
    .states()
    .map((b) => b.id)
    .sort();
  expect(breakers).toEqual(["tool:api__flaky", "upstream:api"]);
});
