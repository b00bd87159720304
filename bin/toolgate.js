#!/usr/bin/env node
// The installed package ships compiled JavaScript (dist/, built by `npm pack`/`npm publish`); a repository
// checkout runs the TypeScript source directly on a Node that strips types (22.18+, 24).
import { existsSync } from "node:fs";

const source = new URL("../src/main.ts", import.meta.url);
const compiled = new URL("../dist/main.js", import.meta.url);
const [major] = process.versions.node.split(".").map(Number);
if (major < 22) {
  process.stderr.write(
    `toolgate needs Node.js 22 or newer (this is ${process.version}); see "engines" in its package.json\n`,
  );
  process.exit(2);
}
const useSource = existsSync(source) && process.features?.typescript;
if (!useSource && !existsSync(compiled)) {
  process.stderr.write(
    "toolgate: dist/ is missing; run `npm run build` first (or use Node 24 in a checkout)\n",
  );
  process.exit(2);
}
await import((useSource ? source : compiled).href);
