/**
 * The status page of the real gateway binary (`toolgate serve --http 0`) in a real browser (Debian's
 * Chromium through playwright-core) at 1400 px: it loads while calls run through the SDK client, takes live
 * updates pushed over Server-Sent Events (no polling), lists every tool with its numbers, totals and
 * last-hour charts (half-second points here), fits the width, renders descriptions as text, and shows a
 * breaker turning open and its alert firing. Then the second wave's work: a task the gateway runs, a call
 * held for approval that a click on Approve releases to its waiting client, an OAuth upstream that needs
 * authorization (with the command to run) and a per-principal one's "connect your account" link followed
 * through consent in the browser, against a real authorization server (oidc-provider) and a protected MCP
 * server. Saves screenshots to test/artifacts.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { CreateTaskResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthServer, type ProtectedMcp, startAuthServer, startProtectedMcp } from "../fixtures/oauth.ts";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  ROOT,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
/** Installed by .ci/run; elsewhere the file skips, as the Redis and promtool tests do without their servers. */
const HAS_CHROMIUM = existsSync(CHROMIUM);
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const BREAKER = "tool:faults__fail";
/** `fail` fails this many calls (-32603) before it would succeed: always, for this test. */
const ALWAYS = { times: 1_000_000 };

let gw: GatewayProcess;
let as: AuthServer;
let mcp: ProtectedMcp;
let client: Client;
let tools: string[];
let browser: Browser;
let page: Page;
const requests: string[] = [];

/** Resolves once the page has rendered again: a later live update, not a "cannot reach" notice. */
async function nextLiveUpdate(on: Page): Promise<void> {
  const updated = on.locator("#updated");
  const before = await updated.textContent();
  await expect
    .poll(
      async () => {
        const now = await updated.textContent();
        return now !== before && now?.startsWith("live");
      },
      { timeout: 15_000 },
    )
    .toBe(true);
}

beforeAll(async () => {
  let resource = "";
  as = await startAuthServer({ resource: () => resource });
  mcp = await startProtectedMcp(() => as.issuer);
  resource = mcp.url;
  gw = await spawnGateway({
    mcpServers: {
      faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] },
      // Nobody has consented: both wait for authorization.
      locked: { url: mcp.url, auth: { oauth: {} } },
      mine: { url: mcp.url, auth: { oauth: { perPrincipal: true } } },
    },
    defaults: { breaker: { enabled: false } },
    // Without authentication the caller is "anonymous" (loopback only); it decides held calls here.
    approvals: { operators: ["anonymous"] },
    upstreams: {
      faults: {
        tools: {
          hang: { task: "always" },
          echo: { approval: "always" },
          fail: {
            retry: { maxAttempts: 1 },
            breaker: { enabled: true, scope: "tool", volumeThreshold: 2, resetTimeoutMs: 60_000 },
          },
        },
      },
    },
    // Alerts evaluated often enough to see the breaker's alert fire during the test.
    telemetry: { metrics: { process: false }, alerts: { intervalMs: 250 }, history: { stepMs: 500 } },
  });
  client = await connectClient("http", { url: gw.url });
  await eventually(async () => {
    tools = (await client.listTools()).tools.map((t) => t.name);
    return tools.includes("faults__fail");
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  page.on("request", (request) => requests.push(new URL(request.url()).pathname));
  // Opened once, here, so each test below can run on its own (`-t`): they all look at this one live page.
  await page.goto(`${gw.base}/?refresh=250`);
  await page.waitForSelector("body[data-ready]");
});

afterAll(async () => {
  await browser?.close();
  await client?.close();
  await gw?.stop();
  await mcp?.close();
  await as?.close();
});

const cell = (tool: string, field: string) => page.locator(`tr[data-tool="${tool}"] [data-field="${field}"]`);

describe.skipIf(!HAS_CHROMIUM)("the status page of the gateway binary", () => {
  it("lists the upstream and every tool of the catalog", async () => {
    await expect
      .poll(() => page.locator('#upstreams tr[data-upstream="faults"]').getAttribute("data-state"))
      .toBe("ready");
    expect(await page.locator("#tools tbody tr[data-tool]").count()).toBe(tools.length);
    for (const tool of tools) expect(await page.locator(`tr[data-tool="${tool}"]`).count(), tool).toBe(1);
    expect(await page.locator("#sum-tools .value").textContent()).toBe(String(tools.length));
  });

  it("shows calls in flight while they run, then their numbers", async () => {
    // Held upstream until the page has shown them in flight.
    const running = Promise.all(
      Array.from({ length: 3 }, () =>
        client.callTool({ name: "faults__slow", arguments: { ms: 0, hold: "status-page" } }),
      ),
    );
    await expect.poll(() => cell("faults__slow", "inFlight").textContent()).toBe("3");
    await client.callTool({ name: "faults__release", arguments: { hold: "status-page" } });
    const results = await running;
    expect(results.map((r) => r.isError)).toEqual([undefined, undefined, undefined]);
    await expect.poll(() => cell("faults__slow", "calls").textContent()).toBe("3");
    expect(await cell("faults__slow", "inFlight").textContent()).toBe("0");
    expect(await cell("faults__slow", "errorRate").textContent()).toBe("0%");
    expect(await cell("faults__slow", "p50").textContent()).toMatch(/\d(\.\d+)? ?(ms|s)$/);
    expect(await cell("faults__slow", "totalCalls").textContent()).toBe("3");
  });

  it("draws the last hour as inline SVG charts, per tool and for the gateway", async () => {
    // Calls of its own, on a tool no other test calls, so the test stands alone.
    for (let n = 0; n < 3; n++) await client.callTool({ name: "faults__structured", arguments: { n } });
    for (const id of [
      "chart-calls",
      "chart-errors",
      "chart-p95",
      "chart-load",
      "chart-cpu",
      "chart-memory",
    ]) {
      expect(await page.locator(`#trends [data-chart="${id}"] svg.chart`).count(), id).toBe(1);
    }
    expect(await page.locator('#trends [data-chart="chart-calls"] path.line').count()).toBe(1);
    const charts = page.locator('tr[data-tool="faults__structured"] svg.chart');
    await expect.poll(() => charts.count()).toBe(4);
    // The three calls close into a point: the calls chart gets a peak above zero.
    await expect.poll(async () => Number(await charts.first().getAttribute("data-max"))).toBeGreaterThan(0);
    await expect
      .poll(async () =>
        Number(await page.locator('#trends [data-chart="chart-memory"] svg').getAttribute("data-max")),
      )
      .toBeGreaterThan(1_000_000);
    expect(await page.locator("#sum-calls .sub").textContent()).toMatch(/^\d+ since start$/);
  });

  it("is pushed over Server-Sent Events, without polling", async () => {
    expect(requests).toContain("/status/stream");
    expect(requests.filter((p) => p === "/status")).toEqual([]);
    expect(requests.filter((p) => p === "/status/stream").length).toBe(1);
  });

  it("fits 1400 px: every column, In flight included, without a horizontal scrollbar", async () => {
    const fits = await page.evaluate(() => {
      const scroller = document.querySelector("#tools")?.parentElement as HTMLElement;
      const last = document.querySelector("#tools thead th:last-child") as HTMLElement;
      return {
        overflow: scroller.scrollWidth - scroller.clientWidth,
        right: last.getBoundingClientRect().right,
        width: window.innerWidth,
      };
    });
    expect(fits.overflow).toBeLessThanOrEqual(0);
    expect(fits.right).toBeLessThanOrEqual(fits.width);
  });

  it("stays readable at 1024 px: the tools table fits without its charts", async () => {
    await page.setViewportSize({ width: 1024, height: 900 });
    try {
      const overflow = await page.evaluate(() => {
        const scroller = document.querySelector("#tools")?.parentElement as HTMLElement;
        return scroller.scrollWidth - scroller.clientWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
      mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
      await page.screenshot({ path: join(ROOT, "test/artifacts/status-page-1024.png") });
    } finally {
      await page.setViewportSize({ width: 1400, height: 900 });
    }
  });

  it("renders tool descriptions as text, markdown code spans as code", async () => {
    const desc = page.locator('tr[data-tool="faults__echo"] .desc');
    expect(await desc.textContent()).toBe("Echoes text.");
    expect(await desc.locator("code").textContent()).toBe("text");
  });

  it("shows a breaker turning open and its alert firing", async () => {
    // The upstream's own JSON-RPC error passes through as a JSON-RPC error.
    await expect(client.callTool({ name: "faults__fail", arguments: ALWAYS })).rejects.toMatchObject({
      code: -32603,
    });
    const row = page.locator(`tr[data-breaker="${BREAKER}"]`);
    await expect.poll(() => row.getAttribute("data-breaker-state")).toBe("closed");

    await client.callTool({ name: "faults__fail", arguments: ALWAYS }).catch(() => {});
    await expect.poll(() => row.getAttribute("data-breaker-state")).toBe("open");
    expect(await row.locator("td").nth(2).textContent()).toMatch(/^in (\d+m)? ?(\d+s)?$/);
    const rejected = await client.callTool({ name: "faults__fail", arguments: ALWAYS });
    expect((rejected._meta?.["toolgate/error"] as { code?: string } | undefined)?.code).toBe("CircuitOpen");
    await expect.poll(() => cell("faults__fail", "calls").textContent()).toBe("3");
    expect(await cell("faults__fail", "errorRate").textContent()).toBe("100%");
    expect(await page.locator("#sum-breakers .value").textContent()).toBe("1");

    const alert = page.locator(`#firing li[data-alert="breakerOpen:${BREAKER}"]`);
    await expect.poll(() => alert.count()).toBe(1);
    expect(await alert.textContent()).toContain(`circuit breaker "${BREAKER}" is open`);

    mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "test/artifacts/status-page.png"), fullPage: true });
  });

  it("filters the tools table", async () => {
    await page.fill("#filter", "fail");
    const failing = tools.filter((t) => t.includes("fail"));
    expect(await page.locator("#tools tbody tr[data-tool]:visible").count()).toBe(failing.length);
    await page.fill("#filter", "");
    expect(await page.locator("#tools tbody tr[data-tool]:visible").count()).toBe(tools.length);
  });

  it("shows each upstream's protocol era, and what an OAuth upstream needs: a command, an account link", async () => {
    expect(
      await page.locator('#upstreams tr[data-upstream="faults"] [data-field="era"]').textContent(),
    ).toMatch(/^20(25-11-25|26-07-28)$/);
    const locked = page.locator('#upstreams tr[data-upstream="locked"]');
    await expect.poll(() => locked.getAttribute("data-needs-authorization")).toBe("true");
    expect(await locked.locator(".badge").textContent()).toBe("needs authorization");
    expect(await locked.locator('[data-field="authorize"] code').textContent()).toMatch(
      /^toolgate auth login locked --config \S+$/,
    );
    expect(await locked.locator('[data-field="connect"]').count()).toBe(0);
    // A per-principal upstream: each caller connects its own account, in the browser, from here.
    const mine = page.locator('#upstreams tr[data-upstream="mine"]');
    await expect.poll(() => mine.getAttribute("data-needs-authorization")).toBe("true");
    expect(await mine.locator('[data-field="authorize"]').textContent()).toContain(
      "No account connected yet",
    );
    const connect = mine.locator('a[data-field="connect"]');
    expect(await connect.textContent()).toBe("Connect your account");
    const href = new URL((await connect.getAttribute("href")) ?? "", page.url());
    expect(href.pathname).toBe("/oauth/upstreams/mine/authorize");
    const start = await page.request.get(href.toString(), { maxRedirects: 0 });
    expect(start.status()).toBe(302);
    expect(start.headers().location).toMatch(new RegExp(`^${as.issuer}/`));
    // The link survives the page's refreshes as the same element, so a click that straddles one still counts.
    // (Marked with a property: an attribute would make the row unequal to the next render's.)
    await connect.evaluate((a) => {
      (a as HTMLElement & { marked?: boolean }).marked = true;
    });
    await nextLiveUpdate(page);
    expect(await connect.evaluate((a) => (a as HTMLElement & { marked?: boolean }).marked)).toBe(true);
    // The whole flow in the browser: the link opens a tab, the authorization server (consenting at once
    // here) sends it back to the gateway's callback, and the upstream connects with that account.
    const [consent] = await Promise.all([page.context().waitForEvent("page"), connect.click()]);
    await expect
      .poll(() => consent.textContent("body"))
      .toMatch(/your account at upstream "mine" is connected; you can close this tab/);
    await consent.close();
    await expect.poll(() => mine.getAttribute("data-state")).toBe("ready");
    expect(await mine.getAttribute("data-needs-authorization")).toBeNull();
    expect(await mine.locator('[data-field="era"]').textContent()).toMatch(/^20(25-11-25|26-07-28)$/);
    expect(await mine.locator('a[data-field="connect"]').count()).toBe(1);
  });

  it("lists a running gateway task and a held call, and Approve releases the call to its client", async () => {
    const task = await client.request(
      { method: "tools/call", params: { name: "faults__hang", arguments: {}, task: {} } },
      CreateTaskResultSchema,
    );
    const taskRow = page.locator('#tasks tr[data-tool="faults__hang"]');
    await expect.poll(() => taskRow.count()).toBe(1);
    expect(await taskRow.getAttribute("data-task-phase")).toBe("working");
    expect(await taskRow.locator("td").nth(1).textContent()).toBe("anonymous");
    expect(await taskRow.locator('[data-field="age"]').textContent()).toMatch(/^\d+(s|m)/);
    expect(await page.locator("#sum-tasks .value").textContent()).toBe("1");

    // The SDK client cannot elicit, so the call waits for an operator.
    let settled = false;
    const held = client.callTool({ name: "faults__echo", arguments: { text: "approved by a click" } });
    void held.finally(() => {
      settled = true;
    });
    const heldRow = page.locator('#approvals tr[data-tool="faults__echo"]');
    await expect.poll(() => heldRow.count()).toBe(1);
    await expect
      .poll(() => heldRow.locator("td.args code").textContent())
      .toBe('{"text":"approved by a click"}');
    expect(await page.locator("#held").isVisible()).toBe(true);
    expect(settled).toBe(false);

    for (const width of [1400, 1024]) {
      await page.setViewportSize({ width, height: 900 });
      const overflow = await page.evaluate(() =>
        [...document.querySelectorAll<HTMLElement>(".scroll")].map((el) => el.scrollWidth - el.clientWidth),
      );
      expect(
        overflow.every((o) => o <= 0),
        `overflow at ${width} px: ${overflow}`,
      ).toBe(true);
      expect(
        await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth),
      ).toBeLessThanOrEqual(0);
      mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
      await page.screenshot({
        path: join(ROOT, `test/artifacts/status-page-work-${width}.png`),
        fullPage: true,
      });
    }

    await heldRow.locator('button[data-action="approve"]').click();
    const result = await held;
    expect(result.isError).toBeUndefined();
    expect(textOf(result)).toBe("approved by a click");
    await expect.poll(() => heldRow.count()).toBe(0);
    expect(await page.locator("#sum-approvals .value").textContent()).toBe("0");

    await client.experimental.tasks.cancelTask(task.task.taskId);
    await expect.poll(() => taskRow.count()).toBe(0);
    expect(await page.locator("#sum-tasks .value").textContent()).toBe("0");
    expect(await page.locator("#running").isHidden()).toBe(true);
    expect(await page.locator("#held").isHidden()).toBe(true);
  });
});

describe.skipIf(!HAS_CHROMIUM)("the status page with authentication on, signed in as an operator", () => {
  const OPS = "ops-status-key-0123456789abcdef";
  const ALICE = "alice-status-key-0123456789abcd";
  let authed: GatewayProcess;
  let alice: Client;
  let operator: Page;

  beforeAll(async () => {
    authed = await spawnGateway({
      mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
      upstreams: {
        faults: { tools: { work: { task: "always", lock: true }, echo: { approval: "always" } } },
      },
      security: {
        auth: {
          apiKeys: [
            { id: "ops", key: OPS },
            { id: "alice", key: ALICE },
          ],
        },
        operators: { principals: ["ops"] },
      },
      approvals: { operators: ["ops"] },
      telemetry: { metrics: { process: false } },
    });
    alice = new Client({ name: "alice", version: "1.0.0" });
    await alice.connect(
      new StreamableHTTPClientTransport(new URL(authed.url), {
        requestInit: { headers: { authorization: `Bearer ${ALICE}` } },
      }),
    );
    await eventually(async () => (await alice.listTools()).tools.some((t) => t.name === "faults__work"));
    // The browser answers the page's Basic challenge with the operator's key, as a person would.
    const context = await browser.newContext({
      viewport: { width: 1400, height: 900 },
      httpCredentials: { username: "ops", password: OPS },
    });
    operator = await context.newPage();
    await operator.goto(`${authed.base}/?refresh=250`);
    await operator.waitForSelector("body[data-ready]");
  });

  afterAll(async () => {
    await operator?.context().close();
    await alice?.close();
    await authed?.stop();
  });

  it("shows alice's tasks, one working and one waiting for the lock, without their handles", async () => {
    const tasks = await Promise.all(
      ["first", "second"].map((text) =>
        alice.request(
          {
            method: "tools/call",
            params: { name: "faults__work", arguments: { key: text, ms: 0, hold: "lock" }, task: {} },
          },
          CreateTaskResultSchema,
        ),
      ),
    );
    const rows = operator.locator('#tasks tr[data-tool="faults__work"]');
    await expect.poll(() => rows.count()).toBe(2);
    await expect
      .poll(async () =>
        (await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute("data-task-phase")))).sort(),
      )
      .toEqual(["waiting for lock", "working"]);
    expect(await rows.locator("td:nth-child(2)").allTextContents()).toEqual(["alice", "alice"]);
    const html = await operator.content();
    for (const { task } of tasks) expect(html).not.toContain(task.taskId);
    mkdirSync(join(ROOT, "test/artifacts"), { recursive: true });
    await operator.screenshot({ path: join(ROOT, "test/artifacts/status-page-operator.png") });
    await alice.callTool({ name: "faults__release", arguments: { hold: "lock" } });
    await expect.poll(() => rows.count()).toBe(0);
  });

  it("approves alice's held call with the operator's browser credentials", async () => {
    const call = alice.callTool({ name: "faults__echo", arguments: { text: "signed-in approval" } });
    const row = operator.locator('#approvals tr[data-tool="faults__echo"]');
    await expect.poll(() => row.locator("td.args code").count()).toBe(1);
    expect(await row.locator("td:nth-child(2)").textContent()).toBe("alice");
    // The row survives the page's refreshes as the same element, so a click that straddles one still counts.
    await row.evaluate((tr) => {
      (tr as HTMLElement).dataset.marked = "yes";
    });
    await nextLiveUpdate(operator);
    expect(await row.getAttribute("data-marked")).toBe("yes");
    await row.locator('button[data-action="approve"]').click();
    expect(textOf(await call)).toBe("signed-in approval");
    await expect.poll(() => row.count()).toBe(0);
  });
});
