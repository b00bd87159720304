/**
 * Settings a running gateway took at start and a reload cannot change: the listener and what was built
 * around it (body limit, session table), the catalog's name separator, the state directory's stores,
 * telemetry and the cluster store. A reload that changes one says so instead of ignoring it silently.
 * Everything else (upstreams, policies, access rules, API keys, OAuth, operators, allowed origins and hosts,
 * approvals) applies at once.
 */
import { isDeepStrictEqual } from "node:util";
import type { ResolvedConfig } from "./load.ts";

const RESTART_ONLY = [
  "gateway.listen",
  "gateway.separator",
  "gateway.maxBodyBytes",
  "gateway.maxSessions",
  "gateway.sessionIdleMs",
  "gateway.stateDir",
  "telemetry",
  "cluster",
] as const;

/** The restart-only settings that differ between the running config and the next one. */
export function restartOnlyChanges(running: ResolvedConfig, next: ResolvedConfig): string[] {
  return RESTART_ONLY.filter((path) => !isDeepStrictEqual(at(running, path), at(next, path)));
}

function at(config: ResolvedConfig, path: string): unknown {
  let value: unknown = config;
  for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}
