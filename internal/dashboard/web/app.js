// creek dashboard: plain JavaScript, no build step. Each page is a function
// that fills <main> and returns a cleanup; pages poll the JSON API (see
// docs/dashboard.md) every two seconds and read live records as
// server-sent events.
"use strict";

const POLL_MS = 2000;
const MAX_ROWS = 200;
const main = document.getElementById("page");
let cleanups = [];
let lastStatus = null;

// ---- helpers ----

function esc(s) {
  return String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
// One formatter each: toLocaleString makes a new one per call, which costs
// a page of 1,000 topics a third of a second.
const numberFormat = new Intl.NumberFormat("en-US");
const timeFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
const minuteFormat = new Intl.DateTimeFormat("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
function num(n) { return n == null || n < 0 ? "–" : numberFormat.format(n); }
function rate(r) {
  if (!r) return "0/s";
  return (r >= 100 ? numberFormat.format(Math.round(r)) : r >= 10 ? r.toFixed(1) : r.toFixed(2)) + "/s";
}
function bytes(n) {
  if (n == null || n < 0) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + " " + u[i];
}
function clock(t) {
  const d = new Date(t);
  return isNaN(d) ? "–" : timeFormat.format(d);
}
// lastCleaning describes a log cleaner pass (storage.CleaningStats).
function lastCleaning(c) {
  if (!c) return "never";
  return `${clock(c.start)}: offsets ${num(c.first_dirty_offset)}–${num(c.end_offset - 1)}, ${num(c.records_kept)} of ${num(c.records_read)} records kept, ` +
    `${bytes(c.bytes_read)} read, ${bytes(c.bytes_written)} written, ${num(c.tombstones_removed)} tombstones removed, in ${(c.duration_ms / 1000).toFixed(1)} s` +
    (c.error ? ` <span class="bad">failed: ${esc(c.error)}</span>` : "");
}
function link(href, text) { return `<a href="${esc(href)}">${esc(text)}</a>`; }
function enc(s) { return encodeURIComponent(s); }

async function api(path, opts) {
  let resp;
  try {
    resp = await fetch(path, opts);
  } catch (e) {
    showBanner("The dashboard itself cannot be reached (" + e.message + "). Is creek still running?");
    throw e;
  }
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = new Error((body && body.error) || resp.status + " " + resp.statusText);
    err.status = resp.status;
    err.body = body;
    throw err;
  }
  if (body && body.status) setStatus(body.status);
  return body;
}

function showBanner(text) {
  const b = document.getElementById("banner");
  b.textContent = text;
  b.hidden = !text;
}

function setStatus(st) {
  lastStatus = st;
  const pill = document.getElementById("cluster-status");
  pill.className = "pill " + (st.up ? "up" : "down");
  pill.textContent = st.up ? "cluster up · read " + clock(st.taken) : "cluster down";
  if (st.up) {
    showBanner("");
  } else if (st.last_ok && !st.last_ok.startsWith("0001")) {
    showBanner("The cluster cannot be read: " + st.error + ". Showing the last figures, read at " + clock(st.last_ok) + ".");
  } else {
    showBanner("The cluster cannot be read yet: " + st.error + ".");
  }
}

// poll calls fn now and every POLL_MS until the page changes.
function poll(fn, ms) {
  let stopped = false;
  let timer = null;
  const run = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { if (e.status) showPageError(e); }
    if (!stopped) timer = setTimeout(run, ms || POLL_MS);
  };
  run();
  cleanups.push(() => { stopped = true; clearTimeout(timer); });
}

function showPageError(e) {
  const el = document.getElementById("page-error");
  if (el) el.textContent = e.message;
}

function spark(samples, w, hgt) {
  w = w || 120; hgt = hgt || 24;
  if (!samples || samples.length < 2) return `<svg class="spark" viewBox="0 0 ${w} ${hgt}"></svg>`;
  const vs = samples.map((s) => s.v);
  const t0 = samples[0].t, t1 = samples[samples.length - 1].t;
  const hi = Math.max(1, ...vs);
  const pts = samples.map((s) => ((s.t - t0) / Math.max(1, t1 - t0) * (w - 2) + 1).toFixed(1) + "," + (hgt - 2 - s.v / hi * (hgt - 4)).toFixed(1)).join(" ");
  return `<svg class="spark" viewBox="0 0 ${w} ${hgt}"><polyline points="${pts}" fill="none" stroke="#1f6feb" stroke-width="1.5"/></svg>`;
}

// Chart.js (vendored, 200 kB) loads after the first page has asked for its
// data, so it never delays a page; charts appear once it is there.
let chartLib = null;
function loadChartLib() {
  if (!chartLib) {
    chartLib = new Promise((resolve) => {
      const s = document.createElement("script");
      s.src = "vendor/chart.js/chart.umd.min.js";
      s.async = true;
      s.onload = () => resolve(window.Chart || null);
      s.onerror = () => resolve(null);
      document.head.append(s);
    });
  }
  return chartLib;
}

// chart makes a chart on canvas once Chart.js is loaded; holder.chart is
// set then (null until).
function chart(canvas, config) {
  const holder = { chart: null };
  let gone = false;
  cleanups.push(() => { gone = true; if (holder.chart) holder.chart.destroy(); });
  loadChartLib().then((Chart) => {
    if (gone) return;
    if (!Chart) {
      canvas.replaceWith(Object.assign(document.createElement("p"), { className: "muted", textContent: "charts unavailable" }));
      return;
    }
    holder.chart = new Chart(canvas, config);
    if (holder.onReady) holder.onReady(holder.chart);
  });
  return holder;
}

function baseChartOptions() {
  return { animation: false, responsive: true, maintainAspectRatio: false, plugins: { legend: { position: "bottom" } } };
}

// ---- records and tweets ----

function renderTweet(rec) {
  const t = rec.tweet;
  const tags = (t.hashtags || []).map((x) => `<span class="tag">#${esc(x)}</span>`).join("");
  return `<div class="tweet"><span class="who">${esc(t.author)}</span> ${t.name ? `<span class="muted">${esc(t.name)}</span>` : ""}
    ${t.lang ? `<span class="lang">${esc(t.lang)}</span>` : ""}
    <div class="text">${esc(t.text)}</div>
    <div class="meta">${tags} ${esc(rec.topic)}/${rec.partition}@${rec.offset} · ${clock(rec.timestamp)}</div></div>`;
}

function renderPlain(rec) {
  const value = typeof rec.value === "string" ? rec.value : JSON.stringify(rec.value);
  const headers = (rec.headers || []).map((x) => esc(x.key) + "=" + esc(x.value)).join(", ");
  return `<div class="tweet"><div class="meta">${esc(rec.topic)}/${rec.partition}@${rec.offset} · ${clock(rec.timestamp)}</div>
    <div class="kv"><b>key</b> ${rec.key == null ? "<span class=muted>null</span>" : esc(rec.key)}</div>
    <div class="kv"><b>value</b> ${esc(value)}</div>
    ${headers ? `<div class="kv"><b>headers</b> ${headers}</div>` : ""}</div>`;
}

function renderRecord(rec) { return rec.tweet ? renderTweet(rec) : renderPlain(rec); }

// A live feed of a topic's records into a list element.
function liveFeed(topic, onRecord, onInfo) {
  const src = new EventSource("/api/live" + (topic ? "?topic=" + enc(topic) : ""));
  src.addEventListener("record", (ev) => onRecord(JSON.parse(ev.data)));
  src.addEventListener("topic", (ev) => onInfo && onInfo({ topic: JSON.parse(ev.data) }));
  src.addEventListener("skipped", (ev) => onInfo && onInfo({ skipped: JSON.parse(ev.data) }));
  src.onerror = () => onInfo && onInfo({ error: true });
  cleanups.push(() => src.close());
  return src;
}

// ---- the pipeline diagram ----

function diagramModel(v) {
  const nodes = [], edges = [];
  const col = { source: 0, topic: 1, group: 2, sink: 3 };
  const add = (id, kind, title, lines, bad) => nodes.push({ id, kind, col: col[kind], title, lines, bad });
  const writers = {};
  for (const p of v.pipelines) {
    if (p.writes) {
      add("p:" + p.name, "source", p.name, [p.source + " → " + p.sink, rate(p.out_per_sec) + " out", num(p.out) + " records"],
        p.errors ? p.errors + " errors" : "");
      edges.push({ from: "p:" + p.name, to: "t:" + p.writes, rate: p.out_per_sec });
      writers[p.writes] = (writers[p.writes] || 0) + p.out_per_sec;
    }
  }
  for (const t of v.topics) {
    if (!(t.name in writers) && t.in_per_sec > 0) {
      add("x:" + t.name, "source", "producers", ["Kafka clients", rate(t.in_per_sec)], "");
      edges.push({ from: "x:" + t.name, to: "t:" + t.name, rate: t.in_per_sec });
    }
    add("t:" + t.name, "topic", t.name, [num(t.records) + " records", rate(t.in_per_sec) + " in · " + rate(t.out_per_sec) + " out",
      t.partitions + " partition" + (t.partitions === 1 ? "" : "s") + " · " + bytes(t.size)], t.error || "");
  }
  for (const g of v.groups) {
    add("g:" + g.group, "group", g.group, [g.type + " · " + g.state + " · " + g.members + " member" + (g.members === 1 ? "" : "s"),
      "lag " + num(g.total_lag), rate(g.commits_per_sec) + " committed"], g.error || "");
    for (const t of g.topics) if (v.topics.some((x) => x.name === t)) edges.push({ from: "t:" + t, to: "g:" + g.group, rate: g.commits_per_sec });
  }
  for (const p of v.pipelines) {
    if (!p.reads) continue;
    const bad = [p.errors ? p.errors + " errors" : "", p.dead_letters ? p.dead_letters + " dead-lettered" : ""].filter(Boolean).join(" · ");
    add("s:" + p.name, "sink", p.name, [p.source + " → " + p.sink, rate(p.out_per_sec) + " written", num(p.out) + " records" +
      (p.filtered ? " · " + num(p.filtered) + " filtered" : "")], bad);
    const from = p.group && nodes.some((n) => n.id === "g:" + p.group) ? "g:" + p.group : "t:" + p.reads;
    edges.push({ from, to: "s:" + p.name, rate: p.out_per_sec });
  }
  return { nodes, edges };
}

function drawDiagram(el, v) {
  const m = diagramModel(v);
  const W = 210, H = 84, GAPX = 50, GAPY = 16, PAD = 14;
  const cols = [0, 1, 2, 3].map((c) => m.nodes.filter((n) => n.col === c));
  const usedCols = cols.map((c, i) => (c.length ? i : -1)).filter((i) => i >= 0);
  const xOf = {};
  usedCols.forEach((c, i) => (xOf[c] = PAD + i * (W + GAPX)));
  const rows = Math.max(1, ...cols.map((c) => c.length));
  const height = PAD * 2 + rows * H + (rows - 1) * GAPY;
  const width = PAD * 2 + Math.max(1, usedCols.length) * W + Math.max(0, usedCols.length - 1) * GAPX;
  const pos = {};
  for (const c of usedCols) {
    const list = cols[c];
    const top = (height - (list.length * H + (list.length - 1) * GAPY)) / 2;
    list.forEach((n, i) => (pos[n.id] = { x: xOf[c], y: top + i * (H + GAPY) }));
  }
  const key = m.nodes.map((n) => n.id).join("|") + "#" + m.edges.map((e) => e.from + ">" + e.to).join("|");
  if (el.dataset.key !== key) {
    let svg = `<svg class="diagram" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">`;
    m.edges.forEach((e, i) => {
      const a = pos[e.from], b = pos[e.to];
      if (!a || !b) return;
      const x1 = a.x + W, y1 = a.y + H / 2, x2 = b.x, y2 = b.y + H / 2, mx = (x1 + x2) / 2;
      svg += `<path id="edge-${i}" class="flow" d="M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}"/>`;
    });
    m.nodes.forEach((n, i) => {
      const p = pos[n.id];
      svg += `<g class="node ${n.kind}" transform="translate(${p.x},${p.y})" data-id="${esc(n.id)}"><rect width="${W}" height="${H}"/>
        <text class="title" x="10" y="18" id="node-${i}-t"></text>
        <text x="10" y="36" id="node-${i}-0"></text><text x="10" y="52" id="node-${i}-1"></text><text x="10" y="68" id="node-${i}-2"></text>
        <text x="${W - 10}" y="18" text-anchor="end" class="bad" id="node-${i}-b"></text></g>`;
    });
    svg += "</svg>";
    el.innerHTML = m.nodes.length ? svg : `<div class="empty">No topics with producers or consumers yet.</div>`;
    el.dataset.key = key;
  }
  m.nodes.forEach((n, i) => {
    const set = (sfx, text) => { const t = document.getElementById(`node-${i}-${sfx}`); if (t) t.textContent = text; };
    set("t", n.title.length > 26 ? n.title.slice(0, 25) + "…" : n.title);
    n.lines.forEach((l, j) => set(j, l));
    set("b", n.bad);
  });
  m.edges.forEach((e, i) => {
    const p = document.getElementById("edge-" + i);
    if (p) p.classList.toggle("moving", e.rate > 0.01);
  });
}

// ---- pages ----

function statsRow(items) {
  return `<div class="stats">${items.map(([label, value, id]) => `<div class="stat"><b id="${id || ""}">${value}</b><span>${esc(label)}</span></div>`).join("")}</div>`;
}

const pages = {};

pages.home = () => {
  main.innerHTML = `<h1>Pipeline</h1><div id="stats"></div><div class="grid">
    <div><div id="diagram"></div><p class="muted">Records/s in and out, lag and errors, read through the Kafka protocol every two seconds.
      See <a href="#/pipeline">Pipeline</a>, <a href="#/topics">Topics</a> and <a href="#/groups">Consumer groups</a>.</p></div>
    <div class="card"><h2 style="margin-top:0">Latest tweets <span class="muted" id="live-topic"></span></h2><ul class="tweets" id="tweets"></ul></div></div>`;
  const list = document.getElementById("tweets");
  let feed = null;
  poll(async () => {
    const o = await api("/api/overview");
    document.getElementById("stats").innerHTML = statsRow([["topics", num(o.topics)], ["consumer groups", num(o.groups)],
      ["records kept", num(o.records), "stat-records"], ["produced", rate(o.in_per_sec), "stat-rate"], ["total lag", num(o.total_lag)]]);
    drawDiagram(document.getElementById("diagram"), o.pipeline);
    if (!feed && o.topic) {
      document.getElementById("live-topic").textContent = "in " + o.topic;
      feed = liveFeed(o.topic, (rec) => {
        const li = document.createElement("li");
        li.innerHTML = renderRecord(rec);
        list.prepend(li);
        while (list.children.length > 30) list.lastChild.remove();
      });
    }
  });
};

pages.pipeline = () => {
  main.innerHTML = `<h1>Pipeline</h1><div id="diagram"></div><h2>Pipelines of this process</h2><div id="pipes"></div>`;
  poll(async () => {
    const v = await api("/api/pipeline");
    drawDiagram(document.getElementById("diagram"), v);
    document.getElementById("pipes").innerHTML = v.pipelines.length ? `<table><tr><th>pipeline</th><th>source → sink</th><th>reads</th><th>writes</th>
      <th class="num">in</th><th class="num">out</th><th class="num">in/s</th><th class="num">out/s</th><th class="num">filtered</th>
      <th class="num">dead-lettered</th><th class="num">errors</th><th class="num">lag</th></tr>` +
      v.pipelines.map((p) => `<tr><td>${esc(p.name)}</td><td>${esc(p.source)} → ${esc(p.sink)}</td>
        <td>${p.reads ? link("#/topics/" + enc(p.reads), p.reads) : ""}${p.group ? " (" + link("#/groups/" + enc(p.group), p.group) + ")" : ""}</td>
        <td>${p.writes ? link("#/topics/" + enc(p.writes), p.writes) : ""}</td>
        <td class="num">${num(p.in)}</td><td class="num">${num(p.out)}</td><td class="num">${rate(p.in_per_sec)}</td><td class="num">${rate(p.out_per_sec)}</td>
        <td class="num">${num(p.filtered)}</td><td class="num ${p.dead_letters ? "warn" : ""}">${num(p.dead_letters)}</td>
        <td class="num ${p.errors ? "bad" : ""}">${num(p.errors)}</td><td class="num">${num(p.lag)}</td></tr>`).join("") + "</table>"
      : `<p class="muted">No pipelines run in this process; the diagram shows the cluster's busiest topics and their consumer groups.</p>`;
  });
};

pages.topics = () => {
  main.innerHTML = `<h1>Topics</h1><div class="toolbar"><input id="filter" placeholder="filter by name" size="30">
    <label><input type="checkbox" id="internal"> internal topics</label><span class="muted" id="count"></span>
    <button id="all" hidden>Show all</button></div>
    <div id="create"></div><div id="page-error" class="bad"></div><div id="list"></div>`;
  let data = null, showAll = false;
  const render = () => {
    if (!data) return;
    const f = document.getElementById("filter").value.toLowerCase();
    const internal = document.getElementById("internal").checked;
    const matching = data.topics.filter((t) => (internal || !t.internal) && t.name.toLowerCase().includes(f));
    // A table of thousands of rows takes the browser long to lay out: the
    // first MAX_ROWS show, the filter finds the others.
    const rows = showAll ? matching : matching.slice(0, MAX_ROWS);
    document.getElementById("count").textContent = (rows.length < matching.length ? `showing ${rows.length} of ` : "") + matching.length + " of " + data.topics.length + " topics";
    document.getElementById("all").hidden = rows.length === matching.length;
    const html = [`<table><tr><th>topic</th><th class="num">partitions</th><th class="num">records</th><th class="num">size</th>
      <th class="num">produced</th><th class="num">consumed</th><th>consumer groups</th></tr>`];
    for (const t of rows) {
      html.push(`<tr><td>${link("#/topics/" + enc(t.name), t.name)}${t.error ? ` <span class="bad">${esc(t.error)}</span>` : ""}</td>
        <td class="num">${t.partitions}</td><td class="num">${num(t.records)}</td><td class="num">${bytes(t.size)}</td>
        <td class="num">${rate(t.in_per_sec)}</td><td class="num">${rate(t.out_per_sec)}</td>
        <td>${t.groups.map((g) => link("#/groups/" + enc(g), g)).join(", ")}</td></tr>`);
    }
    html.push("</table>");
    document.getElementById("list").innerHTML = html.join("");
  };
  document.getElementById("filter").addEventListener("input", render);
  document.getElementById("internal").addEventListener("change", render);
  document.getElementById("all").addEventListener("click", () => { showAll = true; render(); });
  poll(async () => {
    data = await api("/api/topics");
    render();
    const c = document.getElementById("create");
    if (data.status.admin && !c.dataset.done) {
      c.dataset.done = "1";
      c.innerHTML = `<div class="toolbar"><input id="new-name" placeholder="new topic"><input id="new-parts" type="number" min="1" placeholder="partitions" style="width:8em">
        <input id="new-configs" placeholder="retention.bytes=1073741824,…" size="30"><button class="primary" id="new-go">Create topic</button></div>`;
      document.getElementById("new-go").addEventListener("click", createTopic);
    }
  });
};

async function createTopic() {
  const name = document.getElementById("new-name").value.trim();
  const partitions = parseInt(document.getElementById("new-parts").value || "0", 10);
  const configs = {};
  for (const kv of document.getElementById("new-configs").value.split(",").map((s) => s.trim()).filter(Boolean)) {
    const i = kv.indexOf("=");
    if (i > 0) configs[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (!name || !confirm(`Create topic ${name}?`)) return;
  await action("/api/topics", "POST", { name, partitions, configs });
}

async function action(path, method, body) {
  try {
    const r = await api(path, { method, headers: { "Content-Type": "application/json", "X-Creek-Confirm": "yes" }, body: body ? JSON.stringify(body) : undefined });
    alert((r.lines || []).join("\n") || "done");
    return r;
  } catch (e) {
    alert("Not done: " + e.message);
    return null;
  }
}

pages.topic = (name) => {
  main.innerHTML = `<h1>Topic ${esc(name)}</h1><div id="page-error" class="bad"></div><div id="stats"></div>
    <h2>Size on disk against retention.bytes</h2><p class="muted" id="waterfall-note"></p><div id="parts"></div><div id="compaction"></div>
    <div class="toolbar" style="margin-top:10px">${link("#/messages?topic=" + enc(name), "Browse messages")} · ${link("#/live?topic=" + enc(name), "Watch live")}
      <span id="admin"></span></div><h2>Configs</h2><div id="configs"></div>`;
  poll(async () => {
    const d = await api("/api/topics/" + enc(name));
    const t = d.topic;
    const ret = d.retention_bytes;
    document.getElementById("stats").innerHTML = statsRow([["partitions", t.partitions.length], ["records", num(t.records)], ["on disk", bytes(t.size)],
      ["retention.bytes per partition", ret > 0 ? bytes(ret) : ret < 0 ? "no limit" : "–"], ["produced", rate(t.in_per_sec)], ["consumed", rate(t.out_per_sec)]]);
    document.getElementById("waterfall-note").textContent = d.compacted && !d.deletes
      ? "Compacted (cleanup.policy=compact): the log cleaner keeps the latest record of each key, and retention.bytes and retention.ms delete nothing."
      : ret > 0
      ? "When a partition passes retention.bytes, its oldest segment falls off first, like water over a fall: the records from its start offset on go next."
      : "No size limit: old records fall off by age only (retention.ms " + (d.retention_ms > 0 ? Math.round(d.retention_ms / 3600000) + " h" : "–") + ").";
    document.getElementById("parts").innerHTML = `<table><tr><th class="num">partition</th><th class="num">leader</th><th>replicas</th><th>in sync</th>
      <th class="num">start offset</th><th class="num">end offset</th><th class="num">records</th><th class="num">size</th><th>of retention.bytes</th></tr>` +
      t.partitions.map((p) => {
        const frac = ret > 0 && p.size >= 0 ? Math.min(1, p.size / ret) : 0;
        return `<tr><td class="num">${p.partition}</td><td class="num">${p.leader}</td><td>${p.replicas.join(",")}</td><td>${p.isr.join(",")}</td>
          <td class="num">${num(p.start)}</td><td class="num">${num(p.end)}</td><td class="num">${num(p.end - p.start)}</td><td class="num">${bytes(p.size)}</td>
          <td>${ret > 0 ? `<div class="bar ${frac > 0.9 ? "full" : ""}" title="${(frac * 100).toFixed(1)} %"><div style="width:${(frac * 100).toFixed(1)}%"></div></div>` : "–"}</td></tr>`;
      }).join("") + "</table>";
    document.getElementById("compaction").innerHTML = !d.compacted ? "" : "<h2>Compaction</h2>" + (!d.compaction
      ? `<p class="muted">The cluster does not report its log cleaner's state (creek brokers do).</p>`
      : `<p class="muted">The dirty ratio is the share of the closed segments written since the last cleaning; the cleaner takes a partition at min.cleanable.dirty.ratio.</p>
        <table><tr><th class="num">partition</th><th class="num">dirty ratio</th><th class="num">clean</th><th class="num">dirty</th><th class="num">first dirty offset</th><th>last cleaning</th></tr>` +
        d.compaction.map((c) => `<tr><td class="num">${c.partition}</td><td class="num">${(100 * c.dirty_ratio).toFixed(0)} %</td><td class="num">${bytes(c.clean_bytes)}</td>
          <td class="num">${bytes(c.dirty_bytes)}</td><td class="num">${num(c.first_dirty_offset)}</td><td>${lastCleaning(c.last_cleaning)}</td></tr>`).join("") + "</table>");
    document.getElementById("configs").innerHTML = d.configs_error ? `<p class="bad">${esc(d.configs_error)}</p>` :
      `<table><tr><th>config</th><th>value</th><th>source</th></tr>` + d.configs.map((c) =>
        `<tr><td>${esc(c.name)}</td><td class="kv">${c.sensitive ? "(sensitive)" : esc(c.value)}</td><td class="muted">${esc(c.source)}</td></tr>`).join("") + "</table>";
    const a = document.getElementById("admin");
    if (d.status.admin && !a.dataset.done) {
      a.dataset.done = "1";
      a.innerHTML = ` · <button class="danger" id="delete">Delete topic</button>`;
      document.getElementById("delete").addEventListener("click", async () => {
        if (prompt(`Deleting ${name} removes all its records and cannot be undone. Type the topic's name to confirm:`) !== name) return;
        if (await action("/api/topics/" + enc(name), "DELETE")) location.hash = "#/topics";
      });
    }
  });
};

pages.groups = () => {
  main.innerHTML = `<h1>Consumer groups</h1><div class="toolbar"><input id="filter" placeholder="filter by name" size="30"></div>
    <div id="page-error" class="bad"></div><div id="list"></div>`;
  let data = null;
  const render = () => {
    if (!data) return;
    const f = document.getElementById("filter").value.toLowerCase();
    const rows = data.groups.filter((g) => g.group.toLowerCase().includes(f));
    document.getElementById("list").innerHTML = rows.length ? `<table><tr><th>group</th><th>type</th><th>state</th><th class="num">members</th><th>topics</th>
      <th class="num">lag</th><th class="num">committed</th><th>lag, last hour</th></tr>` + rows.map((g) =>
      `<tr><td>${link("#/groups/" + enc(g.group), g.group)}${g.error ? ` <span class="bad">${esc(g.error)}</span>` : ""}</td><td>${esc(g.type)}</td>
       <td>${esc(g.state)}</td><td class="num">${g.members}</td><td>${g.topics.map((t) => link("#/topics/" + enc(t), t)).join(", ")}</td>
       <td class="num">${num(g.total_lag)}</td><td class="num">${rate(g.commits_per_sec)}</td><td>${spark(g.lag_history)}</td></tr>`).join("") + "</table>"
      : `<div class="empty">No consumer groups.</div>`;
  };
  document.getElementById("filter").addEventListener("input", render);
  poll(async () => { data = await api("/api/groups"); render(); });
};

pages.group = (name) => {
  main.innerHTML = `<h1>Consumer group ${esc(name)}</h1><div id="page-error" class="bad"></div><div id="stats"></div>
    <h2>Lag over the last hour</h2><div class="card chartbox" style="height:220px"><canvas id="lag"></canvas></div>
    <h2>Members</h2><div id="members"></div><h2>Partitions</h2><div id="parts"></div><div id="admin"></div>`;
  const lagChart = chart(document.getElementById("lag"), { type: "line", data: { labels: [], datasets: [{ label: "total lag (records)", data: [], borderColor: "#1f6feb", pointRadius: 0, fill: false }] },
    options: Object.assign(baseChartOptions(), { scales: { y: { beginAtZero: true } } }) });
  poll(async () => {
    const { group: g, status: st } = await api("/api/groups/" + enc(name));
    document.getElementById("stats").innerHTML = statsRow([["type", esc(g.type)], ["state", esc(g.state)], ["members", g.members.length],
      ["total lag", num(g.total_lag)], ["committed", rate(g.commits_per_sec)], ["assignor", esc(g.protocol || "–")]]);
    lagChart.onReady = (c) => {
      c.data.labels = g.lag_history.map((s) => clock(s.t));
      c.data.datasets[0].data = g.lag_history.map((s) => s.v);
      c.update("none");
    };
    if (lagChart.chart) lagChart.onReady(lagChart.chart);
    document.getElementById("members").innerHTML = g.members.length ? `<table><tr><th>member</th><th>client</th><th>host</th><th>assigned</th></tr>` +
      g.members.map((m) => `<tr><td class="kv">${esc(m.member_id)}</td><td>${esc(m.client_id)}</td><td>${esc(m.host)}</td><td>${esc((m.assigned || []).join(", "))}</td></tr>`).join("") + "</table>"
      : `<p class="muted">No members: nobody reads with this group now.</p>`;
    document.getElementById("parts").innerHTML = `<table><tr><th>topic</th><th class="num">partition</th><th class="num">committed</th><th class="num">end</th>
      <th class="num">lag</th><th>member</th></tr>` + g.partitions.map((p) => `<tr><td>${link("#/topics/" + enc(p.topic), p.topic)}</td><td class="num">${p.partition}</td>
      <td class="num">${num(p.committed)}</td><td class="num">${num(p.end)}</td><td class="num">${num(p.lag)}</td><td>${esc(p.client_id || "")}</td></tr>`).join("") + "</table>";
    const a = document.getElementById("admin");
    if (st.admin && !a.dataset.done) {
      a.dataset.done = "1";
      const topics = [...new Set(g.partitions.map((p) => p.topic))];
      a.innerHTML = `<h2>Reset offsets</h2><div class="toolbar"><select id="r-topic">${topics.map((t) => `<option>${esc(t)}</option>`).join("")}</select>
        <select id="r-to"><option value="earliest">to earliest</option><option value="latest">to latest</option><option value="offset">to offset</option><option value="datetime">to time</option></select>
        <input id="r-arg" placeholder="offset or 2026-11-24T09:00:00+09:00" size="28"><button class="danger" id="r-go">Reset…</button></div>`;
      document.getElementById("r-go").addEventListener("click", async () => {
        const to = document.getElementById("r-to").value, arg = document.getElementById("r-arg").value;
        const body = { topics: [document.getElementById("r-topic").value], to, offset: to === "offset" ? parseInt(arg, 10) : 0, datetime: to === "datetime" ? arg : "", dry_run: true };
        let plan;
        try {
          plan = await api(`/api/groups/${enc(name)}/reset-offsets`, { method: "POST", headers: { "Content-Type": "application/json", "X-Creek-Confirm": "yes" }, body: JSON.stringify(body) });
        } catch (e) { alert("Not possible: " + e.message); return; }
        const lines = plan.plan.rows.map((r) => `${r.topic}/${r.partition}: ${r.current < 0 ? "-" : r.current} → ${r.new}`).join("\n");
        if (!confirm(`Reset ${name}?\n\n${lines}`)) return;
        body.dry_run = false;
        await action(`/api/groups/${enc(name)}/reset-offsets`, "POST", body);
      });
    }
  });
};

function tweetMatches(rec, f) {
  const value = typeof rec.value === "string" ? rec.value : JSON.stringify(rec.value);
  if (f.text && !(rec.tweet ? rec.tweet.text + " " + rec.tweet.author : value).toLowerCase().includes(f.text)) return false;
  if (f.key && !(rec.key || "").toLowerCase().includes(f.key)) return false;
  if (f.lang && !(rec.tweet && rec.tweet.lang === f.lang)) return false;
  if (f.header) {
    const [k, v] = f.header.split("=");
    if (!(rec.headers || []).some((x) => x.key === k && (v === undefined || x.value.includes(v)))) return false;
  }
  return true;
}

pages.live = (params) => {
  main.innerHTML = `<h1>Live tweets</h1><div class="toolbar"><select id="topic"></select><button id="pause">Pause</button>
    <input id="f-text" placeholder="text or author"><input id="f-key" placeholder="key" size="10"><select id="f-lang"><option value="">any language</option></select>
    <input id="f-header" placeholder="header name=value" size="16"><span class="muted" id="info"></span></div><ul class="tweets" id="tweets"></ul>`;
  const list = document.getElementById("tweets");
  let all = [], paused = false, held = 0, feed = null, received = 0;
  const langs = new Set();
  const filters = () => ({ text: document.getElementById("f-text").value.toLowerCase(), key: document.getElementById("f-key").value.toLowerCase(),
    lang: document.getElementById("f-lang").value, header: document.getElementById("f-header").value });
  const info = () => { document.getElementById("info").textContent = `${received} received` + (paused ? ` · paused, ${held} waiting` : ""); };
  const render = () => {
    const f = filters();
    list.innerHTML = all.filter((r) => tweetMatches(r, f)).slice(0, 200).map((r) => `<li>${renderRecord(r)}</li>`).join("");
  };
  const addLang = (l) => {
    if (!l || langs.has(l)) return;
    langs.add(l);
    const o = document.createElement("option"); o.value = l; o.textContent = l; document.getElementById("f-lang").append(o);
  };
  const start = (topic) => {
    if (feed) feed.close();
    all = []; received = 0; render();
    feed = liveFeed(topic, (rec) => {
      received++;
      all.unshift(rec);
      if (all.length > 1000) all.pop();
      if (rec.tweet) addLang(rec.tweet.lang);
      if (paused) { held++; info(); return; }
      if (tweetMatches(rec, filters())) {
        const li = document.createElement("li"); li.innerHTML = renderRecord(rec); list.prepend(li);
        while (list.children.length > 200) list.lastChild.remove();
      }
      info();
    }, (i) => { if (i.skipped) document.getElementById("info").textContent += ` · ${i.skipped} skipped (too fast to show)`; });
  };
  document.getElementById("pause").addEventListener("click", (ev) => {
    paused = !paused; ev.target.textContent = paused ? "Resume" : "Pause"; held = 0;
    if (!paused) render();
    info();
  });
  for (const id of ["f-text", "f-key", "f-header"]) document.getElementById(id).addEventListener("input", render);
  document.getElementById("f-lang").addEventListener("change", render);
  const sel = document.getElementById("topic");
  sel.addEventListener("change", () => start(sel.value));
  api("/api/overview").then(async (o) => {
    const ts = await api("/api/topics");
    const want = params.get("topic") || o.topic;
    sel.innerHTML = ts.topics.filter((t) => !t.internal).map((t) => `<option ${t.name === want ? "selected" : ""}>${esc(t.name)}</option>`).join("");
    if (want) start(want);
  }).catch(() => {});
};

pages.messages = (params) => {
  main.innerHTML = `<h1>Messages</h1><div class="toolbar"><select id="m-topic"></select> partition <input id="m-part" type="number" min="0" value="${esc(params.get("partition") || "0")}" style="width:5em">
    <select id="m-from"><option value="newest">newest</option><option value="offset">from offset</option><option value="time">from time</option></select>
    <input id="m-at" placeholder="offset or 2026-11-24T09:00" size="20"><input id="m-q" placeholder="search text" size="16"><input id="m-key" placeholder="key" size="10">
    <input id="m-limit" type="number" min="1" max="1000" value="50" style="width:5em"><button class="primary" id="m-read">Read</button><button id="m-next">Next</button>
    <button id="m-export">Export JSON</button></div><div id="page-error" class="bad"></div><p class="muted" id="m-info"></p><ul class="tweets" id="m-list"></ul>`;
  let shown = [], next = null;
  const read = async (fromNext) => {
    const q = new URLSearchParams({ partition: document.getElementById("m-part").value || "0", limit: document.getElementById("m-limit").value || "50" });
    const mode = document.getElementById("m-from").value, at = document.getElementById("m-at").value.trim();
    if (fromNext && next != null) q.set("offset", next);
    else if (mode === "offset" && at) q.set("offset", at);
    else if (mode === "time" && at) q.set("time", at);
    if (document.getElementById("m-q").value) q.set("q", document.getElementById("m-q").value);
    if (document.getElementById("m-key").value) q.set("key", document.getElementById("m-key").value);
    document.getElementById("page-error").textContent = "";
    try {
      const r = await api(`/api/topics/${enc(document.getElementById("m-topic").value)}/messages?` + q);
      shown = r.records; next = r.next;
      document.getElementById("m-info").textContent = `${r.records.length} record(s) from offset ${r.from} (scanned ${r.scanned}); partition holds ${r.start}…${r.end - 1}. ${r.note || ""}`;
      document.getElementById("m-list").innerHTML = shown.map((x) => `<li>${renderRecord(x)}</li>`).join("") || `<li class="empty">No records.</li>`;
    } catch (e) { document.getElementById("page-error").textContent = e.message; }
  };
  document.getElementById("m-read").addEventListener("click", () => read(false));
  document.getElementById("m-next").addEventListener("click", () => read(true));
  document.getElementById("m-export").addEventListener("click", () => {
    const blob = new Blob([JSON.stringify(shown, null, 2)], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = `${document.getElementById("m-topic").value}-${document.getElementById("m-part").value}.json`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  });
  api("/api/topics").then((ts) => {
    const want = params.get("topic") || (ts.topics.find((t) => !t.internal && t.records > 0) || {}).name;
    document.getElementById("m-topic").innerHTML = ts.topics.filter((t) => !t.internal).map((t) => `<option ${t.name === want ? "selected" : ""}>${esc(t.name)}</option>`).join("");
    if (want) read(false);
  }).catch(() => {});
};

const LANG_COLORS = ["#1f6feb", "#cf222e", "#1a7f37", "#bf8700", "#8250df", "#0598bc", "#e16f24", "#57606a"];

pages.analytics = () => {
  main.innerHTML = `<h1>Tweet analytics</h1><p class="muted" id="a-info"></p><div id="stats"></div><div class="charts">
    <div class="card"><h2 style="margin-top:0">Tweets per minute by language</h2><div class="chartbox"><canvas id="a-chart"></canvas></div></div>
    <div class="card"><h2 style="margin-top:0">Top hashtags</h2><ol class="top" id="a-tags"></ol></div>
    <div class="card"><h2 style="margin-top:0">Top authors</h2><ol class="top" id="a-authors"></ol></div></div>`;
  const perMinute = chart(document.getElementById("a-chart"), { type: "bar", data: { labels: [], datasets: [] },
    options: Object.assign(baseChartOptions(), { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } }) });
  const topList = (items) => items.length ? items.map((x) => `<li>${esc(x.value)}<span class="n">${num(x.count)}</span></li>`).join("") : `<li class="muted">none yet</li>`;
  poll(async () => {
    const a = await api("/api/analytics");
    document.getElementById("a-info").textContent = a.disabled ? "Analytics are turned off." :
      `Computed by the consumer group ${a.group} on ${a.topic || "(waiting for a topic)"} over the last ${a.window_minutes} minutes.` + (a.error ? " " + a.error : "");
    const last = a.per_minute.length ? a.per_minute[a.per_minute.length - 1].total : 0;
    document.getElementById("stats").innerHTML = statsRow([["tweets in the window", num(a.tweets), "a-total"], ["this minute", num(last)],
      ["languages", a.languages.length], ["other records", num(a.other_records)]]);
    document.getElementById("a-tags").innerHTML = topList(a.top_hashtags.map((x) => ({ value: "#" + x.value, count: x.count })));
    document.getElementById("a-authors").innerHTML = topList(a.top_authors);
    perMinute.onReady = (c) => {
      const langs = a.languages.map((l) => l.value);
      c.data.labels = a.per_minute.map((m) => minuteFormat.format(new Date(m.t)));
      c.data.datasets = langs.map((l, i) => ({ label: l, data: a.per_minute.map((m) => m.langs[l] || 0), backgroundColor: LANG_COLORS[i % LANG_COLORS.length] }));
      c.update("none");
    };
    if (perMinute.chart) perMinute.onReady(perMinute.chart);
  });
};

// ---- routing ----

function route() {
  for (const fn of cleanups) { try { fn(); } catch (e) { /* already gone */ } }
  cleanups = [];
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  const params = new URLSearchParams(query || "");
  const parts = path.split("/").map(decodeURIComponent);
  let page = "home";
  if (parts[0] === "topics" && parts[1]) { page = "topics"; pages.topic(parts.slice(1).join("/")); }
  else if (parts[0] === "groups" && parts[1]) { page = "groups"; pages.group(parts.slice(1).join("/")); }
  else if (pages[parts[0]] && parts[0] !== "topic" && parts[0] !== "group") { page = parts[0]; pages[page](params); }
  else pages.home(params);
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.page === page);
  document.title = "creek · " + (page === "home" ? "dashboard" : page);
}

window.addEventListener("hashchange", route);
route();
setTimeout(loadChartLib, 500);
