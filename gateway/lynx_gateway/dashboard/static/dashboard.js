// Lynx dashboard: token handling, live batch counters (SSE), charts (uPlot). No build step.
"use strict";

const TOKEN_KEY = "lynx-token";
const token = () => sessionStorage.getItem(TOKEN_KEY) || "";

// The page loads themselves (plain GETs of / and /ui/...) carry the token in a SameSite=Strict session
// cookie; the gateway accepts that cookie for reads only, so every write still needs the header.
function setTokenCookie(v) {
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = "lynx_token=" + encodeURIComponent(v) + "; path=/; SameSite=Strict" + secure +
    (v ? "" : "; max-age=0");
}
function lynxLogin(ev) {
  ev.preventDefault();
  const v = document.getElementById("token").value.trim();
  if (v) { sessionStorage.setItem(TOKEN_KEY, v); setTokenCookie(v); }
  document.getElementById("token").value = "";
  showLogin();
  return false;
}
function lynxLogout() { sessionStorage.removeItem(TOKEN_KEY); setTokenCookie(""); showLogin(); }
function showLogin() {
  const s = document.getElementById("login-state");
  if (s) s.textContent = token() ? "token set for this tab" : "";
}

// Every htmx request and every fetch sends the token; EventSource cannot send headers, so it goes in the URL.
document.addEventListener("htmx:configRequest", (e) => {
  if (token()) e.detail.headers["Authorization"] = "Bearer " + token();
});
document.addEventListener("htmx:responseError", (e) => {
  const s = e.detail.xhr.status;
  if (s === 401) toast("The API asks for a token: enter one above.");
  else if (s === 403) toast("Your token may not do that.");
  else toast("Request failed: HTTP " + s);
});
// EventSource cannot send an Authorization header, so with a token the stream is read with fetch instead
// (same events, same interface as far as the htmx SSE extension uses it); the token never goes in a URL.
class FetchEventSource extends EventTarget {
  constructor(url) {
    super();
    this.url = url; this.readyState = 0; this.onopen = null; this.onerror = null;
    this.abort = new AbortController();
    this.run();
  }
  async run() {
    try {
      const reply = await fetch(this.url, { headers: { Authorization: "Bearer " + token(), Accept: "text/event-stream" },
                                           signal: this.abort.signal });
      if (!reply.ok) throw new Error("HTTP " + reply.status);
      this.readyState = 1;
      if (this.onopen) this.onopen(new Event("open"));
      const reader = reply.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          let name = "message", data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) name = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length) this.dispatchEvent(new MessageEvent(name, { data: data.join("\n") }));
        }
      }
      this.readyState = 2;
    } catch (err) {
      if (this.readyState === 2) return;
      this.readyState = 2;
      if (this.onerror) this.onerror(err);
      if (String(err).includes("403") || String(err).includes("401")) toast("Live updates refused: " + err.message);
    }
  }
  close() { this.readyState = 2; this.abort.abort(); }
}
if (window.htmx) {
  htmx.createEventSource = (url) => token() ? new FetchEventSource(url) : new EventSource(url, { withCredentials: true });
}

function api(url, opts = {}) {
  opts.headers = Object.assign({ "content-type": "application/json" }, opts.headers || {});
  if (token()) opts.headers["Authorization"] = "Bearer " + token();
  return fetch(url, opts);
}

function toast(msg) {
  const t = document.getElementById("toast");
  t.textContent = msg;
  setTimeout(() => { if (t.textContent === msg) t.textContent = ""; }, 6000);
}

const ICONS = { Pending: "◷", Running: "▶", Completed: "✓", Failed: "✗", Cancelled: "⊘" };
const fmt = (x) => (x === null || x === undefined) ? "—" : (typeof x === "number" ? +x.toPrecision(6) : x);
const jsonScript = (id) => { const e = document.getElementById(id); return e ? JSON.parse(e.textContent) : null; };
const width = () => Math.min(560, Math.max(300, window.innerWidth - 60));

function statusHtml(s) {
  const span = document.createElement("span");
  span.className = "status status-" + s.toLowerCase();
  span.textContent = (ICONS[s] || "") + " " + s;
  return span;
}

// ---- batch page ------------------------------------------------------------------------------
function initBatch(root) {
  const id = root.dataset.batch;
  const set = (sel, v) => { const e = document.getElementById(sel); if (e) e.textContent = fmt(v); };
  root.addEventListener("htmx:sseOpen", (e) => {
    const src = e.detail.source;
    src.addEventListener("counts", (m) => showCounts(JSON.parse(m.data)));
    src.addEventListener("status", (m) => {
      const d = JSON.parse(m.data);
      const s = document.getElementById("b-status"); s.replaceChildren(statusHtml(d.status));
      set("b-message", d.status_message || "");
    });
    src.addEventListener("end", (m) => {
      showCounts(JSON.parse(m.data));
      set("live-state", "finished");
      loadCharts().then(loadSensitivity);
      htmx.trigger(document.getElementById("runs-filter"), "submit");  // the final table, same filters
    });
  });
  function showCounts(d) {
    for (const [s, n] of Object.entries(d.jobs_by_status)) {
      const e = root.querySelector(`[data-count="${s}"]`); if (e) e.textContent = n;
    }
    const s = document.getElementById("b-status"); s.replaceChildren(statusHtml(d.status));
    set("b-finished", d.finished); set("b-total", d.total_jobs); set("b-early", d.early_terminated_jobs);
    set("b-throughput", d.throughput_jobs_per_minute);
    set("b-eta", d.terminal ? null : d.estimated_completion_time_mins);
    set("b-pfail", d.failure_probability);
    set("b-reasons", Object.entries(d.failures_by_reason).map(([r, n]) => `${r}: ${n}`).join(" ") || "none");
    const bar = root.querySelector("#b-progress progress"); if (bar) bar.value = d.percent;
    const pct = root.querySelector("#b-progress .pct"); if (pct) pct.textContent = d.percent + " %";
    if (!d.terminal) scheduleCharts();
  }
  // The table's sort and page live in the filter form, so a live refresh keeps them; new filters start at page 1.
  document.getElementById("runs").addEventListener("htmx:afterSwap", () => {
    const c = document.querySelector("#runs .runs-count"); if (!c) return;
    document.getElementById("f-sort").value = c.dataset.sort;
    document.getElementById("f-order").value = c.dataset.order;
    document.getElementById("f-page").value = c.dataset.page;
  });
  document.getElementById("runs-filter").addEventListener("change", () => { document.getElementById("f-page").value = "1"; });
  for (const b of root.querySelectorAll("[data-action]")) b.addEventListener("click", () => act(b));
  async function act(button) {
    const what = button.dataset.action;
    if (what === "cancel" && !confirm("Cancel this batch? Pending jobs are dropped and running ones killed.")) return;
    const body = what === "extend" ? { runs: +document.getElementById("extend-runs").value } : {};
    const reply = await api(`/batches/${id}/${what}`, { method: "POST", body: JSON.stringify(body) });
    const doc = await reply.json().catch(() => ({}));
    const out = document.getElementById("act-result");
    if (reply.status === 403) {  // a read-only token: the write buttons go grey
      for (const b of root.querySelectorAll("[data-write]")) { b.disabled = true; b.title = "your token is read-only"; }
      out.textContent = "Your token is read-only: cancel, extend and rerun are disabled.";
    } else if (!reply.ok) {
      out.textContent = `${what} failed: ${(doc.error && doc.error.message) || reply.status}`;
    } else {
      out.textContent = `${what}: done` + (doc.added_jobs ? `, ${doc.added_jobs} runs added` : "")
        + (doc.requeued_jobs !== undefined ? `, ${doc.requeued_jobs} jobs requeued` : "")
        + (doc.cancelled_jobs !== undefined ? `, ${doc.cancelled_jobs} jobs cancelled` : "");
      if (what !== "cancel") location.reload();
    }
  }
  let timer = null, current = null;
  function scheduleCharts() { if (!timer) timer = setTimeout(() => { timer = null; loadCharts(); }, 3000); }
  const select = document.getElementById("output");
  select.addEventListener("change", loadCharts);
  const plots = {};
  function draw(key, el, opts, data) {
    if (plots[key]) plots[key].destroy();
    opts.scales = Object.assign({ x: { time: false } }, opts.scales || {});
    plots[key] = new uPlot(Object.assign({ width: width(), height: 220 }, opts), data, document.getElementById(el));
  }
  async function loadCharts() {
    const q = select.value ? `?output=${encodeURIComponent(select.value)}` : "";
    const reply = await api(`/ui/batches/${id}/charts.json${q}`);
    if (!reply.ok) return;
    const d = await reply.json();
    current = d.output;
    if (!select.dataset.filled) {
      for (const o of d.outputs) if (![...select.options].some((x) => x.value === o)) select.add(new Option(o, o));
      for (const s of document.querySelectorAll(".numeric-columns"))
        for (const o of d.outputs) if (![...s.options].some((x) => x.value === "out." + o)) s.add(new Option("output " + o, "out." + o));
      select.dataset.filled = "1";
    }
    const c = d.convergence;
    document.getElementById("charts-note").textContent = d.output ? `Output ${d.output}; ${c.n.length ? c.n[c.n.length - 1] : 0} finished runs.` : "No numeric outputs yet.";
    set("b-conditions", Object.entries(d.by_condition || {}).map(([k, n]) => `${k}: ${n}`).join("; ") || "none");
    if (d.output && c.mean) draw("mean", "chart-mean", { title: "Running mean", series: [{ label: "runs" }, { label: d.output, stroke: "#0969da" }] }, [c.n, c.mean]);
    draw("pfail", "chart-pfail", { title: "Failure probability", scales: { y: { range: [0, 1] } },
      series: [{ label: "runs" }, { label: "estimate", stroke: "#cf222e" }, { label: "95 % low", stroke: "#cf222e", dash: [4, 4] }, { label: "95 % high", stroke: "#cf222e", dash: [4, 4] }] },
      [c.n, c.p, c.p_lo, c.p_hi]);
    if (d.histogram && d.histogram.edges.length) {
      const h = d.histogram, mids = h.edges.slice(0, -1).map((e, i) => (e + h.edges[i + 1]) / 2);
      const bars = uPlot.paths.bars({ size: [0.9, 100] });
      draw("hist", "chart-hist", { title: `Histogram of ${h.output}`, series: [{ label: h.output },
        { label: "succeeded", fill: "#1a7f3788", stroke: "#1a7f37", paths: bars }, { label: "failed", fill: "#cf222e88", stroke: "#cf222e", paths: bars }] },
        [mids, h.succeeded, h.failed]);
    }
  }
  async function loadSensitivity() {
    const box = document.getElementById("sensitivity");
    const reply = await api(`/batches/${id}/summary`);
    if (!reply.ok) { box.textContent = `The summary is not available (HTTP ${reply.status}).`; return; }
    const sens = (await reply.json()).sensitivity || {};
    const outputs = sens.outputs || {};
    const out = select.value || (current in outputs ? current : Object.keys(outputs)[0]);
    const target = out ? outputs[out] || {} : sens.failure || {};
    const est = (v) => (v && typeof v === "object") ? v.estimate : v;
    const rows = Object.entries(target).filter(([, v]) => !v.by_level)
      .map(([input, v]) => [input, est(v.first_order), v.spearman, v.prcc]);
    rows.sort((a, b) => Math.abs(b[1] ?? b[2] ?? 0) - Math.abs(a[1] ?? a[2] ?? 0));
    const t = document.createElement("table"); t.className = "grid";
    t.innerHTML = "<caption></caption><thead><tr><th scope='col'>Rank</th><th scope='col'>Input</th><th scope='col'>First order</th><th scope='col'>Spearman</th><th scope='col'>PRCC</th></tr></thead><tbody></tbody>";
    t.caption.textContent = rows.length ? `Inputs ranked by first-order influence on ${out || "failure"}` : "No sensitivity yet";
    rows.forEach((r, i) => {
      const tr = t.tBodies[0].insertRow();
      const th = document.createElement("th"); th.scope = "row"; th.textContent = i + 1; tr.appendChild(th);
      for (const v of r) tr.insertCell().textContent = fmt(v);
    });
    box.replaceChildren(t);
  }
  loadCharts().then(loadSensitivity);
  select.addEventListener("change", loadSensitivity);
}

// ---- thresholds and telemetry -------------------------------------------------------------------
function thresholdsFor(variable) {
  return (jsonScript("conditions") || []).filter((c) => c.variable === variable && c.parsed);
}
const fires = (op, v, x) => ({ "<": v < x, "<=": v <= x, ">": v > x, ">=": v >= x, "==": v === x, "!=": v !== x })[op];

function thresholdPlugin(lines, marks) {
  return { hooks: { draw: (u) => {
    const ctx = u.ctx; ctx.save(); ctx.lineWidth = 2;
    for (const y of lines) {
      const py = u.valToPos(y, "y", true); ctx.strokeStyle = "#cf222e"; ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(u.bbox.left, py); ctx.lineTo(u.bbox.left + u.bbox.width, py); ctx.stroke();
    }
    for (const x of marks) {
      const px = u.valToPos(x, "x", true); ctx.strokeStyle = "#8250df"; ctx.setLineDash([]);
      ctx.beginPath(); ctx.moveTo(px, u.bbox.top); ctx.lineTo(px, u.bbox.top + u.bbox.height); ctx.stroke();
    }
    ctx.restore();
  } } };
}

function initJob(root) {
  const id = root.dataset.job;
  const select = document.getElementById("variable");
  let plot = null;
  async function load() {
    const v = select.value; if (!v) return;
    const reply = await api(`/jobs/${id}/telemetry?variable=${encodeURIComponent(v)}`);
    if (!reply.ok) return;
    const s = ((await reply.json()).series || {})[v] || { timestamps_ns: [], values: [] };
    const t0 = s.timestamps_ns[0] || 0, t = s.timestamps_ns.map((x) => (x - t0) / 1e9);
    const conds = thresholdsFor(v), lines = conds.map((c) => c.parsed[1]);
    const term = jsonScript("termination"), marks = [];
    if (term && term.variable === v) {  // the moment the watchdog fired: the first sample past the threshold
      const c = conds.find((c) => c.condition === term.condition) || conds[0];
      const i = c ? s.values.findIndex((x) => fires(c.parsed[0], x, c.parsed[1])) : -1;
      if (i >= 0) marks.push(t[i]);
    }
    const cap = document.getElementById("telemetry-caption");
    cap.textContent = `${v}: ${s.values.length} samples` + (lines.length ? `; threshold ${conds.map((c) => c.condition).join(", ")} dashed red` : "")
      + (marks.length ? `; the watchdog fired at ${fmt(marks[0])} s (purple line)` : "");
    if (plot) plot.destroy();
    plot = new uPlot({ width: width() + 200, height: 300, title: v, plugins: [thresholdPlugin(lines, marks)],
      scales: { x: { time: false }, y: { range: (u, lo, hi) => [Math.min(lo, ...lines), Math.max(hi, ...lines)] } },
      axes: [{}, { size: 80 }], series: [{ label: "s" }, { label: v, stroke: "#0969da" }] }, [t, s.values],
      document.getElementById("chart-telemetry"));
  }
  select.addEventListener("change", load);
  load();
  if (root.dataset.running === "yes") setInterval(load, 5000);
}

// ---- across runs ------------------------------------------------------------------------------
function initOverlay(root) {
  const id = root.dataset.batch;
  let plot = null;
  async function load() {
    const v = document.getElementById("variable").value; if (!v) return;
    const n = document.getElementById("runs-n").value;
    const reply = await api(`/ui/batches/${id}/overlay.json?variable=${encodeURIComponent(v)}&runs=${n}`);
    if (!reply.ok) { toast("overlay failed: HTTP " + reply.status); return; }
    const d = await reply.json();
    const runs = d.runs.filter((r) => r.t.length);
    const data = uPlot.join(runs.map((r) => [r.t, r.v]));
    const lines = thresholdsFor(v).map((c) => c.parsed[1]);
    const series = [{ label: "s" }, ...runs.map((r) => r.status === "Failed"
      ? { label: `run ${r.run_id} ✗ ${r.reason}`, stroke: "#cf222e", width: 2, dash: [5, 3], spanGaps: true }
      : { label: `run ${r.run_id}`, stroke: "#8c959f80", width: 1, spanGaps: true })];
    document.getElementById("overlay-caption").textContent = `${v}: ${runs.length} runs drawn of ${d.finished} finished (${d.failed} failed, drawn red and dashed).`;
    if (plot) plot.destroy();
    plot = new uPlot({ width: width() + 300, height: 400, title: v, legend: { show: runs.length <= 20 },
      scales: { x: { time: false } }, axes: [{}, { size: 80 }],
      plugins: [thresholdPlugin(lines, [])], series }, data, document.getElementById("chart-overlay"));
  }
  document.getElementById("overlay-go").addEventListener("click", load);
  load();
}

document.addEventListener("DOMContentLoaded", () => {
  showLogin();
  const b = document.getElementById("batch"); if (b) initBatch(b);
  const j = document.getElementById("job"); if (j) initJob(j);
  const o = document.getElementById("overlay"); if (o) initOverlay(o);
});
