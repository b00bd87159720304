/**
 * All configured upstreams by name. Each one connects on its own, so a broken upstream never delays the
 * others. `reconcile()` applies a reloaded config while leaving unchanged upstreams (and their calls) alone.
 */
import { EventEmitter } from "node:events";
import { isDeepStrictEqual } from "node:util";
import type { UpstreamConfig } from "../config/load.ts";
import type { UpstreamHandle } from "./handle.ts";
import { OpenApiUpstream } from "./openapi/adapter.ts";
import { type CatalogKind, Upstream, type UpstreamOptions, type UpstreamStatus } from "./upstream.ts";

export interface UpstreamRegistryEvents {
  state: [upstream: UpstreamHandle, status: UpstreamStatus];
  catalogChanged: [upstream: UpstreamHandle, kinds: CatalogKind[]];
  connected: [upstream: UpstreamHandle];
  /** Upstreams added or removed by `reconcile()`. */
  added: [upstream: UpstreamHandle];
  removed: [upstream: UpstreamHandle];
}

export interface ReconcileResult {
  added: string[];
  removed: string[];
  /** Transport changed: the old connection was stopped and a new one started. */
  restarted: string[];
  /** Transport unchanged, other settings changed: applied to the running upstream without reconnecting. */
  updated: string[];
}

export class UpstreamRegistry extends EventEmitter<UpstreamRegistryEvents> {
  readonly #options: UpstreamOptions;
  readonly #upstreams = new Map<string, UpstreamHandle>();
  #started = false;

  constructor(configs: UpstreamConfig[], options: UpstreamOptions) {
    super();
    this.#options = options;
    for (const config of configs) this.#add(config);
  }

  /** Start every upstream in the background; returns at once. */
  startAll(): void {
    this.#started = true;
    for (const upstream of this.#upstreams.values()) upstream.start();
  }

  get(name: string): UpstreamHandle | undefined {
    return this.#upstreams.get(name);
  }

  all(): UpstreamHandle[] {
    return [...this.#upstreams.values()];
  }

  statuses(): UpstreamStatus[] {
    return this.all().map((u) => u.status());
  }

  async stopAll(): Promise<void> {
    this.#started = false;
    await Promise.all(this.all().map((u) => u.stop()));
  }

  /**
   * Apply a new list of configs: start new upstreams, stop removed ones, restart those whose transport
   * changed. An upstream with the same transport keeps its connection and in-flight calls; only its
   * `config` (prefix, filters, policies, reconnect delays) is swapped.
   */
  async reconcile(configs: UpstreamConfig[]): Promise<ReconcileResult> {
    const result: ReconcileResult = { added: [], removed: [], restarted: [], updated: [] };
    const next = new Map(configs.map((c) => [c.name, c]));
    const stopping: Promise<void>[] = [];
    for (const [name, upstream] of this.#upstreams) {
      if (next.has(name)) continue;
      this.#upstreams.delete(name);
      result.removed.push(name);
      stopping.push(this.#remove(upstream));
    }
    for (const config of configs) {
      const current = this.#upstreams.get(config.name);
      if (!current) {
        result.added.push(config.name);
        this.#startIfRunning(this.#add(config));
        continue;
      }
      if (
        isDeepStrictEqual(current.config.transport, config.transport) &&
        current.config.protocol === config.protocol
      ) {
        if (!isDeepStrictEqual(current.config, config)) {
          current.reconfigure(config);
          result.updated.push(config.name);
        }
        // An HTTP API's document may have changed on disk or at its URL: read it again.
        if (current instanceof OpenApiUpstream) current.refresh();
        continue;
      }
      result.restarted.push(config.name);
      stopping.push(this.#remove(current));
      this.#startIfRunning(this.#add(config));
    }
    await Promise.all(stopping);
    return result;
  }

  #add(config: UpstreamConfig): UpstreamHandle {
    const upstream: UpstreamHandle =
      config.transport.type === "openapi"
        ? new OpenApiUpstream(config, { log: this.#options.log })
        : new Upstream(config, this.#options);
    upstream.on("state", (status) => this.emit("state", upstream, status));
    upstream.on("catalogChanged", (kinds) => this.emit("catalogChanged", upstream, kinds));
    upstream.on("connected", () => this.emit("connected", upstream));
    this.#upstreams.set(config.name, upstream);
    this.emit("added", upstream);
    return upstream;
  }

  async #remove(upstream: UpstreamHandle): Promise<void> {
    this.emit("removed", upstream);
    await upstream.stop();
    upstream.removeAllListeners();
  }

  #startIfRunning(upstream: UpstreamHandle): void {
    if (this.#started) upstream.start();
  }
}
