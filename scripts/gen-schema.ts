/**
 * Generates config/toolgate.schema.json, the JSON Schema editors use to validate and complete toolgate
 * config files, from the zod ConfigSchema (the one source of truth).
 *
 *   node scripts/gen-schema.ts           write the file
 *   node scripts/gen-schema.ts --check   exit 1 when the checked-in file differs from the schema
 */
import { readFile, writeFile } from "node:fs/promises";
import { relative } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigSchema } from "../src/config/schema.ts";

const TARGET = fileURLToPath(new URL("../config/toolgate.schema.json", import.meta.url));

/** The schema text, deterministic for a given ConfigSchema. */
export function renderSchema(): string {
  const generated = z.toJSONSchema(ConfigSchema, {
    // What a user writes (defaults optional, before transforms), not what the loader produces.
    io: "input",
    // Draft 7 is the dialect every editor (VS Code, JetBrains, yaml-language-server) validates in full.
    target: "draft-7",
    // A check zod cannot express (a refinement, a custom type) leaves that value unconstrained here; the
    // loader still enforces it, and the generator keeps working when the schema grows.
    unrepresentable: "any",
  });
  const { $schema, ...rest } = generated;
  const document = {
    $schema,
    title: "toolgate config",
    description:
      "toolgate, an MCP gateway: `mcpServers` as MCP clients write it (Claude Desktop, Cursor, Claude Code), " +
      "plus `gateway`, `defaults` (policies for every tool), `upstreams` (per-upstream and per-tool options), " +
      "`security` and `telemetry`. Unknown keys are errors. Generated from src/config/schema.ts by " +
      "scripts/gen-schema.ts: do not edit.",
    ...rest,
  };
  return `${JSON.stringify(document, null, 2)}\n`;
}

async function main(check: boolean): Promise<number> {
  const next = renderSchema();
  if (!check) {
    await writeFile(TARGET, next);
    process.stdout.write(`wrote ${relative(process.cwd(), TARGET)}\n`);
    return 0;
  }
  const current = await readFile(TARGET, "utf8").catch(() => undefined);
  if (current === next) return 0;
  const why = current === undefined ? "is missing" : "is stale (src/config/schema.ts changed)";
  process.stderr.write(`gen-schema: ${TARGET} ${why}; run \`npm run schema\` and commit the result\n`);
  return 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.includes("--check"));
}
