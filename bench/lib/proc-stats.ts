/**
 * Process accounting from /proc (Linux): CPU time (utime+stime), resident memory and open fds of a
 * process or of its descendants, e.g. the stdio upstreams a gateway spawned.
 */
import { readdirSync, readFileSync } from "node:fs";

/** USER_HZ: clock ticks per second of /proc/<pid>/stat times; 100 on every Linux the bench targets. */
const TICKS_PER_SECOND = 100;

export interface ProcSample {
  cpuMs: number;
  rssKb: number;
  hwmKb: number;
  pids: number;
}

interface StatFields {
  ppid: number;
  cpuTicks: number;
}

function readStat(pid: number): StatFields | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  } catch {
    return undefined;
  }
}

function readStatusKb(pid: number, key: "VmRSS" | "VmHWM"): number {
  try {
    const match = readFileSync(`/proc/${pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+) kB`, "m"));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

/** Every live descendant of `root` (children, grandchildren, ...), not `root` itself. */
export function descendants(root: number): number[] {
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat) parentOf.set(pid, stat.ppid);
  }
  const found: number[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [pid, ppid] of parentOf) if (frontier.includes(ppid)) next.push(pid);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** CPU and memory summed over `pids`; processes that are gone count as zero. */
export function sample(pids: readonly number[]): ProcSample {
  let cpuTicks = 0;
  let rssKb = 0;
  let hwmKb = 0;
  let live = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    if (!stat) continue;
    live++;
    cpuTicks += stat.cpuTicks;
    rssKb += readStatusKb(pid, "VmRSS");
    hwmKb += readStatusKb(pid, "VmHWM");
  }
  return { cpuMs: (cpuTicks * 1000) / TICKS_PER_SECOND, rssKb, hwmKb, pids: live };
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}
