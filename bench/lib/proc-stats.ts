/**
 * Process accounting from /proc (Linux): CPU time, resident memory and open fds of a process or of its
 * descendants, e.g. the stdio upstreams a gateway spawned.
 *
 * CPU time is the scheduler's own count, `se.sum_exec_runtime` of every thread (/proc/<pid>/task/<tid>/sched),
 * to the microsecond: utime+stime in /proc/<pid>/stat come in clock ticks of 10 ms, which over a 1 s window of
 * 150 ms of gateway CPU is ±7 % per window. A thread that exits within a window takes its time with it (a
 * Node process and the Go proxy keep theirs); where the sched files are missing, the ticks are used.
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

const RUNTIME = /^se\.sum_exec_runtime\s*:\s*([\d.]+)$/m;

/** CPU time of every thread of `pid` in ms, to the µs; undefined when the kernel does not show it. */
function runtimeMs(pid: number): number | undefined {
  let total = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const match = RUNTIME.exec(readFileSync(`/proc/${pid}/task/${tid}/sched`, "utf8"));
      if (!match) return undefined;
      total += Number(match[1]);
    }
  } catch {
    return undefined; // no sched files, or the process (or a thread) went away meanwhile
  }
  return total;
}

/** CPU and memory summed over `pids`; processes that are gone count as zero. */
export function sample(pids: readonly number[]): ProcSample {
  let cpuMs = 0;
  let rssKb = 0;
  let hwmKb = 0;
  let live = 0;
  for (const pid of pids) {
    const stat = readStat(pid);
    if (!stat) continue;
    live++;
    cpuMs += runtimeMs(pid) ?? (stat.cpuTicks * 1000) / TICKS_PER_SECOND;
    rssKb += readStatusKb(pid, "VmRSS");
    hwmKb += readStatusKb(pid, "VmHWM");
  }
  return { cpuMs, rssKb, hwmKb, pids: live };
}

export function openFds(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return 0;
  }
}

/**
 * Each CPU's time so far (/proc/stat, in clock ticks): all of it, and the part stolen, when this machine is a
 * virtual one, by the hypervisor running other guests. Over a window, a CPU's steal share is time its
 * processes were ready to run and could not: on a shared host, the window's figures are the host's as much
 * as the system's. Undefined without /proc/stat.
 */
export function cpuTimes(): Array<{ total: number; steal: number }> | undefined {
  try {
    const times: Array<{ total: number; steal: number }> = [];
    for (const line of readFileSync("/proc/stat", "utf8").split("\n")) {
      const match = /^cpu(\d+) (.*)$/.exec(line);
      if (!match) continue;
      // user nice system idle iowait irq softirq steal guest guest_nice; guest time is counted in user.
      const fields = (match[2] as string).trim().split(/\s+/).slice(0, 8).map(Number);
      times[Number(match[1])] = { total: fields.reduce((a, b) => a + b, 0), steal: fields[7] ?? 0 };
    }
    return times.length ? times : undefined;
  } catch {
    return undefined;
  }
}

/** Each CPU's share of time stolen between two `cpuTimes()` samples, 0–1 (NaN for a CPU that did not tick). */
export function stealShares(
  before: Array<{ total: number; steal: number }>,
  after: Array<{ total: number; steal: number }>,
): number[] {
  return after.map((a, cpu) => {
    const b = before[cpu];
    const ticks = b ? a.total - b.total : 0;
    return b && ticks > 0 ? (a.steal - b.steal) / ticks : Number.NaN;
  });
}

/**
 * Function-call interrupts taken so far by each CPU (`CAL` in /proc/interrupts, x86): the interrupt a task
 * sends to wake a task on an idle CPU. Over a window, the proxy's CPU's count per call says how often a message
 * found the proxy asleep, each wake-up paid for by the process that sent it (README, Performance). Undefined
 * where the line is missing (other architectures name it differently).
 */
export function wakeUpInterrupts(): number[] | undefined {
  try {
    const line = readFileSync("/proc/interrupts", "utf8")
      .split("\n")
      .find((l) => l.trimStart().startsWith("CAL:"));
    if (!line) return undefined;
    const counts: number[] = [];
    for (const field of line.trim().split(/\s+/).slice(1)) {
      if (!/^\d+$/.test(field)) break;
      counts.push(Number(field));
    }
    return counts;
  } catch {
    return undefined;
  }
}
