/**
 * The adapter's HTTP client: node:http(s) with keep-alive pools, a response size cap, and cancellation by
 * AbortSignal (the socket is destroyed, so the API sees the request go away). Lighter per call than the
 * global fetch, whose Web streams and event targets cost more CPU than the rest of a call through toolgate.
 * Redirects are not followed: credentials must not travel to a host the config did not name.
 * Failures reject like fetch (`TypeError("fetch failed")` with the socket error as `cause`), or with the
 * signal's reason when aborted.
 */
import http from "node:http";
import https from "node:https";

export interface HttpRequest {
  method: string;
  headers: Record<string, string>;
  body: string | undefined;
  signal: AbortSignal;
  /** Bytes of body read at most; more and `body` is undefined (the rest is not read). */
  maxBytes: number;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer | undefined;
}

const agents = {
  http: new http.Agent({ keepAlive: true }),
  https: new https.Agent({ keepAlive: true }),
};

export function httpRequest(url: URL, init: HttpRequest, retried = false): Promise<HttpResponse> {
  const { signal } = init;
  if (signal.aborted) return Promise.reject(signal.reason);
  const secure = url.protocol === "https:";
  return new Promise<HttpResponse>((resolve, reject) => {
    let answered = false;
    const request = (secure ? https : http).request(
      url,
      { method: init.method, headers: init.headers, agent: secure ? agents.https : agents.http },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        let total = 0;
        const answer = (body: Buffer | undefined) => {
          done();
          resolve({
            status: res.statusCode ?? 502,
            statusText: res.statusMessage ?? "",
            headers: res.headers,
            body,
          });
        };
        if (Number(res.headers["content-length"] ?? 0) > init.maxBytes) {
          res.destroy();
          return answer(undefined);
        }
        res.on("data", (chunk: Buffer) => {
          total += chunk.length;
          if (total <= init.maxBytes) return void chunks.push(chunk);
          res.destroy();
          answer(undefined);
        });
        res.once("end", () => answer(Buffer.concat(chunks)));
        res.once("error", fail);
      },
    );
    const onAbort = () => request.destroy(signal.reason);
    function done(): void {
      signal.removeEventListener("abort", onAbort);
    }
    function fail(err: NodeJS.ErrnoException): void {
      done();
      if (signal.aborted) reject(signal.reason);
      // A pooled connection the server closed while idle: the request never reached it. Once more, afresh.
      else if (!answered && !retried && request.reusedSocket && err.code === "ECONNRESET") {
        resolve(httpRequest(url, init, true));
      } else reject(new TypeError("fetch failed", { cause: err }));
    }
    signal.addEventListener("abort", onAbort, { once: true });
    request.once("error", fail);
    request.end(init.body);
  });
}
