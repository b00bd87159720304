/**
 * `--profile DIR`: every toolgate the bench starts runs under `node --cpu-prof`, and its profile (open it in
 * Chrome DevTools or speedscope for the flame graph) is summarised here as the functions with the most self
 * time, as shares of the samples in which the gateway was not idle.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between samples. */
  timeDeltas: number[];
}

const IDLE = new Set(["(idle)", "(program)"]);

export interface ProfileSummary {
  file: string;
  busySamples: number;
  top: { share: number; frame: string }[];
}

/**
 * The newest profile in `dir`, summarised from `skipMs` after the process started (start-up and warm-up
 * left out); undefined when the process wrote none.
 */
export function summariseProfile(dir: string, skipMs: number, top = 15): ProfileSummary | undefined {
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith(".cpuprofile"))
    .map((e) => e.name)
    .sort();
  const name = files.at(-1);
  if (name === undefined) return undefined;
  const file = join(dir, name);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let busy = 0;
  let elapsedUs = 0;
  for (const [i, id] of profile.samples.entries()) {
    elapsedUs += profile.timeDeltas[i] ?? 0;
    if (elapsedUs < skipMs * 1000) continue;
    const frame = byId.get(id)?.callFrame;
    if (!frame || IDLE.has(frame.functionName)) continue;
    busy++;
    const where = frame.url.replace(/^.*node_modules\//, "").replace(/^file:\/\/.*?\/src\//, "src/");
    const key = `${frame.functionName || "(anonymous)"} ${where}${where ? `:${frame.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + 1);
  }
  return {
    file,
    busySamples: busy,
    top: [...self]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([frame, n]) => ({ share: n / Math.max(busy, 1), frame })),
  };
}
