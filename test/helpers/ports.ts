/**
 * A loopback port for a server that starts later (another process, a login's callback, a restarted
 * upstream). It is picked below the kernel's ephemeral range: a port from that range, once released, can
 * become the local port of any outgoing connection on the machine, and nothing can listen on it while that
 * connection lives (EADDRINUSE). A CI run's conformance login that never started failed exactly as a held
 * callback port makes it fail.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:net";

const LOWEST = 10_000;

export async function freePort(): Promise<number> {
  const below = ephemeralStart();
  for (let tries = 0; tries < 100; tries++) {
    const port = LOWEST + Math.floor(Math.random() * (below - LOWEST));
    if (await listenable(port)) return port;
  }
  throw new Error(`no free loopback port between ${LOWEST} and ${below}`);
}

/** The first port of the kernel's ephemeral range (Linux), or IANA's 49152 elsewhere. */
function ephemeralStart(): number {
  try {
    const start = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0],
    );
    return start > LOWEST + 1_000 ? start : 49_152;
  } catch {
    return 49_152;
  }
}

function listenable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}
