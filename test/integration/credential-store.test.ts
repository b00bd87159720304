/**
 * The credentials file shared by processes: `toolgate auth login` in one and the running gateway's token
 * refreshes in another each rewrite the whole file. Two real processes change it at the same time here, and
 * neither loses the other's entries.
 */
import { spawn } from "node:child_process";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { FileCredentialStore } from "../../src/upstreams/auth/credential-store.ts";
import { NODE, ROOT } from "../helpers/gateway.ts";

const SECRET = "credential-store-test";
const CHANGES = 60;

/** Another process with its own store on the same file: says "ready", waits for a line, then makes its changes. */
const OTHER = `
import { FileCredentialStore } from ${JSON.stringify(join(ROOT, "src/upstreams/auth/credential-store.ts"))};
import { createInterface } from "node:readline";
const [dir, secret, n] = process.argv.slice(1);
const store = new FileCredentialStore(dir, secret);
const lines = createInterface({ input: process.stdin });
console.log("ready");
for await (const _ of lines) break;
for (let i = 0; i < Number(n); i++) await store.update("other-" + i, { stepUpScope: "s" + i });
console.log("done");
`;

describe("FileCredentialStore across processes", () => {
  it("keeps every change when two processes rewrite the file at once", async () => {
    const dir = await mkdtemp(join(tmpdir(), "toolgate-credentials-"));
    const store = new FileCredentialStore(dir, SECRET);
    const child = spawn(NODE, ["--input-type=module", "-e", OTHER, dir, SECRET, String(CHANGES)], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    const said = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    expect((await said.next()).value).toBe("ready");
    child.stdin.write("go\n");
    for (let i = 0; i < CHANGES; i++) await store.update(`mine-${i}`, { stepUpScope: `s${i}` });
    expect((await said.next()).value).toBe("done");
    child.kill();

    const fresh = new FileCredentialStore(dir, SECRET);
    const missing: string[] = [];
    for (let i = 0; i < CHANGES; i++) {
      for (const key of [`mine-${i}`, `other-${i}`]) {
        if ((await fresh.get(key))?.stepUpScope !== `s${i}`) missing.push(key);
      }
    }
    expect(missing).toEqual([]);
  });
});
