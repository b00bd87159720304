/**
 * A stdio upstream started through a wrapper (`npx`, `npm exec`, `uvx`, a shell) runs as a grandchild of the
 * gateway. The stdio transport stops only the process it spawned, and a wrapper does not always pass the signal on, so
 * the real server could outlive the gateway. Before the transport closes, the whole tree under the child is
 * read from /proc; whatever of it is still running after the close is sent SIGTERM, then SIGKILL.
 * Linux only (/proc); elsewhere the transport's own close is all there is.
 */
import { readdirSync, readFileSync } from "node:fs";

/** How long the tree gets between SIGTERM and SIGKILL. */
const GRACE_MS = 2_000;

export function closeWithProcessTree(transport: {
  readonly pid: number | null;
  close(): Promise<void>;
}): void {
  const close = transport.close.bind(transport);
  transport.close = async () => {
    const root = transport.pid;
    const tree = root === null ? [] : descendants(root);
    await close();
    if (tree.length === 0) return;
    signal(tree, "SIGTERM");
    if (await allGone(tree, GRACE_MS)) return;
    signal(tree, "SIGKILL");
  };
}

/** Every process below `root`, deepest first (read once from /proc; empty where /proc is missing). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  let entries: string[];
  try {
    entries = readdirSync("/proc");
  } catch {
    return [];
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const ppid = parentOf(Number(entry));
    if (ppid === undefined) continue;
    children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
  }
  const found: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      walk(child);
      found.push(child);
    }
  };
  walk(root);
  return found;
}

function parentOf(pid: number): number | undefined {
  try {
    // /proc/PID/stat: "pid (comm) state ppid …"; comm may hold spaces and parentheses: read after the last ")".
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

function signal(pids: number[], sig: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, sig);
    } catch {
      // Gone already.
    }
  }
}

/** Whether a process with this pid exists (signal 0). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function allGone(pids: number[], withinMs: number): Promise<boolean> {
  const until = Date.now() + withinMs;
  while (Date.now() < until) {
    if (!pids.some(alive)) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return !pids.some(alive);
}
