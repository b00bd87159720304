/**
 * The upstream Streamable HTTP client transport alone, without the gateway around it: CPU per tools/call sent
 * and answered, of this process and (with --upstream-pid) of the upstream, in alternating windows of:
 *   lean        toolgate's transport (src/upstreams/http-transport.ts, on its HTTP/1.1 client src/upstreams/http1.ts)
 *   sdk         the SDK v1 StreamableHTTPClientTransport on Node's fetch (what a direct SDK client does)
 *   sdk+shim    the same SDK transport over toolgate's former fetch shim (src/upstreams/http-client.ts)
 *   lean+progress  the lean one asking for progress on every call (see --progress)
 *   raw-node    one bare exchange per call: node:http request() + keep-alive Agent, body read as text
 *   raw-undici  the same exchange on undici's Pool.request() (the engine under Node's fetch)
 *   raw-socket  the same exchange written and read by hand on kept-alive net.Sockets (Content-Length
 *               answers only): the floor under any HTTP client library
 *   raw-http1   the same exchange on toolgate's HTTP/1.1 client (src/upstreams/http1.ts), body read as text
 * The raw pair bounds what any transport on either HTTP client can cost. Run it pinned to one CPU and the
 * upstream to another:
 *
 *   taskset -c 1 node bench/upstream-echo.ts --http 0          (prints {"url": ...})
 *   taskset -c 0 node bench/http-transport.ts --url URL --upstream-pid PID --concurrency 1,16 \
 *       --duration-ms 3000 --reps 3 [--only lean,sdk] [--progress]
 *
 * `--progress` asks for progress (`_meta.progressToken`) on every call of every transport, as the gateway
 * does when a timeout policy listens for activity; `lean+progress` does so for the lean transport alone. Prints one JSON line per window: transport, concurrency, calls, µs of CPU per
 * call here and upstream, calls per second.
 */
import http from "node:http";
import net from "node:net";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { Pool } from "undici";
import { upstreamFetch } from "../src/upstreams/http-client.ts";
import { HttpClientTransport } from "../src/upstreams/http-transport.ts";
import { Http1Target, request as http1Request, RequestHead } from "../src/upstreams/http1.ts";
import { benchCli } from "./lib/cli.ts";
import { sample } from "./lib/proc-stats.ts";

const cli = benchCli(import.meta.url, {
  url: { type: "string" },
  "upstream-pid": { type: "string" },
  concurrency: { type: "string", default: "1,16" },
  "duration-ms": { type: "string", default: "3000" },
  "warmup-ms": { type: "string", default: "1000" },
  reps: { type: "string", default: "3" },
  only: { type: "string" },
  progress: { type: "boolean", default: false },
});
const { values } = cli;
const url = cli.url("url") ?? cli.fail("--url is required");
const durationMs = cli.whole("duration-ms");
const warmupMs = cli.whole("warmup-ms", 0);
const upstreamPid = cli.whole("upstream-pid");
const reps = cli.whole("reps");
const text = "x".repeat(32);

type Call = () => Promise<void>;
interface Connected {
  call: Call;
  close(): Promise<void>;
}

const transports: Record<string, () => Transport> = {
  lean: () => new HttpClientTransport(url, { fetch: upstreamFetch }),
  sdk: () => new StreamableHTTPClientTransport(url),
  "sdk+shim": () => new StreamableHTTPClientTransport(url, { fetch: upstreamFetch }),
};

/** A transport with an initialized session, and a way to call echo over it. */
async function connect(make: () => Transport, progress: boolean): Promise<Connected> {
  const transport = make();
  const waiting = new Map<number | string, () => void>();
  transport.onmessage = (message: JSONRPCMessage) => {
    if ("id" in message && !("method" in message)) waiting.get(message.id as number)?.();
  };
  await transport.start();
  let next = 0;
  const request = (method: string, params: Record<string, unknown>) =>
    new Promise<void>((resolve, reject) => {
      const id = ++next;
      waiting.set(id, () => {
        waiting.delete(id);
        resolve();
      });
      const sent = progress ? { ...params, _meta: { progressToken: id } } : params;
      transport.send({ jsonrpc: "2.0", id, method, params: sent }).catch(reject);
    });
  await request("initialize", {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "bench", version: "0" },
  });
  (transport as { setProtocolVersion?(v: string): void }).setProtocolVersion?.("2025-11-25");
  await transport.send({ jsonrpc: "2.0", method: "notifications/initialized" });
  const call = () => request("tools/call", { name: "echo", arguments: { text } });
  return { call, close: () => transport.close() };
}

/** A session opened by the lean transport, then bare POSTs on it: the HTTP client's own cost per exchange. */
async function raw(kind: "node" | "undici" | "socket" | "http1"): Promise<Connected> {
  const session = new HttpClientTransport(url, { fetch: upstreamFetch });
  session.onmessage = () => {};
  await session.start();
  await session.send({
    jsonrpc: "2.0",
    id: 0,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "bench", version: "0" } },
  });
  session.setProtocolVersion("2025-11-25");
  const headers = {
    "mcp-session-id": session.sessionId as string,
    "mcp-protocol-version": "2025-11-25",
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
  };
  let next = 0;
  const body = () =>
    JSON.stringify({
      jsonrpc: "2.0",
      id: ++next,
      method: "tools/call",
      params: { name: "echo", arguments: { text } },
    });
  if (kind === "socket") {
    const head = `POST ${url.pathname} HTTP/1.1\r\nhost: ${url.host}\r\n${Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("")}content-length: `;
    const idle: net.Socket[] = [];
    const all: net.Socket[] = [];
    const exchange = (socket: net.Socket, payload: string) =>
      new Promise<string>((resolve, reject) => {
        let got = "";
        const onData = (chunk: string) => {
          got += chunk;
          const end = got.indexOf("\r\n\r\n");
          if (end === -1) return;
          const match = /\r\ncontent-length: *(\d+)/i.exec(got.slice(0, end));
          if (!match) return reject(new Error("raw-socket reads Content-Length answers only"));
          if (Buffer.byteLength(got) - end - 4 < Number(match[1])) return;
          socket.off("data", onData);
          resolve(got.slice(end + 4));
        };
        socket.on("data", onData);
        socket.write(`${head}${Buffer.byteLength(payload)}\r\n\r\n${payload}`);
      });
    return {
      call: async () => {
        let socket = idle.pop();
        if (!socket) {
          socket = net.connect(Number(url.port), url.hostname);
          socket.setEncoding("utf8");
          socket.setNoDelay(true);
          all.push(socket);
        }
        const answer = await exchange(socket, body());
        idle.push(socket);
        if (!answer.includes('"result"')) throw new Error(`unexpected answer ${answer}`);
      },
      close: async () => {
        for (const socket of all) socket.destroy();
        await session.close();
      },
    };
  }
  if (kind === "http1") {
    const head = new RequestHead(new Http1Target(url), "POST", headers);
    return {
      call: () =>
        new Promise<void>((resolve, reject) => {
          http1Request(
            head,
            body(),
            (res) =>
              res
                .text(Number.POSITIVE_INFINITY)
                .then((answer) =>
                  answer.includes('"result"') ? resolve() : reject(new Error(`unexpected answer ${answer}`)),
                ),
            reject,
          );
        }),
      close: () => session.close(),
    };
  }
  if (kind === "undici") {
    const pool = new Pool(url.origin, { connections: 64, pipelining: 1 });
    const path = url.pathname;
    return {
      call: async () => {
        const res = await pool.request({ path, method: "POST", headers, body: body() });
        const answer = await res.body.text();
        if (!answer.includes('"result"')) throw new Error(`unexpected answer ${answer}`);
      },
      close: async () => {
        await pool.close();
        await session.close();
      },
    };
  }
  const agent = new http.Agent({ keepAlive: true });
  const options = {
    hostname: url.hostname,
    port: url.port,
    path: url.pathname,
    method: "POST",
    headers,
    agent,
  };
  return {
    call: () =>
      new Promise<void>((resolve, reject) => {
        const req = http.request(options, (res) => {
          let answer = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            answer += chunk;
          });
          res.on("end", () =>
            answer.includes('"result"') ? resolve() : reject(new Error(`unexpected answer ${answer}`)),
          );
        });
        req.on("error", reject);
        req.end(body());
      }),
    close: async () => {
      agent.destroy();
      await session.close();
    },
  };
}

const makers: Record<string, () => Promise<Connected>> = {
  ...Object.fromEntries(
    Object.entries(transports).map(([name, make]) => [name, () => connect(make, values.progress)]),
  ),
  "lean+progress": () => connect(transports.lean as () => Transport, true),
  "raw-node": () => raw("node"),
  "raw-undici": () => raw("undici"),
  "raw-socket": () => raw("socket"),
  "raw-http1": () => raw("http1"),
};
const chosen = values.only ? values.only.split(",") : Object.keys(makers);
for (const name of chosen) {
  if (!(name in makers)) cli.fail(`--only takes ${Object.keys(makers).join(", ")}, not "${name}"`);
}

async function window(call: Call, concurrency: number, ms: number) {
  let calls = 0;
  const end = performance.now() + ms;
  const cpu = process.cpuUsage();
  const upstream = upstreamPid === undefined ? undefined : sample([upstreamPid]).cpuMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await call();
        calls++;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  const upstreamMs = upstream === undefined ? undefined : sample([upstreamPid as number]).cpuMs - upstream;
  return { calls, cpuUs: used.user + used.system, upstreamMs };
}

for (const concurrency of cli.wholeList("concurrency")) {
  for (let rep = 0; rep < reps; rep++) {
    for (const name of chosen) {
      const make = makers[name];
      if (!make) throw new Error(`unknown transport ${name}; one of ${Object.keys(makers).join(", ")}`);
      const { call, close } = await make();
      await window(call, concurrency, warmupMs);
      const { calls, cpuUs, upstreamMs } = await window(call, concurrency, durationMs);
      await close();
      const line = {
        transport: name,
        concurrency,
        rep,
        calls,
        cpuUsPerCall: Math.round(cpuUs / calls),
        ...(upstreamMs !== undefined && { upstreamUsPerCall: Math.round((upstreamMs * 1000) / calls) }),
        callsPerSec: Math.round((calls * 1000) / durationMs),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
  }
}
