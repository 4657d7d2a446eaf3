// digiworm explorer: plain JavaScript, no build step. Talks to the JSON API of digiworm serve.
"use strict";

const S = { neurons: [], byName: {}, selected: null, result: null, compare: null,
            frame: 0, timer: null, colourBy: "type", edges: [] };
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#666666", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"];

function showError(message, suggestions, onPick) {
  // suggestions become links only where picking one means something (a neuron to open)
  const box = $("error");
  box.textContent = message;
  if (onPick && suggestions && suggestions.length) {
    box.append(" ");
    for (const s of suggestions) {
      const a = document.createElement("a");
      a.href = "#"; a.textContent = s; a.className = "suggestion";
      a.onclick = (e) => { e.preventDefault(); hideError(); onPick(s); };
      box.append(a, " ");
    }
  }
  box.hidden = false;
}
function hideError() { $("error").hidden = true; }

async function api(path, body) {
  const opts = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
  if (!r.ok) { const e = new Error(data.detail || `HTTP ${r.status}`); e.suggestions = data.suggestions; throw e; }
  return data;
}

// -- the worm -------------------------------------------------------------------------------
function extent(values) { return [Math.min(...values), Math.max(...values)]; }

function drawWorm() {
  const views = { "side-view": ["y", "z"], "top-view": ["y", "x"] };
  for (const [id, [h, v]] of Object.entries(views)) {
    const svg = $(id);
    svg.replaceChildren();
    const [h0, h1] = extent(S.neurons.map((n) => n[h]));
    const [v0, v1] = extent(S.neurons.map((n) => n[v]));
    const sx = (x) => 20 + 960 * (x - h0) / (h1 - h0 || 1);
    const sy = (y) => 240 - 220 * (y - v0) / (v1 - v0 || 1);
    const gEdges = document.createElementNS(SVGNS, "g"); gEdges.setAttribute("class", "edges");
    svg.append(gEdges);
    for (const n of S.neurons) {
      const c = document.createElementNS(SVGNS, "circle");
      c.setAttribute("cx", sx(n[h]).toFixed(1)); c.setAttribute("cy", sy(n[v]).toFixed(1));
      c.setAttribute("r", 5); c.dataset.name = n.name;
      const t = document.createElementNS(SVGNS, "title"); t.textContent = `${n.name} (${n.type}, ${n.ganglion})`;
      c.append(t);
      c.addEventListener("click", () => select(n.name));
      svg.append(c);
    }
    const label = document.createElementNS(SVGNS, "text");
    label.setAttribute("x", 8); label.setAttribute("y", 14); label.setAttribute("class", "label");
    label.textContent = id === "side-view" ? "side view (anterior left, dorsal up)" : "top view (anterior left)";
    svg.append(label);
    svg._scale = { sx, sy, h, v };
    enableZoom(svg);
  }
  colour();
}

function enableZoom(svg) {
  let vb = [0, 0, 1000, 260], drag = null;
  const apply = () => svg.setAttribute("viewBox", vb.map((x) => x.toFixed(1)).join(" "));
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
    const px = vb[0] + vb[2] * (e.clientX - r.left) / r.width, py = vb[1] + vb[3] * (e.clientY - r.top) / r.height;
    vb = [px - (px - vb[0]) * k, py - (py - vb[1]) * k, vb[2] * k, vb[3] * k]; apply();
  }, { passive: false });
  svg.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY, vb[0], vb[1]]; });
  window.addEventListener("mouseup", () => { drag = null; });
  svg.addEventListener("mousemove", (e) => {
    if (!drag) return;
    const r = svg.getBoundingClientRect();
    vb[0] = drag[2] - (e.clientX - drag[0]) * vb[2] / r.width;
    vb[1] = drag[3] - (e.clientY - drag[1]) * vb[3] / r.height; apply();
  });
}

function categoryColours() {
  const cats = [...new Set(S.neurons.map((n) => n[S.colourBy]))].sort();
  return Object.fromEntries(cats.map((c, i) => [c, PALETTE[i % PALETTE.length]]));
}

function diverging(x, vmax) {
  const t = Math.max(-1, Math.min(1, x / vmax));
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  return t >= 0 ? `rgb(${mix(247, 178, t)},${mix(247, 24, t)},${mix(247, 43, t)})`
                : `rgb(${mix(247, 33, -t)},${mix(247, 102, -t)},${mix(247, 172, -t)})`;
}

function colour() {
  const res = S.result;
  const legend = $("legend");
  let fill;
  if (res) {
    const mode = S.compare ? $("view-cond").value : "b";
    const a = S.compare ? S.compare.a.dff[S.frame] : null, b = res.dff[S.frame];
    const row = mode === "a" ? a : mode === "diff" ? b.map((v, i) => (v === null || a[i] === null ? null : v - a[i])) : b;
    const idx = Object.fromEntries(res.neurons.map((n, i) => [n, i]));
    const vmax = mode === "diff" ? res.vdiff : res.vmax;
    fill = (n) => { const v = row[idx[n]]; return v === null ? "#ddd" : diverging(v, vmax); };
    const what = { a: "wild type", b: S.compare ? "perturbed" : "", diff: "perturbed − wild type" }[mode];
    legend.textContent = `coloured by dF/F ${what} at ${res.time_s[S.frame]} s (scale ±${vmax.toPrecision(2)})`;
  } else {
    const cols = categoryColours();
    fill = (n) => cols[S.byName[n][S.colourBy]];
    legend.replaceChildren(...Object.entries(cols).map(([k, c]) => {
      const s = document.createElement("span"); s.innerHTML = `<i style="background:${c}"></i>`;
      s.append(k); return s;
    }));
  }
  const stim = new Set(res ? res.stimulated : []);
  const ablated = new Set(res ? res.ablated || [] : []);
  for (const c of document.querySelectorAll("svg.worm circle")) {
    const n = c.dataset.name;
    c.setAttribute("fill", fill(n));
    c.classList.toggle("selected", n === S.selected);
    c.classList.toggle("stimulated", stim.has(n));
    c.classList.toggle("ablated", ablated.has(n));
  }
}

// -- the neuron card --------------------------------------------------------------------------
async function select(name) {
  hideError();
  try {
    const card = await api(`/api/neurons/${encodeURIComponent(name)}`);
    S.selected = card.name;
    const rows = (obj) => Object.entries(obj).map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
    let html = `<h2 id="card-title">${card.name}</h2><table>${rows(card.identity)}</table>`;
    for (const [title, sec] of Object.entries(card.sections)) html += `<h3>${title}</h3><table>${rows(sec)}</table>`;
    html += `<button id="use-stim" type="button">stimulate ${card.name}</button>`;
    $("card").innerHTML = html;
    $("use-stim").onclick = () => { $("stimulate").value = card.name; };
    colour();
    if (S.result) drawTraces();
    loadEdges();
  } catch (e) { showError(e.message, e.suggestions, select); }
}

// -- experiments ------------------------------------------------------------------------------
const list = (id) => $(id).value.split(",").map((s) => s.trim()).filter(Boolean);

function experimentBody() {
  const body = { model: $("model").value, stimulate: list("stimulate"), ablate: list("ablate"),
                 knockout: list("knockout"), duration_s: Number($("duration").value) };
  if ($("drug").value) body.drugs = [{ name: $("drug").value, dose_uM: Number($("dose").value) }];
  return body;
}

async function run(e) {
  if (e) e.preventDefault();
  hideError();
  const body = experimentBody();
  $("status").textContent = "running…"; $("run").disabled = true;
  try {
    let res, cmp = null;
    if ($("compare").checked) {
      const wt = { ...body, ablate: [], knockout: [], drugs: [] };
      const both = await api("/api/compare", { a: wt, b: body });
      res = both.b; cmp = both;
    } else {
      res = await api("/api/simulate", body);
    }
    res.ablated = body.ablate;
    const flat = res.dff.flat().filter((v) => v !== null).map(Math.abs).sort((a, b) => a - b);
    res.vmax = flat.length ? Math.max(flat[Math.floor(0.99 * (flat.length - 1))], 1e-6) : 1;
    if (cmp) {
      const d = res.dff.flatMap((row, j) => row.map((v, i) => (v === null || cmp.a.dff[j][i] === null ? 0 : Math.abs(v - cmp.a.dff[j][i])))).sort((x, y) => x - y);
      res.vdiff = Math.max(d[Math.floor(0.99 * (d.length - 1))], 1e-9);
    }
    $("view-cond").hidden = !cmp;
    S.result = res; S.compare = cmp; S.lastBody = body;
    showResult();
    $("status").textContent = "done";
  } catch (err) {
    $("status").textContent = "";
    showError(err.message, err.suggestions);
  } finally { $("run").disabled = false; }
}

function showResult() {
  const res = S.result;
  $("results").hidden = false; $("player").hidden = false;
  const scrub = $("scrub");
  scrub.max = res.time_s.length - 1;
  S.frame = Math.min(res.time_s.length - 1, res.time_s.findIndex((t) => t >= res.onset_s + res.pulse_s));
  if (S.frame < 0) S.frame = 0;
  scrub.value = S.frame; $("time-label").textContent = `${res.time_s[S.frame]} s`;
  colour(); drawTraces(); showMeasured(); showChanges();
  $("command").textContent = res.command;
}

function topResponders(res, k) {
  const idx = res.neurons.map((_, i) => i);
  const change = idx.map((i) => Math.max(...res.dff.map((row) => Math.abs((row[i] ?? 0) - (res.dff[0][i] ?? 0)))));
  const stim = new Set(res.stimulated);
  return idx.filter((i) => !stim.has(res.neurons[i])).sort((a, b) => change[b] - change[a]).slice(0, k);
}

function drawTraces() {
  const res = S.result, cv = $("traces"), ctx = cv.getContext("2d");
  ctx.clearRect(0, 0, cv.width, cv.height);
  // the stimulated neurons, the selected one (if any), then the strongest responders
  const first = [...res.stimulated, ...(S.selected && !res.stimulated.includes(S.selected) ? [S.selected] : [])];
  const picks = [...first.map((n) => res.neurons.indexOf(n)),
                 ...topResponders(res, 7).filter((i) => !first.includes(res.neurons[i])).slice(0, 6)];
  const series = picks.map((i) => res.dff.map((row) => row[i]));
  const wt = S.compare ? picks.map((i) => S.compare.a.dff.map((row) => row[i])) : [];
  // scale to the responders (the stimulated neurons' own large transients are clipped)
  const nStim = res.stimulated.length;
  let vals = [...series.slice(nStim), ...wt.slice(nStim)].flat().filter((v) => v !== null);
  if (!vals.length || Math.max(...vals) - Math.min(...vals) < 1e-12) vals = [...series, ...wt].flat().filter((v) => v !== null);
  const lo = Math.min(...vals, 0), hi = Math.max(...vals, 1e-9);
  const t = res.time_s, x = (j) => 40 + (cv.width - 130) * j / (t.length - 1);
  const y = (v) => cv.height - 20 - (cv.height - 30) * (v - lo) / (hi - lo || 1);
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#555";
  ctx.fillText(hi.toPrecision(2), 2, 14); ctx.fillText(lo.toPrecision(2), 2, cv.height - 20);
  ctx.fillText(`${t[t.length - 1]} s`, x(t.length - 1) - 20, cv.height - 4);
  const draw = (s, colour, dash) => {
    ctx.beginPath(); ctx.setLineDash(dash); ctx.strokeStyle = colour; ctx.lineWidth = 1.5;
    s.forEach((v, j) => { if (v !== null) (j ? ctx.lineTo(x(j), y(v)) : ctx.moveTo(x(j), y(v))); });
    ctx.stroke(); ctx.setLineDash([]);
  };
  ctx.save(); ctx.beginPath(); ctx.rect(38, 8, cv.width - 126, cv.height - 26); ctx.clip();
  picks.forEach((i, k) => {
    const col = PALETTE[k % PALETTE.length];
    if (wt.length) draw(wt[k], col, [3, 3]);
    draw(series[k], col, []);
  });
  ctx.restore();
  picks.forEach((i, k) => {
    ctx.fillStyle = PALETTE[k % PALETTE.length];
    ctx.fillText(res.neurons[i] + (k < nStim ? " (stim.)" : ""), cv.width - 85, 14 + 13 * k);
  });
  if (wt.length) { ctx.fillStyle = "#555"; ctx.fillText("dashed: wild type", cv.width - 85, 14 + 13 * picks.length); }
  ctx.strokeStyle = "#e6a100"; ctx.beginPath();
  const j0 = t.findIndex((v) => v >= res.onset_s); ctx.moveTo(x(j0), 10); ctx.lineTo(x(j0), cv.height - 20); ctx.stroke();
  ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.moveTo(x(S.frame), 10); ctx.lineTo(x(S.frame), cv.height - 20); ctx.stroke();
}

function showMeasured() {
  const m = S.result.measured, box = $("measured"), cv = $("scatter");
  if (!m) { box.textContent = "No measured atlas response for this experiment (single stimulations, wild type or unc-31)."; cv.hidden = true; return; }
  box.textContent = `Measured (${m.strain}, ${m.source}): ${m.n} neurons; Pearson r with the prediction = ${m.pearson ?? "n/a"}`;
  cv.hidden = false;
  const ctx = cv.getContext("2d"); ctx.clearRect(0, 0, cv.width, cv.height);
  const px = m.predicted, py = m.measured;
  const [a0, a1] = extent(px.concat([0])), [b0, b1] = extent(py.concat([0]));
  const sx = (v) => 25 + 185 * (v - a0) / (a1 - a0 || 1), sy = (v) => 200 - 185 * (v - b0) / (b1 - b0 || 1);
  ctx.fillStyle = "#24323f";
  px.forEach((v, i) => { ctx.beginPath(); ctx.arc(sx(v), sy(py[i]), 2.5, 0, 6.3); ctx.fill(); });
  ctx.font = "11px sans-serif"; ctx.fillText("predicted →", 120, 216); ctx.save(); ctx.translate(10, 120); ctx.rotate(-Math.PI / 2); ctx.fillText("measured →", 0, 0); ctx.restore();
}

function showChanges() {
  const box = $("changes");
  if (!S.compare) { box.textContent = ""; return; }
  box.innerHTML = "<h3>Most changed vs wild type (max |ΔdF/F|)</h3>" +
    S.compare.most_changed.map((c) => `${c.neuron} ${c.max_abs_change}`).join(" · ");
}

function setFrame(j) {
  if (!S.result) return;
  S.frame = j; $("scrub").value = j; $("time-label").textContent = `${S.result.time_s[j]} s`;
  colour(); drawTraces();
}

function togglePlay() {
  if (S.timer) { clearInterval(S.timer); S.timer = null; $("play").textContent = "Play"; return; }
  $("play").textContent = "Pause";
  S.timer = setInterval(() => setFrame((S.frame + 1) % S.result.time_s.length), 120);
}

async function exportNetcdf(e) {
  e.preventDefault();
  if (!S.lastBody) return;
  const r = await fetch("/api/export.nc", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(S.lastBody) });
  if (!r.ok) { const d = await r.json(); showError(d.detail, d.suggestions); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a"); a.href = url; a.download = "digiworm_run.nc"; a.click();
  URL.revokeObjectURL(url);
}

// -- the in-silico atlas as a background job --------------------------------------------------
async function runAtlas() {
  hideError();
  const { model, ablate, knockout, drugs } = experimentBody();
  try {
    const { job } = await api("/api/jobs", { model, ablate, knockout, drugs: drugs || [] });
    S.job = job;
    $("atlas-run").disabled = true; $("atlas-cancel").disabled = false;
    $("atlas-progress").hidden = false; $("atlas-matrix").hidden = true;
    pollAtlas();
  } catch (e) { showError(e.message, e.suggestions); }
}

async function pollAtlas() {
  const v = await api(`/api/jobs/${S.job}`).catch((e) => ({ state: "failed", error: e.message }));
  const bar = $("atlas-progress");
  bar.max = v.total || 1; bar.value = v.done || 0;
  $("atlas-status").textContent = `${v.state}: ${v.done || 0} of ${v.total || "?"} stimulations`;
  if (v.state === "queued" || v.state === "running") { setTimeout(pollAtlas, 500); return; }
  $("atlas-run").disabled = false; $("atlas-cancel").disabled = true; bar.hidden = true;
  if (v.state === "failed") { showError(v.error || "the atlas job failed"); return; }
  if (v.state !== "done") return;
  const r = v.result, s = r.score;
  $("atlas-status").textContent = s ? `done: clipped Pearson r ${s.pearson_clipped} vs the measured ${s.strain} atlas (anatomy ${s.anatomy_pearson_clipped}, noise ceiling ${s.noise_ceiling})`
                                    : "done (no measured atlas for these perturbations)";
  const cv = $("atlas-matrix"), ctx = cv.getContext("2d"), img = ctx.createImageData(302, 302);
  const flat = r.dff.flat().filter((x) => x !== null).map(Math.abs).sort((a, b) => a - b);
  const vmax = Math.max(flat[Math.floor(0.99 * (flat.length - 1))] || 1e-6, 1e-9);
  r.dff.forEach((row, i) => row.forEach((x, j) => {
    const m = /rgb\((\d+),(\d+),(\d+)\)/.exec(x === null ? "rgb(220,220,220)" : diverging(x, vmax));
    const k = 4 * (i * 302 + j); img.data[k] = +m[1]; img.data[k + 1] = +m[2]; img.data[k + 2] = +m[3]; img.data[k + 3] = 255;
  }));
  ctx.putImageData(img, 0, 0); cv.hidden = false;
  cv.title = "responding (rows) by stimulated (columns), dF/F";
}

// -- connectome edges -------------------------------------------------------------------------
async function loadEdges() {
  const kind = $("edge-kind").value, top = $("top-view");
  const g = top.querySelector("g.edges"); g.replaceChildren();
  if (!kind) { $("edge-count").textContent = ""; return; }
  const only = $("edge-selected").checked && S.selected;
  const q = new URLSearchParams({ kind, min_weight: $("edge-min").value || "0" });
  if (only) q.set("neuron", S.selected);
  if ($("edge-class").value.trim()) q.set("class", $("edge-class").value.trim().toUpperCase());
  try {
    const data = await api(`/api/connectome?${q}`);
    const { sx, sy, h, v } = top._scale;
    const colour = { chemical: "#c0392b", gap: "#2980b9", peptide: "#8e44ad" }[kind];
    for (const [pre, post, w] of data.edges.slice(0, 3000)) {
      const a = S.byName[pre], b = S.byName[post];
      const l = document.createElementNS(SVGNS, "line");
      l.setAttribute("x1", sx(a[h])); l.setAttribute("y1", sy(a[v]));
      l.setAttribute("x2", sx(b[h])); l.setAttribute("y2", sy(b[v]));
      l.setAttribute("stroke", colour); l.setAttribute("stroke-width", Math.min(4, 0.5 + Math.log1p(w)));
      g.append(l);
    }
    $("edge-count").textContent = `${data.edges.length} edges` + (data.edges.length > 3000 ? " (3000 drawn)" : "");
  } catch (e) { showError(e.message, e.suggestions); }
}

// -- guided tour ------------------------------------------------------------------------------
const TOUR = [
  ["The dots are the worm's 302 neurons at their measured soma positions. Click any one to read its card: its partners, channels and measured responses.",
   () => select("AVAL")],
  ["AVA are command interneurons for backward locomotion. We stimulate AVAL in the graded network model: press Next to run it, then Play to watch the response spread.",
   () => { $("stimulate").value = "AVAL"; $("knockout").value = ""; $("ablate").value = ""; $("compare").checked = false; run(); }],
  ["Where the wet lab stimulated the same neuron (Randi et al. 2023), the measured responses appear beside the prediction with their correlation.",
   () => {}],
  ["RID signals mostly with neuropeptides. We stimulate RID with unc-31 knocked out (no dense-core-vesicle release) beside wild type: the responses that vanish are peptidergic, and the unc-31 atlas measured the same.",
   () => { select("RID"); $("stimulate").value = "RID"; $("knockout").value = "unc-31"; $("compare").checked = true; run(); }],
  ["Show the chemical synapses of the selected neuron on the top view. Explore on your own: ablate a neuron, apply a drug, or try another model.",
   () => { $("edge-kind").value = "chemical"; loadEdges(); }],
];
let tourStep = -1;
function tour(next) {
  tourStep = next ? tourStep + 1 : 0;
  if (tourStep >= TOUR.length) { $("tour").hidden = true; return; }
  $("tour").hidden = false;
  $("tour-text").textContent = `Step ${tourStep + 1} of ${TOUR.length}: ${TOUR[tourStep][0]}`;
  TOUR[tourStep][1]();
}

// -- start ------------------------------------------------------------------------------------
async function start() {
  try {
    const [table, options] = await Promise.all([api("/api/neurons"), api("/api/options")]);
    S.neurons = table.neurons; S.byName = Object.fromEntries(S.neurons.map((n) => [n.name, n]));
    $("neuron-names").replaceChildren(...S.neurons.map((n) => Object.assign(document.createElement("option"), { value: n.name })));
    const known = new Set([...$("model").options].map((o) => o.value));
    $("model").append(...options.models.filter((m) => !known.has(m)).map((m) => Object.assign(document.createElement("option"), { value: m, textContent: m.replace("fitted:", "fitted: ") })));
    $("drug").append(...options.drugs.map((d) => Object.assign(document.createElement("option"), { value: d.name, textContent: d.name })));
    drawWorm();
  } catch (e) { showError(`could not load the atlas: ${e.message}`); }
  $("search-form").onsubmit = (e) => { e.preventDefault(); select($("search").value.trim()); };
  $("experiment").onsubmit = run;
  $("colour-by").onchange = (e) => { S.colourBy = e.target.value; colour(); };
  $("scrub").oninput = (e) => setFrame(Number(e.target.value));
  $("play").onclick = togglePlay;
  $("view-cond").onchange = colour;
  $("export-nc").onclick = exportNetcdf;
  $("export-png").onclick = (e) => { e.target.href = $("traces").toDataURL("image/png"); e.target.download = "digiworm_traces.png"; };
  $("export-svg").onclick = (e) => {
    const svg = $("side-view").cloneNode(true);
    svg.setAttribute("xmlns", SVGNS);
    const css = "circle{stroke:#333;stroke-width:.4}circle.stimulated{stroke:#e6a100;stroke-width:3}text{font:11px sans-serif;fill:#555}";
    svg.insertAdjacentHTML("afterbegin", `<style>${css}</style>`);
    const blob = new Blob([new XMLSerializer().serializeToString(svg)], { type: "image/svg+xml" });
    e.target.href = URL.createObjectURL(blob); e.target.download = "digiworm_worm.svg";
  };
  for (const id of ["edge-kind", "edge-min", "edge-selected", "edge-class"]) $(id).onchange = loadEdges;
  $("atlas-run").onclick = runAtlas;
  $("atlas-cancel").onclick = () => { if (S.job) fetch(`/api/jobs/${S.job}`, { method: "DELETE" }); };
  $("tour-button").onclick = () => tour(false);
  $("tour-next").onclick = () => tour(true);
  $("tour-close").onclick = () => { $("tour").hidden = true; };
  document.body.dataset.ready = "1";
}
start();
