/**
 * A real redis-server for tests: its own temp dir, no persistence, a free port on 127.0.0.1. Stop and
 * start it again on the same port to play an outage. Tests skip (with the reason) when the binary is missing.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { freePort } from "./ports.ts";

/** The path of `name` (default redis-server) on PATH, or undefined. */
export function redisServerBinary(name = "redis-server"): string | undefined {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined;
  } catch {
    return undefined;
  }
}

export class RedisServer {
  readonly port: number;
  readonly #dir: string;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), await mkdtemp(join(tmpdir(), "toolgate-redis-")));
    await server.resume();
    return server;
  }

  /** (Re)starts redis-server on this port; resolves when it accepts connections. */
  async resume(): Promise<void> {
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        this.#dir,
      ],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    this.#child = child;
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      lines.on("line", (line) => {
        if (line.includes("Ready to accept connections")) resolve();
      });
      child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
  }

  /** Kills redis-server (SIGKILL: an outage, not a clean shutdown). */
  async pause(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  /** Stops redis-server without killing it (SIGSTOP): connections open, every command hangs, data kept. */
  freeze(): void {
    this.#child?.kill("SIGSTOP");
  }

  /** Lets a frozen redis-server run again (SIGCONT). */
  thaw(): void {
    this.#child?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    this.thaw();
    await this.pause();
    await rm(this.#dir, { recursive: true, force: true });
  }
}
