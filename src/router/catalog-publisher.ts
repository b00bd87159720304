/**
 * Rebuilds the merged catalog from the upstreams and publishes it: telemetry gets the catalog's names (the
 * only tool names metrics carry) and the pipelines are built ahead of the first call, so every breaker
 * exists and reports closed; the lists that changed are announced to the downstream faces.
 */
import type { Catalog, CatalogKind, CatalogUpstream } from "../catalog/catalog.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Telemetry } from "../telemetry/telemetry.ts";
import type { PipelineCache } from "./pipelines.ts";

export interface CatalogPublisherOptions {
  catalog: Catalog;
  upstreams: { all(): readonly CatalogUpstream[] };
  pipelines: PipelineCache;
  telemetry: Telemetry;
  log: Logger;
  /** Tells every downstream session (both eras) which lists changed. */
  announce: (kinds: Set<CatalogKind>) => void;
}

export class CatalogPublisher {
  readonly #options: CatalogPublisherOptions;

  constructor(options: CatalogPublisherOptions) {
    this.#options = options;
  }

  /** Rebuild the catalog from the upstreams as they are, publish it, and announce what changed. */
  rebuild(): void {
    const { catalog, upstreams, telemetry, log, announce } = this.#options;
    const changed = catalog.rebuild(upstreams.all());
    telemetry.stats.retain(new Set([...catalog.toolRoutes()].map((r) => r.name)));
    this.publish();
    for (const collision of catalog.collisions) log.warn("catalog collision", { detail: collision });
    if (changed.size) announce(changed);
  }

  /**
   * Hand telemetry the catalog's names (the only tool names metrics carry) and let it create each series at
   * zero. Pipelines are built now rather than on the first call, so every breaker exists and reports closed.
   */
  publish(): void {
    const { catalog, upstreams, pipelines, telemetry } = this.#options;
    const routes = [...catalog.toolRoutes()];
    for (const route of routes) pipelines.pipeline(route, true);
    telemetry.catalogChanged({
      tools: routes.map((r) => ({ name: r.name, upstream: r.upstream })),
      prompts: catalog.prompts.map((p) => p.name),
      upstreams: upstreams.all().map((u) => u.name),
      breakers: pipelines.breakers.states(),
    });
  }
}
