/** The `toolgate` CLI as a user runs it: `node src/main.ts <args>`, judged by its exit code and output. */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { NODE, ROOT } from "./gateway.ts";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI to completion; killed after 90 s, so a hang fails the test instead of stalling it. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}, cwd = ROOT): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [join(ROOT, "src/main.ts"), ...args], { cwd, env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}
