/**
 * The status page in a real browser (Debian's Chromium through playwright-core): it loads while calls run,
 * lists the tools with their numbers, and shows a breaker turning open. Saves a screenshot to
 * test/artifacts/status-page.png.
 */
import { mkdirSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Harness, harness } from "../unit/telemetry/harness.ts";
import {
  startTracedServer,
  startWiredGateway,
  type TracedServer,
  type WiredGateway,
} from "../unit/telemetry/wired-gateway.ts";

const CHROMIUM = "/usr/bin/chromium";
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
const BREAKER = "tool:traced__boom";

let upstream: TracedServer;
let gateway: WiredGateway;
let h: Harness;
let browser: Browser;
let page: Page;

beforeAll(async () => {
  upstream = await startTracedServer();
  h = harness({}, { tracing: false });
  gateway = await startWiredGateway(
    {
      mcpServers: { traced: { type: "http", url: upstream.url } },
      defaults: { breaker: { enabled: false } },
      upstreams: {
        traced: {
          tools: {
            boom: {
              retry: { maxAttempts: 1 },
              breaker: { enabled: true, scope: "tool", volumeThreshold: 2, resetTimeoutMs: 60_000 },
            },
          },
        },
      },
    },
    h.telemetry,
  );
  await gateway.ready(["traced__echo", "traced__boom"]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
}, 30_000);

afterAll(async () => {
  await browser?.close();
  await gateway?.stop();
  await upstream?.close();
  await h?.telemetry.shutdown();
});

const cell = (tool: string, field: string) =>
  page.locator(`tr[data-tool="${tool}"] td[data-field="${field}"]`);

describe("the status page", () => {
  it("lists the upstream and every tool of the catalog", async () => {
    await page.goto(`${gateway.base}/ui?refresh=200`);
    await page.waitForSelector("body[data-ready]");
    await expect
      .poll(() => page.locator('#upstreams tr[data-upstream="traced"]').getAttribute("data-state"))
      .toBe("ready");
    for (const tool of ["traced__echo", "traced__flaky", "traced__boom", "traced__hang"]) {
      expect(await page.locator(`tr[data-tool="${tool}"]`).count(), tool).toBe(1);
    }
    expect(await page.locator("#sum-tools .value").textContent()).toBe("4");
  });

  it("updates the numbers while calls run", async () => {
    await Promise.all(Array.from({ length: 5 }, () => gateway.call("traced__echo")));
    await expect.poll(() => cell("traced__echo", "calls").textContent()).toBe("5");
    expect(await cell("traced__echo", "errorRate").textContent()).toBe("0%");
    expect(await cell("traced__echo", "p50").textContent()).toMatch(/ms$/);
  });

  it("shows a breaker turning open", async () => {
    await gateway.call("traced__boom");
    const row = page.locator(`tr[data-breaker="${BREAKER}"]`);
    await expect.poll(() => row.getAttribute("data-breaker-state")).toBe("closed");
    await gateway.call("traced__boom");
    await expect.poll(() => row.getAttribute("data-breaker-state")).toBe("open");
    expect(await row.locator("td").nth(2).textContent()).toMatch(/^in (\d+m)? ?(\d+s)?$/);
    await expect.poll(() => cell("traced__boom", "errorRate").textContent()).toBe("100%");
    expect(await page.locator("#sum-breakers .value").textContent()).toBe("1");

    h.telemetry.alerts.evaluate(gateway.view);
    const alert = page.locator(`#firing li[data-alert="breakerOpen:${BREAKER}"]`);
    await expect.poll(() => alert.count()).toBe(1);
    expect(await alert.textContent()).toContain(`circuit breaker "${BREAKER}" is open`);

    mkdirSync("test/artifacts", { recursive: true });
    await page.screenshot({ path: "test/artifacts/status-page.png", fullPage: true });
  });

  it("filters the tools table", async () => {
    await page.fill("#filter", "boom");
    expect(await page.locator("#tools tbody tr[data-tool]").count()).toBe(1);
    await page.fill("#filter", "");
    expect(await page.locator("#tools tbody tr[data-tool]").count()).toBe(4);
  });
});
