/**
 * The status page: one self-contained HTML document (inline CSS and vanilla JS, no external assets, no
 * build step). It polls `./status` (every 2 s, `?refresh=<ms>` to change) and renders with DOM nodes and
 * textContent only, so names and errors from upstreams can never inject markup. Elements carry stable
 * data attributes (`data-upstream`, `data-tool`, `data-breaker`, `data-breaker-state`, `data-alert`)
 * for people's scripts and browser tests.
 */

export const STATUS_PAGE_CSP =
  "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toolgate status</title>
<style>
  :root {
    --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #667085; --line: #e4e7ec;
    --ok: #12805c; --ok-bg: #e3f6ee; --warn: #a15c00; --warn-bg: #fff3dc; --bad: #b42318; --bad-bg: #fde8e7;
    --idle: #475467; --idle-bg: #eef0f3; --accent: #3556d4;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0f1218; --panel: #171b23; --text: #e6e9ef; --muted: #98a2b3; --line: #2a303c;
      --ok: #4ade9b; --ok-bg: #113226; --warn: #f5b84d; --warn-bg: #3a2a10; --bad: #ff8178; --bad-bg: #3d1715;
      --idle: #b0b8c6; --idle-bg: #242a35; --accent: #8ea6ff;
    }
  }
  * { box-sizing: border-box; }
  body { margin: 0; background: var(--bg); color: var(--text);
    font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 8px 24px; padding: 18px 28px;
    border-bottom: 1px solid var(--line); background: var(--panel); }
  header h1 { margin: 0; font-size: 19px; font-weight: 650; }
  header .meta { color: var(--muted); font-size: 13px; }
  header .live { margin-left: auto; color: var(--muted); font-size: 13px; }
  header .live::before { content: ""; display: inline-block; width: 8px; height: 8px; margin-right: 6px;
    border-radius: 50%; background: var(--ok); }
  header .live.stale::before { background: var(--bad); }
  main { max-width: 1280px; margin: 0 auto; padding: 20px 28px 48px; display: grid; gap: 20px; }
  .summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px; }
  .card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
  .card.bad .value { color: var(--bad); }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
  section > h2 { display: flex; align-items: center; gap: 12px; margin: 0; padding: 12px 16px; font-size: 15px;
    font-weight: 650; border-bottom: 1px solid var(--line); }
  section > h2 .count { color: var(--muted); font-weight: 500; }
  section > h2 input { margin-left: auto; font: inherit; font-weight: 400; padding: 4px 10px; width: 220px;
    border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text); }
  .scroll { overflow-x: auto; }
  table { width: 100%; border-collapse: collapse; }
  th, td { padding: 8px 16px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; }
  tr:last-child td { border-bottom: none; }
  th { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.error { white-space: normal; color: var(--bad); max-width: 460px; word-break: break-word; }
  td .desc { display: block; color: var(--muted); font-size: 12px; white-space: normal; max-width: 420px; }
  code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
  .badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
  .ok { color: var(--ok); background: var(--ok-bg); }
  .warn { color: var(--warn); background: var(--warn-bg); }
  .bad { color: var(--bad); background: var(--bad-bg); }
  .idle { color: var(--idle); background: var(--idle-bg); }
  .rate.bad, .rate.warn { background: none; font-weight: 600; }
  .empty { padding: 14px 16px; color: var(--muted); }
  .alerts { list-style: none; margin: 0; padding: 0; }
  .alerts li { display: grid; grid-template-columns: auto 1fr auto; gap: 12px; align-items: baseline;
    padding: 9px 16px; border-bottom: 1px solid var(--line); }
  .alerts li:last-child { border-bottom: none; }
  .alerts time { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  #firing:empty { display: none; }
  #firing { border-color: var(--bad); }
  #firing h2 { color: var(--bad); }
  .grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
  @media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } main { padding: 16px; } }
</style>
</head>
<body>
<header>
  <h1 id="service">toolgate</h1>
  <span class="meta" id="window"></span>
  <span class="live stale" id="updated">connecting…</span>
</header>
<main>
  <div class="summary" id="summary"></div>
  <section id="firing"></section>
  <section>
    <h2>Upstreams <span class="count" id="upstream-count"></span></h2>
    <div class="scroll"><table id="upstreams">
      <thead><tr><th>Upstream</th><th>State</th><th>Transport</th><th class="num">Tools</th><th class="num">Restarts</th><th>Last error</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Tools <span class="count" id="tool-count"></span><input id="filter" type="search" placeholder="Filter tools" aria-label="Filter tools"></h2>
    <div class="scroll"><table id="tools">
      <thead><tr><th>Tool</th><th>Upstream</th><th class="num">Calls</th><th class="num">Errors</th><th class="num">Error rate</th><th class="num">Tool errors</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th><th class="num">In flight</th><th class="num">Queued</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <div class="grid2">
    <section>
      <h2>Circuit breakers <span class="count" id="breaker-count"></span></h2>
      <div class="scroll"><table id="breakers">
        <thead><tr><th>Breaker</th><th>State</th><th>Next trial</th></tr></thead>
        <tbody></tbody>
      </table></div>
    </section>
    <section>
      <h2>Recent alerts</h2>
      <ul class="alerts" id="recent"></ul>
    </section>
  </div>
</main>
<script>
"use strict";
(function () {
  var params = new URLSearchParams(location.search);
  var refreshMs = Math.max(250, Number(params.get("refresh")) || 2000);
  var filter = document.getElementById("filter");
  var last = null;

  function h(tag, attrs) {
    var el = document.createElement(tag);
    for (var key in attrs || {}) {
      var value = attrs[key];
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") el.textContent = String(value);
      else if (key === "class") el.className = value;
      else el.setAttribute(key, String(value));
    }
    var children = Array.prototype.slice.call(arguments, 2).flat();
    children.forEach(function (child) {
      if (child === null || child === undefined) return;
      el.appendChild(typeof child === "object" ? child : document.createTextNode(String(child)));
    });
    return el;
  }
  function fill(tbody, rows, columns, emptyText) {
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [h("tr", null, h("td", { class: "empty", colspan: columns, text: emptyText }))]);
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    if (v >= 10000) return (v / 1000).toFixed(1) + " s";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    return (v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 1 : 2)) + " ms";
  }
  function pct(v) { return (v * 100).toFixed(v >= 0.1 || v === 0 ? 0 : 1) + "%"; }
  function duration(msLeft) {
    var s = Math.max(0, Math.round(msLeft / 1000));
    if (s < 60) return s + "s";
    return Math.floor(s / 60) + "m" + (s % 60 ? " " + (s % 60) + "s" : "");
  }
  function clock(iso) { return new Date(iso).toLocaleTimeString(); }
  var upstreamTone = { ready: "ok", connecting: "warn", down: "bad", stopped: "idle" };
  var breakerTone = { closed: "ok", halfOpen: "warn", open: "bad" };
  var breakerText = { closed: "closed", halfOpen: "half-open", open: "open" };

  function card(label, value, bad, id) {
    return h("div", { class: "card" + (bad ? " bad" : ""), id: id }, h("div", { class: "label", text: label }), h("div", { class: "value", text: value }));
  }

  function render(s) {
    document.getElementById("service").textContent = s.service.name + (s.service.version ? " " + s.service.version : "");
    document.title = s.service.name + " status";
    document.getElementById("window").textContent = s.statsWindowMs ? "tool numbers over the last " + duration(s.statsWindowMs) : "";
    var up = s.upstreams.filter(function (u) { return u.state === "ready"; }).length;
    var open = s.breakers.filter(function (b) { return b.state === "open"; }).length;
    var calls = 0, errors = 0, inFlight = 0, queued = 0;
    s.tools.forEach(function (t) { calls += t.calls; errors += t.errors; inFlight += t.inFlight; queued += t.queued; });
    document.getElementById("summary").replaceChildren(
      card("Upstreams up", up + " / " + s.upstreams.length, up < s.upstreams.length, "sum-upstreams"),
      card("Tools", String(s.tools.length), false, "sum-tools"),
      card("Calls", String(calls), false, "sum-calls"),
      card("Error rate", calls ? pct(errors / calls) : "–", calls > 0 && errors / calls > 0.05, "sum-errors"),
      card("In flight / queued", inFlight + " / " + queued, false, "sum-load"),
      card("Breakers open", String(open), open > 0, "sum-breakers"),
      card("Alerts firing", String(s.alerts.active.length), s.alerts.active.length > 0, "sum-alerts")
    );

    var firing = document.getElementById("firing");
    if (s.alerts.active.length) {
      firing.replaceChildren(h("h2", { text: "Alerts firing" }), h("ul", { class: "alerts" }, alertItems(s.alerts.active)));
    } else firing.replaceChildren();

    document.getElementById("upstream-count").textContent = String(s.upstreams.length);
    fill(document.querySelector("#upstreams tbody"), s.upstreams.map(function (u) {
      return h("tr", { "data-upstream": u.name, "data-state": u.state },
        h("td", null, h("code", { text: u.name })),
        h("td", null, h("span", { class: "badge " + (upstreamTone[u.state] || "idle"), text: u.state })),
        h("td", { text: u.transport || "" }),
        h("td", { class: "num", text: u.tools === undefined ? "" : u.tools }),
        h("td", { class: "num", text: u.restarts }),
        h("td", { class: "error", text: u.state === "ready" ? "" : (u.lastError || "") }));
    }), 6, "No upstreams configured.");

    document.getElementById("tool-count").textContent = String(s.tools.length);
    renderTools(s.tools);

    document.getElementById("breaker-count").textContent = String(s.breakers.length);
    fill(document.querySelector("#breakers tbody"), s.breakers.map(function (b) {
      var next = b.state === "open" && b.nextAttemptAt ? duration(Date.parse(b.nextAttemptAt) - Date.now()) : "";
      return h("tr", { "data-breaker": b.id, "data-breaker-state": b.state },
        h("td", null, h("code", { text: b.id })),
        h("td", null, h("span", { class: "badge " + (breakerTone[b.state] || "idle"), text: breakerText[b.state] || b.state })),
        h("td", { text: next ? "in " + next : "" }));
    }), 3, "No breaker has seen a call yet.");

    var recent = document.getElementById("recent");
    recent.replaceChildren.apply(recent, s.alerts.recent.length ? alertItems(s.alerts.recent) : [h("li", { class: "empty", text: "No alerts." })]);
  }

  function alertItems(alerts) {
    return alerts.map(function (a) {
      var resolved = a.state === "resolved";
      return h("li", { "data-alert": a.id, "data-alert-state": a.state },
        h("span", { class: "badge " + (resolved ? "ok" : a.severity === "critical" ? "bad" : "warn"), text: resolved ? "resolved" : a.severity }),
        h("span", { text: a.message }),
        h("time", { datetime: resolved ? a.resolvedAt : a.firedAt, text: clock(resolved ? a.resolvedAt : a.firedAt) }));
    });
  }

  function renderTools(tools) {
    var q = filter.value.trim().toLowerCase();
    var shown = tools.filter(function (t) { return !q || t.name.toLowerCase().indexOf(q) >= 0 || t.upstream.toLowerCase().indexOf(q) >= 0; });
    fill(document.querySelector("#tools tbody"), shown.map(function (t) {
      var tone = t.calls === 0 ? "" : t.errorRate >= 0.2 ? "bad" : t.errorRate > 0 ? "warn" : "";
      return h("tr", { "data-tool": t.name, "data-upstream": t.upstream },
        h("td", null, h("code", { text: t.name }), t.description ? h("span", { class: "desc", text: t.description }) : null),
        h("td", { text: t.upstream }),
        h("td", { class: "num", "data-field": "calls", text: t.calls }),
        h("td", { class: "num", "data-field": "errors", text: t.errors }),
        h("td", { class: "num rate " + tone, "data-field": "errorRate", text: t.calls ? pct(t.errorRate) : "–" }),
        h("td", { class: "num", "data-field": "toolErrors", text: t.toolErrors }),
        h("td", { class: "num", "data-field": "p50", text: ms(t.p50Ms) }),
        h("td", { class: "num", "data-field": "p95", text: ms(t.p95Ms) }),
        h("td", { class: "num", "data-field": "p99", text: ms(t.p99Ms) }),
        h("td", { class: "num", "data-field": "inFlight", text: t.inFlight }),
        h("td", { class: "num", "data-field": "queued", text: t.queued }));
    }), 11, q ? "No tool matches." : "The catalog is empty.");
  }

  filter.addEventListener("input", function () { if (last) renderTools(last.tools); });

  var updated = document.getElementById("updated");
  function poll() {
    fetch("./status", { cache: "no-store", headers: { accept: "application/json" } })
      .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
      .then(function (s) {
        last = s;
        render(s);
        updated.textContent = "updated " + clock(s.generatedAt);
        updated.className = "live";
        document.body.setAttribute("data-ready", "true");
      })
      .catch(function (err) {
        updated.textContent = "cannot reach the gateway (" + err.message + ")";
        updated.className = "live stale";
      })
      .finally(function () { setTimeout(poll, refreshMs); });
  }
  poll();
})();
</script>
</body>
</html>
`;
