// pgrules report: everything below draws from the JSON embedded in the
// page. No request is made; charts are SVG drawn here, with a label on
// every bar and a pattern per series, so colour is never the only cue.
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const S = D.stats || {};
  const NS = "http://www.w3.org/2000/svg";

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  function svg(tag, attrs, ...kids) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  }
  const fmt = (n) => (n == null ? "–" : Number(n).toLocaleString("en-US"));
  const pct = (x) => (100 * x).toFixed(1) + "%";
  const entries = (m) => Object.entries(m || {}).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));

  // Series styles: a colour and a pattern each, so a reader who cannot
  // tell the colours apart still tells the bars apart.
  const COLORS = ["#2d5aa8", "#c0552b", "#2f7d4f", "#8a4fb0", "#b08800", "#2a8a8a", "#a33b6b", "#5b6475", "#6d8a2a", "#3b3bb2"];
  const PATTERNS = ["solid", "diag", "dots", "cross", "hline", "vline", "rdiag", "grid", "bigdots", "zigzag"];
  // The patterns live once in the page, in a hidden SVG every chart
  // refers to.
  function defs() {
    const root = svg("svg", { width: 0, height: 0, "aria-hidden": "true", style: "position:absolute" });
    document.body.prepend(root);
    const d = svg("defs");
    PATTERNS.forEach((p, i) => {
      const id = "pat-" + i;
      const pat = svg("pattern", { id, width: 8, height: 8, patternUnits: "userSpaceOnUse" });
      const c = COLORS[i % COLORS.length];
      pat.append(svg("rect", { width: 8, height: 8, fill: c, "fill-opacity": p === "solid" ? 1 : 0.35 }));
      const line = (x1, y1, x2, y2) => pat.append(svg("line", { x1, y1, x2, y2, stroke: c, "stroke-width": 2 }));
      if (p === "diag") line(0, 8, 8, 0);
      if (p === "rdiag") line(0, 0, 8, 8);
      if (p === "cross") { line(0, 8, 8, 0); line(0, 0, 8, 8); }
      if (p === "hline") line(0, 4, 8, 4);
      if (p === "vline") line(4, 0, 4, 8);
      if (p === "grid") { line(0, 4, 8, 4); line(4, 0, 4, 8); }
      if (p === "dots") pat.append(svg("circle", { cx: 4, cy: 4, r: 1.6, fill: c }));
      if (p === "bigdots") pat.append(svg("circle", { cx: 4, cy: 4, r: 2.8, fill: c }));
      if (p === "zigzag") pat.append(svg("polyline", { points: "0,6 2,2 4,6 6,2 8,6", fill: "none", stroke: c, "stroke-width": 1.5 }));
      d.append(pat);
    });
    const hatch = svg("pattern", { id: "pat-shadow", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.append(svg("rect", { width: 6, height: 6, fill: "#8a93a6", "fill-opacity": 0.25 }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#5b6475", "stroke-width": 2 }));
    d.append(hatch);
    root.append(d);
  }
  defs();
  const fillOf = (i) => "url(#pat-" + (i % PATTERNS.length) + ")";
  function swatch(i) {
    const s = svg("svg", { width: 16, height: 12 });
    s.append(svg("rect", { width: 16, height: 12, fill: fillOf(i), stroke: COLORS[i % COLORS.length] }));
    return s;
  }
  function host(name) { return document.querySelector('[data-chart="' + name + '"]'); }
  function empty(h, msg) { h.append(el("p", { class: "note", text: msg })); }

  // Horizontal bars: rows of {label, value, text, fill, sub}.
  function hbars(name, rows, max) {
    const h = host(name);
    if (!rows.length) return empty(h, "nothing to show");
    const W = 1200, L = 330, R = 230, BH = 22, G = 8;
    const H = rows.length * (BH + G) + 10;
    const root = svg("svg", { class: "chart", "data-chart": name, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
    max = max || Math.max(1, ...rows.map((r) => r.value));
    rows.forEach((r, i) => {
      const y = 5 + i * (BH + G);
      const w = Math.max(r.value > 0 ? 2 : 0, ((W - L - R) * r.value) / max);
      root.append(svg("text", { x: L - 8, y: y + BH * 0.7, "text-anchor": "end", text: r.label }));
      root.append(svg("rect", { x: L, y, width: w, height: BH, fill: r.fill || fillOf(0), stroke: "#1d2330", "stroke-width": 0.5, "data-value": r.value }, svg("title", { text: r.label + ": " + (r.text || fmt(r.value)) })));
      root.append(svg("text", { x: L + w + 6, y: y + BH * 0.7 }, r.text || fmt(r.value), r.sub ? svg("tspan", { class: "muted", dx: 10, text: r.sub }) : null));
    });
    h.append(root);
  }

  // Stacked horizontal bars: groups × series, with a legend.
  function stacked(name, groups, series) {
    const h = host(name);
    const names = Object.keys(groups).sort();
    if (!names.length) return empty(h, "no rejections");
    const legend = el("div", { class: "legend" });
    series.forEach((s, i) => legend.append(el("span", {}, swatch(i), s)));
    const W = 1200, L = 230, R = 90, BH = 22, G = 8;
    const H = names.length * (BH + G) + 10;
    const root = svg("svg", { class: "chart", "data-chart": name, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img" });
    const totals = names.map((g) => series.reduce((a, s) => a + (groups[g][s] || 0), 0));
    const max = Math.max(1, ...totals);
    names.forEach((g, gi) => {
      const y = 5 + gi * (BH + G);
      let x = L;
      root.append(svg("text", { x: L - 8, y: y + BH * 0.7, "text-anchor": "end", text: g }));
      series.forEach((s, si) => {
        const v = groups[g][s] || 0;
        if (!v) return;
        const w = ((W - L - R) * v) / max;
        root.append(svg("rect", { x, y, width: w, height: BH, fill: fillOf(si), stroke: "#1d2330", "stroke-width": 0.5, "data-value": v }, svg("title", { text: `${g} · ${s}: ${v}` })));
        if (w > 22) root.append(svg("text", { x: x + 3, y: y + BH * 0.7, text: String(v) }));
        x += w;
      });
      root.append(svg("text", { x: x + 6, y: y + BH * 0.7, text: fmt(totals[gi]) }));
    });
    h.append(legend, root);
  }

  function table(headers, rows, numeric) {
    const t = el("table");
    const tr = el("tr");
    headers.forEach((x, i) => tr.append(el("th", { text: x, class: numeric && numeric.includes(i) ? "num" : "" })));
    t.append(el("thead", {}, tr));
    const tb = el("tbody");
    rows.forEach((r) => {
      const row = el("tr");
      r.forEach((x, i) => row.append(el("td", { text: x == null ? "" : String(x), class: numeric && numeric.includes(i) ? "num" : "" })));
      tb.append(row);
    });
    t.append(tb);
    return t;
  }

  // ---- header and summary ----
  const P = D.provenance || {};
  const health = P.health || {};
  document.getElementById("top").append(
    el("h1", { text: "pgrules report" }),
    el("div", { class: "meta", text: `${D.out_dir} · run ${P.run_id || "?"} · ${P.created_at || ""} · pgrules ${P.pgrules_version || "?"} · ${P.gating_mode || ""} mode · generated ${D.generated_at}` }));
  const sum = S.summary || {};
  const cards = el("div", { class: "cards" });
  const card = (k, v, cls) => cards.append(el("div", { class: "card" }, el("div", { class: "k", text: k }), el("div", { class: "v " + (cls || ""), text: v })));
  card("input ids", fmt(sum.total_inputs));
  card("accepted", fmt(sum.accepted), "ok");
  card("rejected", fmt(sum.rejected), "bad");
  card("acceptance", pct(sum.acceptance_rate || 0));
  card("cost", S.cost_usd == null ? "not reported" : "$" + S.cost_usd.toFixed(4));
  card("tokens", fmt((S.tokens || {}).total_tokens));
  card("health", health.healthy === false ? "UNHEALTHY (committed anyway)" : "healthy", health.healthy === false ? "bad" : "ok");
  document.getElementById("summary").append(cards);
  if (D.mismatch) document.getElementById("summary").append(el("p", { class: "bad", text: "Warning: " + D.mismatch + ". The funnel and samples follow the records." }));
  (D.problems || []).forEach((p) => document.getElementById("summary").append(el("p", { class: "bad", text: "Warning: " + p })));
  if (health.detail_errors) document.getElementById("summary").append(el("p", { class: "bad", text:
    `Warning: details that failed to evaluate on ${fmt(health.detail_errors)} sample(s), the first ${health.detail_error_sample}; the records read "error: …" there, and the decisions stand.` }));
  const notStored = (S.cache || {}).not_stored;
  if (notStored) document.getElementById("summary").append(el("p", { class: "bad", text:
    `Warning: ${fmt(notStored)} answer(s) the teacher gave this run could not be stored in the response cache: a rerun pays for them again (cache.not_stored in the stats).` }));
  const dups = S.duplicate_responses;
  if (dups && dups.records) document.getElementById("summary").append(el("p", { class: "bad", text:
    `Warning: ${fmt(dups.records)} accepted record(s) repeat an earlier one's response, so the dataset holds those examples twice: ` +
    dups.first.map((d) => `${d.id} is ${d.same_as}`).join(", ") + (dups.records > dups.first.length ? ", …" : "") + " (duplicate_responses in the stats)." }));

  // ---- funnel ----
  hbars("funnel", (D.funnel || []).map((s, i) => ({
    label: s.label, value: s.count, fill: fillOf(0),
    sub: Object.keys(s.lost || {}).length ? "lost: " + entries(s.lost).map(([r, n]) => `${r} ${fmt(n)}`).join(", ") : "",
  })), (D.funnel[0] || {}).count);
  const fh = host("funnel");
  (D.funnel || []).forEach((s) => fh.append(el("span", { class: "funnel-step", "data-step": s.label, "data-count": s.count, hidden: "" })));

  // ---- gates ----
  const actions = {};
  (D.gates || []).forEach((g) => (actions[g.name] = g.action));
  const rates = S.gate_pass_rates || {};
  hbars("gates", Object.entries(rates).map(([g, r]) => ({
    label: g + (r.action && r.action !== "reject" ? ` (${r.action}, shadow)` : ""),
    value: r.pass_rate, text: `${pct(r.pass_rate)} (${fmt(r.passed)} of ${fmt(r.evaluated)})`,
    fill: r.action && r.action !== "reject" ? "url(#pat-shadow)" : fillOf(2),
  })), 1);

  // ---- reasons by ----
  const by = S.rejection_reasons_by || {};
  const allReasons = entries(S.rejection_reasons).map(([r]) => r);
  for (const dim of ["payload_type", "category", "difficulty"]) stacked("reasons-" + dim, by[dim] || {}, allReasons);

  // ---- shadow gates ----
  const sb = document.getElementById("shadow-body");
  const shadow = Object.entries(rates).filter(([, r]) => r.action && r.action !== "reject");
  if (!shadow.length) sb.append(el("p", { class: "note", text: "No warn or audit gate in these rules." }));
  else {
    sb.append(el("p", { class: "note", text: "What each shadow gate would have rejected, were it enforced." }));
    const rows = shadow.map(([g, r]) => [g, r.action, fmt(r.failed), pct(r.pass_rate)]);
    sb.append(table(["gate", "action", "samples it would reject", "pass rate"], rows, [2, 3]));
    const w = entries(S.warning_reasons).concat(entries(S.audit_reasons));
    if (w.length) sb.append(table(["reason", "samples"], w.map(([r, n]) => [r, fmt(n)]), [1]));
  }

  // ---- teacher ----
  const tb = document.getElementById("teacher-body");
  const calls = S.teacher_calls || {};
  const lat = S.latency_s || {};
  tb.append(table(["calls", "succeeded", "failed", "retries", "rate limited (429)", "cache hits", "tokens", "cost"],
    [[fmt(calls.calls), fmt(calls.succeeded), fmt(calls.failed), fmt(calls.retries), fmt(calls.rate_limited), fmt((S.cache || {}).hits), fmt((S.tokens || {}).total_tokens), S.cost_usd == null ? "not reported" : "$" + S.cost_usd.toFixed(4)]], [0, 1, 2, 3, 4, 5, 6]));
  const fails = entries(calls.failures_by_code);
  tb.append(el("h3", { text: "Failures by kind" }), fails.length ? table(["code", "calls"], fails.map(([c, n]) => [c, fmt(n)]), [1]) : el("p", { class: "note", text: "none" }));
  tb.append(el("h3", { text: "Models" }), table(["model", "answers"], entries(S.teacher_models).map(([m, n]) => [m, fmt(n)]), [1]));
  const fb = entries(S.teacher_fallbacks);
  tb.append(el("h3", { text: "Fallbacks" }), fb.length ? table(["why a model fell back", "times"], fb.map(([c, n]) => [c, fmt(n)]), [1]) : el("p", { class: "note", text: "No answer needed a fallback model." }));
  tb.append(el("h3", { text: "Latency percentiles (s)" }), table(["count", "mean", "p50", "p90", "p99", "max"], [[fmt(lat.count), lat.mean, lat.p50, lat.p90, lat.p99, lat.max]], [0, 1, 2, 3, 4, 5]));
  let prev = 0;
  // Buckets past the slowest answer say nothing: the chart stops one after.
  const hist = lat.histogram || [];
  let lastFull = -1;
  hist.forEach((b, i) => { if (b.count) lastFull = i; });
  hbars("latency", hist.slice(0, Math.min(hist.length, lastFull + 2)).map((b) => {
    const label = b.le == null ? `> ${prev} s` : `${prev}–${b.le} s`;
    if (b.le != null) prev = b.le;
    return { label, value: b.count, fill: fillOf(1) };
  }));

  // ---- input problems ----
  const pb = document.getElementById("problems-body");
  const probs = S.input_problems || [];
  const skipped = (S.skipped || {}).input_problems || 0;
  if (!skipped) pb.append(el("p", { class: "note", text: "No bad input line." }));
  else {
    pb.append(el("p", { class: "note", text: `${fmt(skipped)} bad line(s)` + (skipped > probs.length ? `; the first ${probs.length} are listed` : "") + "." }));
    pb.append(table(["where", "id", "problem"], probs.map((p) => [p.file + ":" + p.line + (p.col ? ":" + p.col : ""), p.id || "", p.error])));
  }

  // ---- changes ----
  const cb = document.getElementById("changes-body");
  if (!D.changes) cb.append(el("p", { class: "note", text: "No previous run to compare with (pass --compare OTHER_OUT_DIR to compare with another out dir)." }));
  else {
    const c = D.changes.changes;
    const moved = new Set([].concat(...Object.values(c.newly_rejected || {}), ...Object.values(c.newly_accepted || {})));
    cb.append(el("p", { text: `Against ${D.changes.against}: ${fmt(moved.size)} moved, ${fmt((c.reason_changed || []).length)} rejected for other reasons, ${fmt(c.unchanged)} unchanged, ${fmt((c.new || []).length)} new, ${fmt((c.gone || []).length)} gone.` }));
    const rows = [];
    for (const [r, ids] of entries(Object.fromEntries(Object.entries(c.newly_rejected || {}).map(([k, v]) => [k, v])))) rows.push(["now rejected", r, fmt(c.newly_rejected[r].length), c.newly_rejected[r].slice(0, 20).join(" ") + (c.newly_rejected[r].length > 20 ? " …" : "")]);
    for (const r of Object.keys(c.newly_accepted || {}).sort()) rows.push(["now accepted, was", r, fmt(c.newly_accepted[r].length), c.newly_accepted[r].slice(0, 20).join(" ") + (c.newly_accepted[r].length > 20 ? " …" : "")]);
    if (rows.length) cb.append(table(["moved", "reason", "ids", "which"], rows, [2]));
    if ((c.reason_changed || []).length) cb.append(el("h3", { text: "Rejected for other reasons" }), table(["id", "before", "after"], c.reason_changed.slice(0, 100).map((x) => [x.id, (x.before || []).join(", "), (x.after || []).join(", ")])));
    if ((c.files_changed || []).length) cb.append(el("h3", { text: "Files that differ" }), table(["kind", "what", "sha256 before", "after"], c.files_changed.map((f) => [f.kind, f.name, (f.before || "–").slice(0, 12), (f.after || "–").slice(0, 12)])));
    if ((D.changes.gate_deltas || []).length) cb.append(el("h3", { text: "Gate pass rates" }), table(["gate", "before", "now", "change (points)"], D.changes.gate_deltas.map((g) => [g.gate, pct(g.a), pct(g.b), (100 * g.delta).toFixed(2)]), [1, 2, 3]));
  }

  // ---- sample browser ----
  const samples = D.samples || [];
  document.getElementById("sample-note").textContent = `${fmt(samples.length)} of ${fmt(D.samples_total)} records are embedded: the first few of each decision, reason and category (the files hold them all; pgrules explain ID shows any).` +
    (D.rules_path ? ` Keyword hits are found with the word lists of ${D.rules_path}.` : "") + (D.plan_note ? ` Note: ${D.plan_note}.` : "");
  const fill = (id, values) => {
    const s = document.getElementById(id);
    [...new Set(values)].filter(Boolean).sort().forEach((v) => s.append(el("option", { value: v, text: v })));
  };
  fill("filter-reason", [].concat(...samples.map((s) => s.reasons.concat(s.warnings || []))));
  fill("filter-payload", samples.map((s) => s.payload_type));
  fill("filter-category", samples.map((s) => s.category));
  const tbody = document.querySelector("#samples tbody");
  samples.forEach((s, i) => {
    const tr = el("tr", { "data-index": i },
      el("td", {}, el("code", { text: s.id })),
      el("td", { class: "decision-" + (s.accepted ? "accepted" : "rejected"), text: s.accepted ? "accepted" : "rejected" }),
      el("td", { text: s.reasons.join(", ") + ((s.warnings || []).length ? " (warn: " + s.warnings.join(", ") + ")" : "") }),
      el("td", { text: (s.payload_type || "?") + " · " + (s.category || "?") }));
    tr.addEventListener("click", () => open(i, tr));
    tbody.append(tr);
    s._hay = (s.id + " " + s.reasons.join(" ") + " " + (s.warnings || []).join(" ") + " " + s.answer + " " + (s.strings || []).map((l) => l.value).join(" ")).toLowerCase();
  });
  const F = (id) => document.getElementById(id);
  function apply() {
    const dec = F("filter-decision").value, rs = F("filter-reason").value, pt = F("filter-payload").value, cat = F("filter-category").value;
    const words = F("filter-text").value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    tbody.querySelectorAll("tr").forEach((tr) => {
      const s = samples[+tr.dataset.index];
      const ok = (!dec || (dec === "accepted") === s.accepted) && (!rs || s.reasons.includes(rs) || (s.warnings || []).includes(rs)) &&
        (!pt || s.payload_type === pt) && (!cat || s.category === cat) && words.every((w) => s._hay.includes(w));
      tr.hidden = !ok;
      if (ok) shown++;
    });
    F("filter-count").textContent = `${shown} shown`;
  }
  ["filter-decision", "filter-reason", "filter-payload", "filter-category"].forEach((id) => F(id).addEventListener("change", apply));
  F("filter-text").addEventListener("input", apply);
  apply();

  function highlight(value, terms) {
    const span = el("span");
    if (!terms.length) { span.textContent = value; return span; }
    const esc = terms.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replace(/'/g, "['\u2019]"));
    const re = new RegExp("(" + esc.join("|") + ")", "gi");
    let last = 0, m;
    while ((m = re.exec(value))) {
      if (!m[0]) { re.lastIndex++; continue; }
      span.append(value.slice(last, m.index), el("mark", { class: "hit", text: m[0] }));
      last = m.index + m[0].length;
    }
    span.append(value.slice(last));
    return span;
  }

  function open(i, tr) {
    tbody.querySelectorAll("tr.selected").forEach((x) => x.classList.remove("selected"));
    tr.classList.add("selected");
    const s = samples[i];
    const d = F("sample-detail");
    d.replaceChildren();
    d.append(el("h3", {}, el("code", { text: s.id }), " ", el("span", { class: "decision-" + (s.accepted ? "accepted" : "rejected"), text: s.accepted ? "accepted" : "rejected " + s.reasons.join(", ") })));
    d.append(el("p", { class: "note", text: `${s.payload_type} · ${s.category} · ${s.difficulty}` }));
    if ((s.errors || []).length) d.append(el("h4", { text: "Contract" }), el("pre", { text: s.errors.join("\n") }));
    d.append(el("h4", { text: "Gates" }));
    const gates = s.gates || {};
    const gt = table(["gate", "result", "reason", "details"], Object.entries(gates).map(([g, r]) => [
      g + (actions[g] && actions[g] !== "reject" ? ` (${actions[g]})` : ""),
      r.passed == null ? "not evaluated" : r.passed ? "passed" : "FAILED", r.reason_code, JSON.stringify(r.details)]));
    gt.prepend(el("colgroup", {}, el("col", { class: "c-gate" }), el("col", { class: "c-res" }), el("col", { class: "c-why" }), el("col")));
    gt.querySelectorAll("tbody td:nth-child(4)").forEach((td) => td.classList.add("details"));
    d.append(gt);
    d.append(el("h4", { text: `Keyword hits (${s.hits.length})` }));
    if (s.hits.length) {
      const ul = el("ul", { class: "hits" });
      s.hits.forEach((h) => ul.append(el("li", { class: "hit-row" }, el("span", { class: "pill", text: h.list }), " ", el("mark", { class: "hit", text: h.term }), " at ", el("code", { text: h.path }), ": ", el("span", { class: "note", text: h.text }))));
      d.append(ul);
    } else d.append(el("p", { class: "note", text: "none" }));
    d.append(el("h4", { text: "Answer" }));
    if ((s.strings || []).length) {
      const byPath = {};
      s.hits.forEach((h) => (byPath[h.path] = (byPath[h.path] || []).concat(h.term)));
      s.strings.forEach((l) => d.append(el("div", { class: "leaf" }, el("span", { class: "path", text: l.path + " " }), highlight(l.value, byPath[l.path] || []))));
    }
    if (s.cut) d.append(el("p", { class: "note", text: "(cut here for the page: the record file has the whole answer)" }));
    if (s.answer) d.append(el("pre", { class: "raw", text: s.answer }));
    else if (!(s.strings || []).length) d.append(el("p", { class: "note", text: "(no answer)" }));
    if (s.teacher) d.append(el("details", {}, el("summary", { text: "teacher" }), el("pre", { text: JSON.stringify(s.teacher, null, 2) })));
  }
})();
