/**
 * The status page: one self-contained HTML document (inline CSS, vanilla JS and inline SVG charts; nothing
 * loaded from the network, no build step). Live: it listens to `./status/stream` (Server-Sent Events, every
 * 2 s, `?refresh=<ms>` to change) and falls back to polling `./status` without EventSource. It renders with
 * DOM nodes and textContent only, so names, descriptions and errors from upstreams can never inject markup
 * (descriptions' markdown code spans become <code> nodes, the rest of the syntax is dropped). Elements
 * carry stable data attributes (`data-upstream`, `data-tool`, `data-field`, `data-chart`, `data-breaker`,
 * `data-breaker-state`, `data-alert`, `data-task`, `data-approval`) for people's scripts and browser tests.
 *
 * Calls held for approval come with the stream (no arguments); when that list changes the page asks
 * `./approvals` once for their arguments, and its Approve / Deny buttons POST to `./approvals/ID/approve|deny`
 * with the credentials the browser sent for the page (only `approvals.operators` may decide). A per-principal
 * upstream (auth.oauth.perPrincipal) links to `./oauth/upstreams/NAME/authorize` to connect one's account.
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
    --idle: #475467; --idle-bg: #eef0f3; --accent: #3556d4; --accent-bg: rgba(53, 86, 212, .12); --second: #a15c00;
  }
  @media (prefers-color-scheme: dark) {
    :root {
      --bg: #0f1218; --panel: #171b23; --text: #e6e9ef; --muted: #98a2b3; --line: #2a303c;
      --ok: #4ade9b; --ok-bg: #113226; --warn: #f5b84d; --warn-bg: #3a2a10; --bad: #ff8178; --bad-bg: #3d1715;
      --idle: #b0b8c6; --idle-bg: #242a35; --accent: #8ea6ff; --accent-bg: rgba(142, 166, 255, .16); --second: #f5b84d;
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
  main { max-width: 1680px; margin: 0 auto; padding: 20px 28px 48px; display: grid; gap: 20px; }
  .summary { display: grid; grid-template-columns: repeat(auto-fit, minmax(128px, 1fr)); gap: 12px; }
  .trends { display: grid; grid-template-columns: repeat(auto-fit, minmax(200px, 1fr)); gap: 12px; }
  .trends:empty { display: none; }
  .card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 16px; min-width: 0; }
  .card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .value { font-size: 24px; font-weight: 650; margin-top: 2px; font-variant-numeric: tabular-nums; }
  .card .sub { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; }
  .card.bad .value { color: var(--bad); }
  .card.trend .value { font-size: 20px; }
  .card.trend .chart { display: block; width: 100%; height: 56px; margin-top: 6px; }
  .chart { width: 84px; height: 30px; flex: none; overflow: visible; }
  .chart .axis { stroke: var(--line); stroke-width: 1; vector-effect: non-scaling-stroke; }
  .chart .line { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; stroke-linejoin: round; stroke-linecap: round; }
  .chart .line.bad { stroke: var(--bad); }
  .chart .line.second { stroke: var(--second); stroke-dasharray: 3 2; }
  .chart .area { fill: var(--accent-bg); stroke: none; }
  .chart .area.bad { fill: var(--bad-bg); }
  .chart.none { display: inline-block; }
  section { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; }
  section > h2 { display: flex; align-items: center; gap: 12px; margin: 0; padding: 12px 16px; font-size: 15px;
    font-weight: 650; border-bottom: 1px solid var(--line); }
  section > h2 .count { color: var(--muted); font-weight: 500; }
  section > h2 input { margin-left: auto; font: inherit; font-weight: 400; padding: 4px 10px; width: 220px; max-width: 45%;
    border: 1px solid var(--line); border-radius: 6px; background: var(--bg); color: var(--text); }
  .scroll { overflow-x: auto; }
  table { width: 100%; border-collapse: collapse; }
  th, td { padding: 8px 12px; text-align: left; border-bottom: 1px solid var(--line); white-space: nowrap; vertical-align: top; }
  tr:last-child td { border-bottom: none; }
  th { color: var(--muted); font-size: 12px; font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.error { white-space: normal; color: var(--bad); max-width: 520px; word-break: break-word; }
  #tools td.tool { white-space: normal; min-width: 190px; max-width: 320px; }
  #tools td.tool code.name { word-break: normal; overflow-wrap: anywhere; }
  #tools td.upstream { color: var(--muted); }
  td .desc { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden;
    color: var(--muted); font-size: 12px; white-space: normal; margin-top: 2px; }
  td .desc code { font-size: 11.5px; padding: 0 3px; border-radius: 4px; background: var(--idle-bg); }
  .metric { display: flex; align-items: center; gap: 10px; }
  .metric .figures { display: grid; font-variant-numeric: tabular-nums; }
  .metric .big { font-weight: 650; font-size: 15px; }
  .metric small { color: var(--muted); font-size: 12px; white-space: normal; max-width: 150px; }
  code { font: 13px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
  .badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px; font-weight: 600; }
  .ok { color: var(--ok); background: var(--ok-bg); }
  .warn { color: var(--warn); background: var(--warn-bg); }
  .bad { color: var(--bad); background: var(--bad-bg); }
  .idle { color: var(--idle); background: var(--idle-bg); }
  .rate.bad, .rate.warn { background: none; }
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
  section[hidden] { display: none; }
  #held { border-color: var(--warn); }
  #held > h2 { color: var(--warn); }
  section > h2 .note { margin-left: auto; color: var(--muted); font-size: 12px; font-weight: 400; }
  td.wrap { white-space: normal; }
  td.details { white-space: normal; max-width: 520px; word-break: break-word; }
  .error-text { color: var(--bad); }
  td.args { white-space: normal; max-width: 560px; }
  td.args code { display: block; max-height: 6.2em; overflow: auto; font-size: 12px; white-space: pre-wrap; }
  td small, td .sub { display: block; color: var(--muted); font-size: 12px; white-space: normal; }
  td.actions { text-align: right; }
  button { font: inherit; font-size: 13px; font-weight: 600; padding: 4px 14px; margin-left: 6px; border-radius: 6px;
    border: 1px solid var(--line); background: var(--panel); color: var(--text); cursor: pointer; }
  button.approve { border-color: var(--ok); color: var(--ok); }
  button.deny { border-color: var(--bad); color: var(--bad); }
  button:disabled { opacity: .45; cursor: default; }
  a { color: var(--accent); }
  .decided { color: var(--muted); font-size: 12px; }
  .decided.bad { background: none; }
  @media (max-width: 1100px) { #tools .chart { display: none; } }
  @media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } main { padding: 16px; } header { padding: 14px 16px; } }
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
  <div class="trends" id="trends" aria-label="The gateway over the last hour"></div>
  <section id="firing"></section>
  <section id="held" hidden>
    <h2>Held for approval <span class="count" id="held-count"></span><span class="note" id="held-note"></span></h2>
    <div class="scroll"><table id="approvals">
      <thead><tr><th>Tool</th><th>Caller</th><th>Held for</th><th>Arguments</th><th class="num">Decision</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section id="running" hidden>
    <h2>Running tasks <span class="count" id="task-count"></span><span class="note" id="task-note"></span></h2>
    <div class="scroll"><table id="tasks">
      <thead><tr><th>Tool</th><th>Caller</th><th>Status</th><th>Age</th><th>Last change</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Upstreams <span class="count" id="upstream-count"></span></h2>
    <div class="scroll"><table id="upstreams">
      <thead><tr><th>Upstream</th><th>State</th><th>Transport</th><th>Protocol</th><th class="num">Tools</th><th class="num">Restarts</th><th>Details</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section>
    <h2>Tools <span class="count" id="tool-count"></span><input id="filter" type="search" placeholder="Filter tools" aria-label="Filter tools"></h2>
    <div class="scroll"><table id="tools">
      <thead><tr><th>Tool</th><th>Upstream</th><th>Calls</th><th>Errors</th><th>Latency</th><th>In flight / queued</th></tr></thead>
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
  var updated = document.getElementById("updated");
  var SVG = "http://www.w3.org/2000/svg";
  var last = null;
  var history = null;

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
  function svgEl(tag, attrs) {
    var el = document.createElementNS(SVG, tag);
    for (var key in attrs) el.setAttribute(key, String(attrs[key]));
    return el;
  }
  // Rows are patched in place: a row keeps its element, and a cell equal to the one shown (isEqualNode: same
  // elements, attributes and text) keeps its own. Rebuilt on every refresh, a link under a click whose press and
  // release straddle a refresh would be two different elements, and the browser would drop the click.
  function fill(tbody, rows, columns, emptyText) {
    if (!rows.length) rows = [h("tr", null, h("td", { class: "empty", colspan: columns, text: emptyText }))];
    var shown = Array.prototype.slice.call(tbody.children);
    var next = rows.map(function (tr, i) {
      var old = shown[i];
      return old && old.children.length === tr.children.length ? patch(old, tr) : tr;
    });
    if (next.length === shown.length && next.every(function (tr, i) { return shown[i] === tr; })) return;
    tbody.replaceChildren.apply(tbody, next);
  }
  function patch(old, tr) {
    Array.prototype.slice.call(old.attributes).forEach(function (a) { if (!tr.hasAttribute(a.name)) old.removeAttribute(a.name); });
    Array.prototype.forEach.call(tr.attributes, function (a) { if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value); });
    Array.prototype.slice.call(tr.children).forEach(function (cell, k) {
      if (!old.children[k].isEqualNode(cell)) old.replaceChild(cell, old.children[k]);
    });
    return old;
  }
  function ms(v) {
    if (v === null || v === undefined) return "–";
    if (v >= 10000) return (v / 1000).toFixed(1) + " s";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    return (v >= 100 ? Math.round(v) : v.toFixed(v >= 10 ? 1 : 2)) + " ms";
  }
  function pct(v) { return (v * 100).toFixed(v >= 0.1 || v === 0 ? 0 : 1) + "%"; }
  function rate(v) { return v === 0 ? "0/s" : (v >= 10 ? Math.round(v) : v >= 1 ? v.toFixed(1) : v.toFixed(2)) + "/s"; }
  function count(n) { return n >= 1e6 ? (n / 1e6).toFixed(1) + "M" : n >= 1e4 ? (n / 1e3).toFixed(1) + "k" : String(n); }
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    return n >= 1073741824 ? (n / 1073741824).toFixed(2) + " GiB" : (n / 1048576).toFixed(0) + " MiB";
  }
  function duration(msLeft) {
    var sec = Math.max(0, Math.round(msLeft / 1000));
    if (sec < 60) return sec + "s";
    return Math.floor(sec / 60) + "m" + (sec % 60 ? " " + (sec % 60) + "s" : "");
  }
  function clock(iso) { return new Date(iso).toLocaleTimeString(); }
  var upstreamTone = { ready: "ok", connecting: "warn", down: "bad", stopped: "idle" };
  var phaseTone = { working: "ok", queued: "idle", "waiting for lock": "warn", "waiting for approval": "warn", "input required": "warn" };
  /** Held calls' arguments by id (from ./approvals), whether this viewer may decide, and decisions made here. */
  var held = { ids: "", args: {}, canDecide: null, note: "", decided: {} };
  var breakerTone = { closed: "ok", halfOpen: "warn", open: "bad" };
  var breakerText = { closed: "closed", halfOpen: "half-open", open: "open" };

  /** Tool descriptions are markdown: \`code\` becomes <code>, emphasis and link syntax go, the text stays text. */
  function describe(text) {
    var plain = String(text).replace(/\\[([^\\]]*)\\]\\([^)]*\\)/g, "$1").replace(/(\\*\\*|__)(.+?)\\1/g, "$2").replace(/^#+\\s*/gm, "");
    return plain.split("\`").map(function (part, i) { return i % 2 ? h("code", { text: part }) : part; });
  }

  /** A small SVG line chart of one or two series (nulls are gaps); the newest point is on the right. */
  function chart(series, opts) {
    var w = opts.width || 120, hgt = opts.height || 28, pad = 2;
    var values = [].concat.apply([], series).filter(function (v) { return typeof v === "number"; });
    var max = Math.max(opts.min || 0, values.length ? Math.max.apply(null, values) : 0);
    var r1 = function (v) { return Math.round(v * 10) / 10; };
    var svg = svgEl("svg", { viewBox: "0 0 " + w + " " + hgt, class: "chart", role: "img", preserveAspectRatio: "none", "data-max": max });
    svg.setAttribute("aria-label", opts.label || "");
    var title = svgEl("title", {});
    title.textContent = opts.label || "";
    svg.appendChild(title);
    svg.appendChild(svgEl("line", { x1: 0, x2: w, y1: hgt - 0.5, y2: hgt - 0.5, class: "axis" }));
    series.forEach(function (points, k) {
      var n = points.length, line = "", area = "", running = false, prevX = 0, prevY = 0, run = 0;
      points.forEach(function (v, i) {
        var x = n > 1 ? r1((i * w) / (n - 1)) : w;
        if (typeof v !== "number") {
          if (running) area += "L" + prevX + " " + hgt + "Z";
          if (run === 1) line += "L" + (prevX + 1) + " " + prevY; // a lone point: a short dash
          running = false;
          run = 0;
          return;
        }
        var y = r1(hgt - pad - (max > 0 ? (v / max) * (hgt - 2 * pad) : 0));
        if (!running) { line += "M" + x + " " + y; area += "M" + x + " " + hgt + "L" + x + " " + y; running = true; }
        else { line += "L" + x + " " + y; area += "L" + x + " " + y; }
        prevX = x;
        prevY = y;
        run++;
      });
      if (running) area += "L" + prevX + " " + hgt + "Z";
      if (run === 1) line += "L" + (prevX - 1) + " " + prevY;
      if (k === 0 && area) svg.appendChild(svgEl("path", { d: area, class: "area " + (opts.tone || "") }));
      if (line) svg.appendChild(svgEl("path", { d: line, class: "line " + (k ? "second" : opts.tone || "") }));
    });
    return svg;
  }

  function perSecond(calls, stepMs) { return calls.map(function (c) { return c / (stepMs / 1000); }); }
  function errorRates(trend) { return trend.calls.map(function (c, i) { return c ? trend.errors[i] / c : null; }); }

  function card(label, value, bad, id, sub) {
    return h("div", { class: "card" + (bad ? " bad" : ""), id: id }, h("div", { class: "label", text: label }), h("div", { class: "value", text: value }), sub ? h("div", { class: "sub", text: sub }) : null);
  }

  function trendCard(id, label, value, series, opts) {
    return h("div", { class: "card trend", id: id, "data-chart": id },
      h("div", { class: "label", text: label + " · last hour" }),
      h("div", { class: "value", text: value }),
      chart(series, Object.assign({ width: 260, height: 56, label: label + " over the last hour" }, opts)));
  }

  function renderGateway(s) {
    var g = history && history.gateway;
    var wrap = document.getElementById("trends");
    if (!g) { wrap.replaceChildren(); return; }
    var step = history.stepMs;
    var lastOf = function (a) { for (var i = a.length - 1; i >= 0; i--) if (a[i] !== null) return a[i]; return null; };
    var inFlight = 0, queued = 0;
    s.tools.forEach(function (t) { inFlight += t.inFlight; queued += t.queued; });
    var p95 = lastOf(g.p95Ms);
    var cpu = lastOf(g.cpuPercent);
    wrap.replaceChildren(
      trendCard("chart-calls", "Calls/s", rate(lastOf(perSecond(g.calls, step)) || 0), [perSecond(g.calls, step)], { tone: "accent" }),
      trendCard("chart-errors", "Error rate", lastOf(errorRates(g)) === null ? "–" : pct(lastOf(errorRates(g))), [errorRates(g)], { tone: "bad", min: 0.05 }),
      trendCard("chart-p95", "p95 latency", ms(p95), [g.p95Ms], { tone: "accent" }),
      trendCard("chart-load", "In flight / queued", inFlight + " / " + queued, [g.inFlight, g.queued], { tone: "accent", min: 1 }),
      trendCard("chart-cpu", "CPU", cpu === null ? "–" : cpu.toFixed(0) + "%", [g.cpuPercent], { tone: "accent", min: 10 }),
      trendCard("chart-memory", "Memory (RSS)", bytes(lastOf(g.rssBytes)), [g.rssBytes], { tone: "accent" })
    );
  }

  function render(s) {
    if (s.history) history = s.history;
    document.getElementById("service").textContent = s.service.name + (s.service.version ? " " + s.service.version : "");
    document.title = s.service.name + " status";
    var win = s.statsWindowMs ? duration(s.statsWindowMs) : "";
    document.getElementById("window").textContent = (win ? "figures over the last " + win : "") + (s.totals ? " · totals since " + clock(s.totals.since) : "") + (history ? " · charts: last hour" : "");
    var up = s.upstreams.filter(function (u) { return u.state === "ready"; }).length;
    var open = s.breakers.filter(function (b) { return b.state === "open"; }).length;
    var calls = 0, errors = 0, inFlight = 0, queued = 0;
    s.tools.forEach(function (t) { calls += t.calls; errors += t.errors; inFlight += t.inFlight; queued += t.queued; });
    var totals = s.totals;
    document.getElementById("summary").replaceChildren(
      card("Upstreams up", up + " / " + s.upstreams.length, up < s.upstreams.length, "sum-upstreams"),
      card("Tools", String(s.tools.length), false, "sum-tools"),
      card("Calls · " + win, String(calls), false, "sum-calls", totals ? count(totals.calls) + " since start" : null),
      card("Error rate · " + win, calls ? pct(errors / calls) : "–", calls > 0 && errors / calls > 0.05, "sum-errors", totals ? count(totals.errors) + " errors since start" : null),
      card("In flight / queued", inFlight + " / " + queued, false, "sum-load"),
      card("Breakers open", String(open), open > 0, "sum-breakers"),
      card("Alerts firing", String(s.alerts.active.length), s.alerts.active.length > 0, "sum-alerts"),
      s.tasks || s.tasksError ? card("Tasks running", s.tasks ? String(s.tasks.length) : "?", !s.tasks, "sum-tasks") : null,
      s.approvals ? card("Held for approval", String(s.approvals.length), s.approvals.length > 0, "sum-approvals") : null
    );
    renderGateway(s);

    var firing = document.getElementById("firing");
    if (s.alerts.active.length) {
      firing.replaceChildren(h("h2", { text: "Alerts firing" }), h("ul", { class: "alerts" }, alertItems(s.alerts.active)));
    } else firing.replaceChildren();

    renderApprovals(s);
    renderTasks(s);

    document.getElementById("upstream-count").textContent = String(s.upstreams.length);
    fill(document.querySelector("#upstreams tbody"), s.upstreams.map(function (u) {
      var needs = u.needsAuthorization;
      var perPrincipal = typeof u.principalConnections === "number";
      return h("tr", { "data-upstream": u.name, "data-state": u.state, "data-needs-authorization": needs ? "true" : null },
        h("td", null, h("code", { text: u.name })),
        h("td", null, needs
          ? h("span", { class: "badge warn", text: "needs authorization" })
          : h("span", { class: "badge " + (upstreamTone[u.state] || "idle"), text: u.state })),
        h("td", { text: u.transport || "" }),
        h("td", { "data-field": "era", text: u.era || "–", title: u.protocolVersion ? "negotiated " + u.protocolVersion : null }),
        h("td", { class: "num", text: u.tools === undefined ? "" : u.tools }),
        h("td", { class: "num", text: u.restarts }),
        upstreamDetails(u, needs, perPrincipal));
    }), 7, "No upstreams configured.");

    document.getElementById("tool-count").textContent = String(s.tools.length);
    renderTools(s.tools);

    document.getElementById("breaker-count").textContent = String(s.breakers.length);
    fill(document.querySelector("#breakers tbody"), s.breakers.map(function (b) {
      var next = b.state === "open" && b.nextAttemptAt ? duration(Date.parse(b.nextAttemptAt) - Date.now()) : "";
      return h("tr", { "data-breaker": b.id, "data-breaker-state": b.state },
        h("td", null, h("code", { text: b.id })),
        h("td", null, h("span", { class: "badge " + (breakerTone[b.state] || "idle"), text: breakerText[b.state] || b.state })),
        h("td", { text: next ? "in " + next : "" }));
    }), 3, "No breakers.");

    var recent = document.getElementById("recent");
    recent.replaceChildren.apply(recent, s.alerts.recent.length ? alertItems(s.alerts.recent) : [h("li", { class: "empty", text: "No alerts." })]);
  }

  /** Why an upstream is not serving and what to do: the command to run, or the link to connect one's account. */
  function upstreamDetails(u, needs, perPrincipal) {
    var parts = [];
    // A per-principal upstream nobody has connected yet names its consent URL: the link below is that.
    if (needs && perPrincipal && /^https?:/.test(needs)) parts.push(h("div", { "data-field": "authorize", text: "No account connected yet: the tool list waits for the first." }));
    else if (needs) parts.push(h("div", { "data-field": "authorize" }, "Run ", h("code", { text: needs })));
    else if (u.state !== "ready" && u.lastError) parts.push(h("div", { class: "error-text", text: u.lastError }));
    if (u.toolsHeld) parts.push(h("div", { class: "error-text", "data-field": "held-tools", text: u.toolsHeld.count + " tool" + (u.toolsHeld.count === 1 ? "" : "s") + " held: " + u.toolsHeld.reason }));
    if (perPrincipal) {
      parts.push(h("div", null,
        h("a", { href: "./oauth/upstreams/" + encodeURIComponent(u.name) + "/authorize", target: "_blank", rel: "noopener", "data-field": "connect", text: "Connect your account" }),
        h("small", { text: "each caller uses its own account here · " + u.principalConnections + " connection" + (u.principalConnections === 1 ? "" : "s") + " open" })));
    }
    return h("td", { class: "details" }, parts);
  }

  function age(fromIso, nowIso) { return duration(Date.parse(nowIso) - Date.parse(fromIso)); }

  function renderTasks(s) {
    var section = document.getElementById("running");
    // Shown while there is something to show; the summary card keeps the count (zero included).
    var tasks = s.tasks || [];
    section.hidden = !tasks.length && !s.tasksError;
    document.getElementById("task-count").textContent = s.tasksError ? "" : String(tasks.length);
    document.getElementById("task-note").textContent = s.tasksError || "run by the gateway (tool policy task)";
    document.getElementById("task-note").className = "note" + (s.tasksError ? " error-text" : "");
    var tbody = document.querySelector("#tasks tbody");
    tbody.replaceChildren.apply(tbody, tasks.map(function (t) {
      return h("tr", { "data-task": t.id, "data-tool": t.tool, "data-task-phase": t.phase },
        h("td", { class: "wrap" }, h("code", { text: t.tool }), h("small", { text: t.upstream })),
        h("td", null, h("code", { text: t.principal })),
        h("td", { class: "wrap" }, h("span", { class: "badge " + (phaseTone[t.phase] || "idle"), "data-field": "phase", text: t.phase }),
          t.message && t.message !== t.phase ? h("small", { "data-field": "message", text: t.message }) : null),
        h("td", { "data-field": "age", text: age(t.createdAt, s.generatedAt) }),
        h("td", { text: t.lastUpdatedAt ? age(t.lastUpdatedAt, s.generatedAt) + " ago" : "" }));
    }));
  }

  function renderApprovals(s) {
    var section = document.getElementById("held");
    var list = s.approvals || [];
    section.hidden = !list.length;
    document.getElementById("held-count").textContent = String(list.length);
    document.getElementById("held-note").textContent = held.note;
    var ids = list.map(function (a) { return a.id; }).join(",");
    if (ids !== held.ids) {
      held.ids = ids;
      var current = ids.split(",");
      [held.decided, held.args].forEach(function (map) { for (var id in map) if (current.indexOf(id) < 0) delete map[id]; });
      if (list.length) loadArguments();
    }
    // A held call keeps its row element across refreshes: a click whose press and release straddle a refresh
    // would otherwise land on two different buttons, and the browser would drop it.
    var tbody = document.querySelector("#approvals tbody");
    var kept = {};
    Array.prototype.forEach.call(tbody.children, function (tr) { kept[tr.getAttribute("data-approval")] = tr; });
    var rows = list.map(function (a) {
      var tr = kept[a.id] || approvalRow(a);
      updateApproval(tr, a, s);
      return tr;
    });
    var unchanged = rows.length === tbody.children.length && rows.every(function (tr, i) { return tbody.children[i] === tr; });
    if (!unchanged) tbody.replaceChildren.apply(tbody, rows);
  }

  function approvalRow(a) {
    var buttons = ["approve", "deny"].map(function (decision) {
      var b = h("button", { type: "button", class: decision, "data-action": decision, text: decision === "approve" ? "Approve" : "Deny" });
      b.addEventListener("click", function () { decide(a.id, decision); });
      return b;
    });
    return h("tr", { "data-approval": a.id, "data-tool": a.tool },
      h("td", { class: "wrap" }, h("code", { text: a.tool }), h("small", { text: a.upstream })),
      h("td", null, h("code", { text: a.principal })),
      h("td"),
      h("td", { class: "args" }),
      h("td", { class: "actions" }, buttons));
  }

  /** The parts of a held call's row that change while it waits: its age, its arguments, the decision. */
  function updateApproval(tr, a, s) {
    var cells = tr.children;
    var decided = held.decided[a.id];
    var args = held.args[a.id];
    cells[2].textContent = age(a.createdAt, s.generatedAt);
    var tag = args === undefined ? "SMALL" : "CODE";
    var text = String(args === undefined ? (held.canDecide === false ? "shown to approvals.operators only" : "…") : args);
    var shown = cells[3].firstElementChild;
    if (!shown || shown.tagName !== tag || shown.textContent !== text) cells[3].replaceChildren(h(tag.toLowerCase(), { text: text }));
    var actions = cells[4];
    var locked = Boolean((decided && !decided.error) || held.canDecide === false);
    actions.querySelectorAll("button").forEach(function (b) { b.disabled = locked; });
    var note = actions.querySelector('[data-field="decision"]');
    if (!decided) {
      if (note) note.remove();
      return;
    }
    if (!note) actions.appendChild((note = h("small", { "data-field": "decision" })));
    note.className = "decided" + (decided.error ? " bad" : "");
    note.textContent = decided.text;
  }

  /** Once per change of the held list: the arguments (only approvals.operators may see them). */
  function loadArguments() {
    fetch("./approvals", { cache: "no-store", headers: { accept: "application/json" } })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          if (!res.ok) {
            held.canDecide = false;
            held.note = (body.error && body.error.message) || "HTTP " + res.status;
            return;
          }
          held.canDecide = true;
          held.note = "";
          (body.pending || []).forEach(function (p) { held.args[p.id] = p.arguments; });
        });
      }, function (err) { held.note = "cannot read the held calls (" + err.message + ")"; })
      .then(function () { if (last) renderApprovals(last); });
  }

  function decide(id, decision) {
    held.decided[id] = { text: decision === "approve" ? "approving…" : "denying…" };
    if (last) renderApprovals(last);
    fetch("./approvals/" + encodeURIComponent(id) + "/" + decision, { method: "POST", cache: "no-store", headers: { accept: "application/json" } })
      .then(function (res) {
        return res.json().catch(function () { return {}; }).then(function (body) {
          held.decided[id] = res.ok
            ? { text: decision === "approve" ? "approved" : "denied" }
            : { text: (body.error && body.error.message) || "HTTP " + res.status, error: true };
        });
      }, function (err) { held.decided[id] = { text: err.message, error: true }; })
      .then(function () { if (last) renderApprovals(last); });
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

  function metric(chartEl, main, sub) {
    return h("div", { class: "metric" }, chartEl, h("div", { class: "figures" }, main, sub ? h("small", null, sub) : null));
  }
  function field(name, text, cls) { return h("span", { "data-field": name, class: cls, text: text }); }

  function renderTools(tools) {
    var q = filter.value.trim().toLowerCase();
    var windowSec = (last && last.statsWindowMs ? last.statsWindowMs : 300000) / 1000;
    var shown = tools.filter(function (t) { return !q || t.name.toLowerCase().indexOf(q) >= 0 || t.upstream.toLowerCase().indexOf(q) >= 0; });
    fill(document.querySelector("#tools tbody"), shown.map(function (t) {
      var tone = t.calls === 0 ? "" : t.errorRate >= 0.2 ? "bad" : t.errorRate > 0 ? "warn" : "";
      var trend = history && history.tools[t.name];
      var step = history ? history.stepMs : 30000;
      var none = function (label) { return h("span", { class: "chart none", "aria-label": label }); };
      var totals = t.totals || { calls: 0, errors: 0, toolErrors: 0 };
      return h("tr", { "data-tool": t.name, "data-upstream": t.upstream },
        h("td", { class: "tool" }, h("code", { class: "name", text: t.name }), t.description ? h("span", { class: "desc", title: t.description }, describe(t.description)) : null),
        h("td", { class: "upstream", text: t.upstream }),
        h("td", { "data-col": "calls" }, metric(trend ? chart([perSecond(trend.calls, step)], { label: t.name + " calls/s, last hour", tone: "accent" }) : none("no history"),
          field("callRate", rate(t.calls / windowSec), "big"),
          [field("calls", t.calls), " in " + duration(windowSec * 1000) + " · ", field("totalCalls", count(totals.calls)), " total"])),
        h("td", { "data-col": "errors" }, metric(trend ? chart([errorRates(trend)], { label: t.name + " error rate, last hour", tone: "bad", min: 0.05 }) : none("no history"),
          field("errorRate", t.calls ? pct(t.errorRate) : "–", "big rate " + tone),
          [field("errors", t.errors), " failed · ", field("toolErrors", t.toolErrors), " tool errors · ", field("totalErrors", count(totals.errors)), " failed in all"])),
        h("td", { "data-col": "latency" }, metric(trend ? chart([trend.p95Ms], { label: t.name + " p95 latency, last hour", tone: "accent" }) : none("no history"),
          [h("span", { class: "big" }, "p95 ", field("p95", ms(t.p95Ms)))],
          ["p50 ", field("p50", ms(t.p50Ms)), " · p99 ", field("p99", ms(t.p99Ms))])),
        h("td", { "data-col": "load" }, metric(trend ? chart([trend.inFlight, trend.queued], { label: t.name + " in flight and queued, last hour", tone: "accent", min: 1 }) : none("no history"),
          [h("span", { class: "big" }, field("inFlight", t.inFlight), " / ", field("queued", t.queued))])));
    }), 6, q ? "No tool matches." : "The catalog is empty.");
  }

  filter.addEventListener("input", function () { if (last) renderTools(last.tools); });

  function show(s) {
    last = s;
    render(s);
    updated.textContent = "live · updated " + clock(s.generatedAt);
    updated.className = "live";
    document.body.setAttribute("data-ready", "true");
  }
  function stale(message) {
    updated.textContent = "cannot reach the gateway (" + message + "), retrying…";
    updated.className = "live stale";
  }

  // Live updates pushed over Server-Sent Events; the browser reconnects by itself after a drop.
  if (window.EventSource) {
    var source = new EventSource("./status/stream?interval=" + refreshMs);
    source.addEventListener("status", function (e) { show(JSON.parse(e.data)); });
    source.onerror = function () { stale(source.readyState === 2 ? "closed" : "connection lost"); };
  } else {
    (function poll() {
      fetch("./status?history=1", { cache: "no-store", headers: { accept: "application/json" } })
        .then(function (res) { if (!res.ok) throw new Error("HTTP " + res.status); return res.json(); })
        .then(show, function (err) { stale(err.message); })
        .finally(function () { setTimeout(poll, refreshMs); });
    })();
  }
})();
</script>
</body>
</html>
`;
