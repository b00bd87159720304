/**
 * Golden config tests: every `golden/<name>.{json,yaml}` input is loaded and compared with the checked-in
 * `golden/<name>.normalized.json`: the warnings (what a client's file carried that toolgate ignores), the
 * resolved config and each configured tool's policy (defaults → upstream → tool). Inputs include MCP clients'
 * own files (Claude Desktop, Cursor, VS Code, Windsurf, Zed, Continue), pasted as they write them. After an intended change, regenerate and review the diff:
 *
 *   UPDATE_GOLDEN=1 npx vitest run test/unit/config/golden.test.ts
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfigText, type ResolvedConfig } from "../../../src/config/load.ts";
import { extendPolicy, type ResolvedPolicy } from "../../../src/config/policy.ts";

const DIR = new URL("./golden/", import.meta.url).pathname;
/** The only environment golden inputs see: the test does not depend on the machine's variables. */
const GOLDEN_ENV = {
  NOTION_TOKEN: "ntn_golden",
  CONTEXT7_API_KEY: "ctx7_golden",
  PERPLEXITY_KEY: "pplx_golden",
  HOME: "/home/golden",
};

const goldenInputs = readdirSync(DIR).filter(
  (f) => /\.(json|ya?ml)$/.test(f) && !f.endsWith(".normalized.json"),
);

/**
 * What a golden file records: the config as the gateway runs it, and the policy each configured tool gets.
 * Paths resolved against the config file's directory are recorded relative to `<golden>`.
 */
function normalizedView(config: ResolvedConfig, warnings: string[]) {
  const toolPolicies: Record<string, ResolvedPolicy> = {};
  for (const upstream of config.upstreams) {
    for (const [tool, options] of Object.entries(upstream.tools)) {
      toolPolicies[`${upstream.name}/${tool}`] = extendPolicy(upstream.policy, options);
    }
  }
  // A JSON round trip, so the view compares like the file (undefined fields dropped).
  return JSON.parse(
    JSON.stringify({ warnings, config, toolPolicies }).replaceAll(DIR.replace(/\/$/, ""), "<golden>"),
  );
}

describe("golden configs", () => {
  it("has golden inputs to check", () => {
    expect(goldenInputs.length).toBeGreaterThanOrEqual(3);
  });

  for (const input of goldenInputs) {
    const expectedFile = `${DIR}${input.replace(/\.(json|ya?ml)$/, "")}.normalized.json`;
    it(`normalizes ${input} as recorded`, () => {
      const { config, warnings } = parseConfigText(
        readFileSync(`${DIR}${input}`, "utf8"),
        `${DIR}${input}`,
        GOLDEN_ENV,
      );
      const actual = normalizedView(config, warnings);
      if (process.env.UPDATE_GOLDEN) writeFileSync(expectedFile, `${JSON.stringify(actual, null, 2)}\n`);
      expect(actual).toEqual(JSON.parse(readFileSync(expectedFile, "utf8")));
    });
  }
});
