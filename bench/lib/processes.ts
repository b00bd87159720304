/**
 * Every process the bench starts goes through here: each runs in its own process group, is tracked,
 * and is stopped (group and all descendants) in `stopAll()`, on SIGINT/SIGTERM and on exit, so a
 * failed or interrupted run leaves nothing behind.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { descendants } from "./proc-stats.ts";

export interface Started {
  name: string;
  pid: number;
  child: ChildProcess;
  /** stdout lines, in order. */
  lines: string[];
  /** The last stderr lines, for error messages. */
  stderrTail: string[];
}

const running = new Set<Started>();
const hasTaskset = spawnSync("taskset", ["--version"]).status === 0;

export function tasksetAvailable(): boolean {
  return hasTaskset;
}

export interface StartOptions {
  /** CPU list for `taskset -c` (taskset execs, so the pid stays the program's own). */
  cpus?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** A pipe to the process's stdin (otherwise ignored). */
  stdin?: boolean;
}

export function start(name: string, argv: readonly string[], options: StartOptions = {}): Started {
  const [command = "", ...args] =
    options.cpus && hasTaskset ? ["taskset", "-c", options.cpus, ...argv] : argv;
  const child = spawn(command, args, {
    detached: true,
    stdio: [options.stdin ? "pipe" : "ignore", "pipe", "pipe"],
    env: options.env ?? process.env,
    cwd: options.cwd,
  });
  if (child.pid === undefined) throw new Error(`bench: could not start ${name} (${argv.join(" ")})`);
  const started: Started = { name, pid: child.pid, child, lines: [], stderrTail: [] };
  running.add(started);
  child.once("exit", () => running.delete(started));
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) => started.lines.push(l));
  createInterface({ input: child.stderr as NodeJS.ReadableStream }).on("line", (l) => {
    started.stderrTail.push(l);
    if (started.stderrTail.length > 20) started.stderrTail.shift();
  });
  return started;
}

/** Waits until a line (stdout or stderr) matches, or fails naming the process and its last words. */
export async function waitForLine(
  p: Started,
  match: (line: string) => boolean,
  timeoutMs = 15_000,
): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const found = p.lines.find(match) ?? p.stderrTail.find(match);
    if (found !== undefined) return found;
    if (p.child.exitCode !== null || p.child.signalCode !== null) break;
    await sleep(20);
  }
  throw new Error(
    `bench: ${p.name} (pid ${p.pid}) did not become ready in ${timeoutMs} ms; exit=${p.child.exitCode}; stderr:\n  ${p.stderrTail.join("\n  ")}`,
  );
}

/** Resolves when the process exits; its stdout lines are then complete. */
export function exited(p: Started): Promise<number | null> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return Promise.resolve(p.child.exitCode);
  return new Promise((resolve) => p.child.once("close", (code) => resolve(code)));
}

function signalTree(p: Started, signal: NodeJS.Signals): void {
  // Descendants first: a gateway may start its stdio upstreams in their own process groups.
  for (const pid of descendants(p.pid)) {
    try {
      process.kill(pid, signal);
    } catch {}
  }
  try {
    process.kill(-p.pid, signal);
  } catch {}
}

/** SIGTERM, then SIGKILL after `graceMs` for whatever still runs. */
export async function stop(p: Started, graceMs = 2_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) {
    signalTree(p, "SIGKILL"); // orphans left in its group
    running.delete(p);
    return;
  }
  const done = exited(p);
  signalTree(p, "SIGTERM");
  const timer = setTimeout(() => signalTree(p, "SIGKILL"), graceMs);
  await done;
  clearTimeout(timer);
  signalTree(p, "SIGKILL");
  running.delete(p);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((p) => stop(p)));
}

/** Ctrl-C, SIGTERM and any exit stop everything started here. */
export function installCleanup(): void {
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`\nbench: ${signal}, stopping ${running.size} process(es)…\n`);
    stopAll().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", () => {
    for (const p of running) signalTree(p, "SIGKILL");
  });
}
