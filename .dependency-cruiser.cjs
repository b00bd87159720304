/**
 * The layer table of docs/ARCHITECTURE.md, enforced: an import may only go down the table, never up, and
 * folders on one row never import each other. Leaves any layer may import are listed in LEAVES.
 */
const LAYERS = [
  ["^src/main\\.ts$"],
  ["^src/app\\.ts$"],
  ["^src/cluster\\.ts$"],
  ["^src/server/"],
  ["^src/tasks/"],
  ["^src/router/"],
  ["^src/catalog/", "^src/policies/", "^src/upstreams/"],
  ["^src/protocol/", "^src/stores/"],
  ["^src/telemetry/"],
  ["^src/config/"],
  ["^src/errors\\.ts$", "^src/in-flight\\.ts$"],
];

const LEAVES = [
  "^src/errors\\.ts$",
  "^src/telemetry/log\\.ts$",
  "^src/policies/events\\.ts$",
  "^src/policies/types\\.ts$",
  "^src/catalog/names\\.ts$",
  "^src/server/auth/principal\\.ts$",
];

const forbidden = [];
LAYERS.forEach((row, index) => {
  const above = LAYERS.slice(0, index).flat();
  for (const from of row) {
    const siblings = row.filter((other) => other !== from);
    const targets = [...above, ...siblings];
    if (targets.length === 0) continue;
    forbidden.push({
      name: `layer-${index + 1}-${from.replace(/[^a-z]/g, "")}`,
      comment: `${from} may import only layers below it (docs/ARCHITECTURE.md) and the shared leaves`,
      severity: "error",
      from: { path: from },
      to: { path: targets, pathNot: LEAVES },
    });
  }
});

module.exports = {
  forbidden: [
    ...forbidden,
    {
      name: "no-circular",
      comment: "modules must not depend on each other in a cycle",
      severity: "error",
      from: { path: "^src/" },
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // TypeScript 7 (the native compiler) has no JS API yet: swc parses the sources. It sees type-only imports
    // too (as `type-only`), so tsPreCompilationDeps, which asks for the tsc API and warns without it, is off.
    parser: "swc",
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
