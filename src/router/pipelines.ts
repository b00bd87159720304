/**
 * Pipelines per tool, built once and cached. (Interim: calls go straight to the upstream until the policy
 * pipeline lands.)
 */
import type { ToolRoute } from "../catalog/catalog.ts";
import type { ResolvedConfig } from "../config/load.ts";
import type { CallContext } from "../policies/types.ts";
import type { Pipelines, Result, Terminal } from "./router.ts";

export function createPipelines(_config: () => ResolvedConfig): Pipelines {
  return {
    execute(_route: ToolRoute, terminal: Terminal, ctx: CallContext): Promise<Result> {
      return terminal(ctx);
    },
  };
}
