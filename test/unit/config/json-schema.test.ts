import { readdirSync, readFileSync } from "node:fs";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { renderSchema } from "../../../scripts/gen-schema.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;
const GOLDEN = `${ROOT}test/unit/config/golden/`;

/** The generated schema as an editor would apply it (draft 7, formats checked). */
function editorValidator() {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv.compile(JSON.parse(renderSchema()));
}

describe("generated JSON Schema", () => {
  const validate = editorValidator();
  // `client-*` inputs are MCP clients' own files (JSONC, their own keys): the loader adapts them, an editor
  // validating toolgate's schema would not accept them.
  const inputs = readdirSync(GOLDEN).filter(
    (f) => /\.(json|ya?ml)$/.test(f) && !f.endsWith(".normalized.json") && !f.startsWith("client-"),
  );

  it("is the checked-in config/toolgate.schema.json", () => {
    expect(readFileSync(`${ROOT}config/toolgate.schema.json`, "utf8")).toBe(renderSchema());
  });

  for (const file of [...inputs.map((f) => `${GOLDEN}${f}`), `${ROOT}config/toolgate.example.json`]) {
    it(`accepts ${file.slice(ROOT.length)}`, () => {
      const text = readFileSync(file, "utf8");
      const valid = validate(/\.ya?ml$/.test(file) ? parseYaml(text) : JSON.parse(text));
      expect(validate.errors ?? []).toEqual([]);
      expect(valid).toBe(true);
    });
  }

  it("flags an unknown key where the editor shows it", () => {
    expect(validate({ mcpServers: { github: { comand: "gh" } } })).toBe(false);
    expect(validate.errors).toContainEqual(
      expect.objectContaining({
        instancePath: "/mcpServers/github",
        params: { additionalProperty: "comand" },
      }),
    );
  });

  it("flags wrong types and out-of-range values", () => {
    expect(validate({ mcpServers: {}, gateway: { listen: { port: 70000 } } })).toBe(false);
    expect(validate({ mcpServers: { a: { url: "not a url" } } })).toBe(false);
    expect(validate({ mcpServers: { "bad name": { command: "a" } } })).toBe(false);
    expect(validate({})).toBe(false);
  });
});
