/**
 * Real published OpenAPI documents from npm (ReadMe's examples, GitHub's REST description from
 * @octokit/openapi) through the adapter's loader and mapper: they load, the tool names are stable (golden
 * file) and valid, and every generated input and output schema compiles with ajv. After an intended change:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/unit/openapi/real-specs.test.ts
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { openapiTransport } from "../../../src/config/openapi-schema.ts";
import { loadDocument } from "../../../src/upstreams/openapi/load.ts";
import { planOperations } from "../../../src/upstreams/openapi/operations.ts";

const require = createRequire(import.meta.url);
const EXAMPLES = dirname(require.resolve("@readme/oas-examples/package.json"));
const OCTOKIT = dirname(require.resolve("@octokit/openapi/package.json"));
const GOLDEN = new URL("./golden/real-specs.json", import.meta.url).pathname;

const SPECS: Record<string, string> = {
  "petstore 3.0 (yaml)": join(EXAMPLES, "3.0/yaml/petstore.yaml"),
  "petstore 3.1": join(EXAMPLES, "3.1/json/petstore.json"),
  "train-travel 3.1": join(EXAMPLES, "3.1/json/train-travel.json"),
  "circular 3.0": join(EXAMPLES, "3.0/json/circular.json"),
  "parameters-style 3.0": join(EXAMPLES, "3.0/json/parameters-style.json"),
  "security-multiple 3.0": join(EXAMPLES, "3.0/json/security-multiple.json"),
  "github api.github.com": join(OCTOKIT, "generated/api.github.com.json"),
};

function transportFor(spec: string) {
  const issues: { path: string; message: string }[] = [];
  const transport = openapiTransport(
    { type: "openapi", spec, baseUrl: "https://api.example.com" } as never,
    "$",
    ".",
    issues,
  );
  if (!transport) throw new Error(JSON.stringify(issues));
  return transport;
}

function compiler() {
  const ajv = new Ajv2020({ strict: false, allErrors: true, logger: false });
  addFormats.default(ajv as never);
  return ajv;
}

const golden: Record<string, { tools: number; names: string[] }> = existsSync(GOLDEN)
  ? JSON.parse(readFileSync(GOLDEN, "utf8"))
  : {};
const seen: typeof golden = {};

describe("real OpenAPI documents", () => {
  for (const [label, file] of Object.entries(SPECS)) {
    it(`maps ${label} to stable tools whose schemas compile`, { timeout: 180_000 }, async () => {
      const transport = transportFor(file);
      const { plans } = planOperations(await loadDocument(transport), transport);
      const names = plans.map((p) => p.name);
      expect(names.length).toBeGreaterThan(0);
      expect(new Set(names).size).toBe(names.length);
      for (const name of names) expect(name).toMatch(/^[A-Za-z0-9_-]{1,64}$/);
      const ajv = compiler();
      const failures: string[] = [];
      // GitHub's output schemas take ajv over half a minute on a loaded machine: every 16th is checked.
      const outputEvery = plans.length > 500 ? 16 : 1;
      for (const [i, { tool }] of plans.entries()) {
        for (const [kind, schema] of [
          ["input", tool.inputSchema],
          ["output", i % outputEvery === 0 ? tool.outputSchema : undefined],
        ] as const) {
          if (!schema) continue;
          expect(JSON.stringify(schema)).not.toContain('"$ref"');
          try {
            ajv.compile(schema);
            ajv.removeSchema(schema);
          } catch (err) {
            failures.push(`${tool.name} ${kind}: ${(err as Error).message}`);
          }
        }
      }
      expect(failures).toEqual([]);
      seen[label] = { tools: names.length, names };
      if (process.env.UPDATE_GOLDEN) {
        writeFileSync(GOLDEN, `${JSON.stringify({ ...golden, ...seen }, null, 1)}\n`);
      } else {
        expect(seen[label]).toEqual(golden[label]);
      }
    });
  }
});
