// digiworm explorer: plain JavaScript, no build step. Talks to the JSON API of digiworm serve.
"use strict";

const S = { neurons: [], byName: {}, selected: null, result: null, compare: null,
            frame: 0, timer: null, colourBy: "type", limits: {}, drugs: {} };
const $ = (id) => document.getElementById(id);
const SVGNS = "http://www.w3.org/2000/svg";
const PALETTE = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d",
                 "#666666", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6"];

// -- messages ---------------------------------------------------------------------------------
// API fields and CLI flags, as the form names them: [form element id (null: not on the form), label]
const FIELDS = {
  stimulate: ["stimulate", "Stimulate"], ablate: ["ablate", "Ablate"],
  knockout: ["knockout", "Knock out genes"], drugs: ["drug", "Drug"], drug: ["drug", "Drug"],
  name: ["drug", "Drug"], dose_uM: ["dose", "Dose (µM)"], dose: ["dose", "Dose (µM)"],
  duration_s: ["duration", "Duration (s)"], duration: ["duration", "Duration (s)"],
  model: ["model", "Model"], search: ["search", "Search"],
  dt_s: [null, "Time step"], dt: [null, "Time step"], onset_s: [null, "Stimulus onset"],
  onset: [null, "Stimulus onset"], pulse_s: [null, "Pulse length"], pulse: [null, "Pulse length"],
  amplitude: [null, "Amplitude"], connectome: [null, "Connectome"],
};

function explain(message, body) {
  // a server message in the words of the form: which field, and no CLI flags or API names
  let text = String(message || "request failed"), key = null;
  const pre = /^([A-Za-z0-9_.]+): (.*)$/s.exec(text);  // "b.duration_s: Input should be ..."
  if (pre) {
    const k = pre[1].split(".").reverse().find((p) => FIELDS[p]);
    if (k) { key = k; text = pre[2]; }
  }
  if (/^nothing to do/.test(text)) { key = "stimulate"; text = "enter at least one neuron to stimulate, e.g. AVAL"; }
  text = text.replace(/\s*\([^()]*--[^()]*\)/g, "");  // "(set it with --onset, e.g. --onset 5)"
  text = text.replace(/--([a-z]+)(?: [A-Z_]+\b)?/g, (all, f) => (FIELDS[f] ? FIELDS[f][1] : f));
  text = text.replace(/\b([a-z]+_(?:s|uM))\b/g, (all, f) => (FIELDS[f] ? FIELDS[f][1] : all));
  if (!key) {
    const unknown = /unknown neuron '([^']+)'/.exec(text);
    const has = (id, name) => (body && body[id] || []).some((n) => n.toUpperCase() === name.toUpperCase());
    if (unknown) key = has("ablate", unknown[1]) && !has("stimulate", unknown[1]) ? "ablate" : "stimulate";
    else if (/unknown gene/.test(text)) key = "knockout";
    else if (/\bdose\b/.test(text)) key = "dose";
    else if (/\bdrug\b/.test(text)) key = "drug";
    else if (/^duration\b/.test(text)) key = "duration";
    else if (/^amplitude\b/.test(text)) key = "amplitude";
    else if (/^onset\b/.test(text)) key = "onset";
    else if (/^dt\b/.test(text)) key = "dt";
    else if (/\bmodel\b/.test(text)) key = "model";
  }
  if (!key) return { text, field: null };
  const [field, label] = FIELDS[key];
  return { text: `${label}: ${text}`, field };
}

function showError(message, suggestions, onPick, field) {
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
  if (field && $(field)) { $(field).setAttribute("aria-invalid", "true"); $(field).setAttribute("aria-errormessage", "error"); }
  box.hidden = false;
}
function hideError() {
  $("error").hidden = true;
  for (const el of document.querySelectorAll("[aria-invalid]")) { el.removeAttribute("aria-invalid"); el.removeAttribute("aria-errormessage"); }
}

async function api(path, body) {
  const opts = body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ detail: `HTTP ${r.status}` }));
  if (!r.ok) { const e = new Error(data.detail || `HTTP ${r.status}`); e.suggestions = data.suggestions; throw e; }
  return data;
}

// -- numbers on axes --------------------------------------------------------------------------
function extent(values) { return [Math.min(...values), Math.max(...values)]; }
function fmt(v) {
  if (v === null || v === undefined) return "n/a";
  if (v === 0) return "0";
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? String(+v.toPrecision(3)) : v.toExponential(1);
}
function niceTicks(lo, hi, n) {
  const span = hi - lo || Math.abs(hi) || 1, raw = span / n, mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-9 * span; v += step) out.push(Math.abs(v) < 1e-12 * span ? 0 : +v.toPrecision(12));
  return out;
}

// -- the worm -------------------------------------------------------------------------------
function spread(points) {
  // Left/right partners share a spot in the side view (and dorsal/ventral ones in the top
  // view): each partner pair is set 10 units apart (the left one up and to the left where they
  // coincide), then any dots still on nearly the same spot are nudged apart, so that every
  // neuron can be seen, hovered and picked on its own. Positions move by a few units at most.
  const by = Object.fromEntries(points.map((p) => [p.name, p]));
  for (const p of points) {
    const q = p.name.endsWith("L") ? by[p.name.slice(0, -1) + "R"] : null;
    if (!q) continue;
    let dx = p.x - q.x, dy = p.y - q.y, d = Math.hypot(dx, dy);
    if (d >= 10) continue;
    if (d < 0.5) { dx = -1; dy = -0.6; d = Math.hypot(dx, dy); }
    const mx = (p.x + q.x) / 2, my = (p.y + q.y) / 2, ux = dx / d, uy = dy / d;
    p.x = mx + 5 * ux; p.y = my + 5 * uy; q.x = mx - 5 * ux; q.y = my - 5 * uy;
  }
  const min = 2.5;
  for (let pass = 0; pass < 6; pass++) {
    for (let i = 0; i < points.length; i++) {
      for (let j = i + 1; j < points.length; j++) {
        const a = points[i], b = points[j];
        let dx = b.x - a.x, dy = b.y - a.y, d = Math.hypot(dx, dy);
        if (d >= min) continue;
        if (d < 1e-6) { dx = 0.8; dy = 0.6; d = 1; }
        const push = (min - d) / 2;
        a.x -= push * dx / d; a.y -= push * dy / d; b.x += push * dx / d; b.y += push * dy / d;
      }
    }
  }
  return points;
}

function drawWorm() {
  // side view: anterior-posterior (y) against dorsal-ventral (z), left-right (x) hidden;
  // top view: y against x, z hidden. Positive x is the left side.
  const views = { "side-view": ["y", "z", "x"], "top-view": ["y", "x", "z"] };
  for (const [id, [h, v, d]] of Object.entries(views)) {
    const svg = $(id);
    svg.replaceChildren();
    const [h0, h1] = extent(S.neurons.map((n) => n[h]));
    const [v0, v1] = extent(S.neurons.map((n) => n[v]));
    const sx = (x) => 20 + 960 * (x - h0) / (h1 - h0 || 1);
    const sy = (y) => 240 - 220 * (y - v0) / (v1 - v0 || 1);
    const pts = spread(S.neurons.map((n) => ({ name: n.name, x: sx(n[h]), y: sy(n[v]), depth: n[d] })));
    const pos = Object.fromEntries(pts.map((p) => [p.name, [p.x, p.y]]));
    const gEdges = document.createElementNS(SVGNS, "g"); gEdges.setAttribute("class", "edges");
    svg.append(gEdges);
    const keyboard = id === "side-view";
    for (const n of S.neurons) {
      const c = document.createElementNS(SVGNS, "circle");
      c.setAttribute("cx", pos[n.name][0].toFixed(1)); c.setAttribute("cy", pos[n.name][1].toFixed(1));
      c.setAttribute("r", 5); c.dataset.name = n.name;
      const t = document.createElementNS(SVGNS, "title"); t.textContent = `${n.name} (${n.type}, ${n.ganglion})`;
      c.append(t);
      if (keyboard) {
        c.setAttribute("tabindex", "-1"); c.setAttribute("role", "button");
        c.setAttribute("aria-label", `${n.name}, ${n.type}, ${n.ganglion}`);
      }
      svg.append(c);
    }
    const label = document.createElementNS(SVGNS, "text");
    label.setAttribute("x", 8); label.setAttribute("y", 14); label.setAttribute("class", "label");
    label.textContent = id === "side-view" ? "side view (anterior left, dorsal up; left-side neurons drawn up-left of their right partners)" : "top view (anterior left)";
    svg.append(label);
    const hoverLabel = document.createElementNS(SVGNS, "text");
    hoverLabel.setAttribute("class", "hover-label"); svg.append(hoverLabel);
    svg._scale = { sx, sy, h, v }; svg._pos = pos;
    enableZoom(svg);
    // the head is crowded (at full view ~140 neurons within a few dozen pixels): a click opens
    // the one neuron under the pointer, or, where several are within reach, asks which one
    svg.addEventListener("click", (e) => {
      if (svg._dragged) return;
      const near = neuronsAt(svg, e.clientX, e.clientY);
      if (near.length === 1) select(near[0]); else if (near.length > 1) choose(near, e.pageX, e.pageY);
    });
    svg.addEventListener("mousemove", (e) => {
      const near = svg._panning ? [] : neuronsAt(svg, e.clientX, e.clientY);
      hoverLabel.textContent = near.length > 1 ? `${near[0]} +${near.length - 1} (click to choose)` : near[0] || "";
      if (near.length) { hoverLabel.setAttribute("x", pos[near[0]][0] + 7); hoverLabel.setAttribute("y", pos[near[0]][1] - 7); }
    });
    svg.addEventListener("mouseleave", () => { hoverLabel.textContent = ""; });
  }
  enableKeyboard($("side-view"));
  colour();
}

function neuronsAt(svg, clientX, clientY, reachPx = 6) {
  // the neurons whose centres lie within reachPx screen pixels of a point, nearest first
  const m = svg.getScreenCTM();
  if (!m) return [];
  const near = [];
  for (const [name, [x, y]] of Object.entries(svg._pos)) {
    const d = Math.hypot(m.a * x + m.c * y + m.e - clientX, m.b * x + m.d * y + m.f - clientY);
    if (d <= reachPx) near.push([d, name]);
  }
  return near.sort((a, b) => a[0] - b[0] || a[1].localeCompare(b[1])).map(([, n]) => n);
}

function choose(names, pageX, pageY) {
  // several neurons under the pointer: a small list of buttons, one per neuron, nearest first
  const box = $("pick");
  box.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Which neuron?" }));
  for (const n of names.slice(0, 12)) {
    const b = Object.assign(document.createElement("button"), { type: "button", textContent: n });
    b.dataset.name = n;
    b.onclick = () => { closeChooser(); select(n); };
    box.append(b);
  }
  box.style.left = `${pageX + 8}px`; box.style.top = `${pageY + 8}px`;
  box.hidden = false;
  box.querySelector("button").focus();
}
function closeChooser() { $("pick").hidden = true; }

function enableKeyboard(svg) {
  // one tab stop (roving tabindex): arrow keys move along the body, Enter or Space opens the card
  const order = [...svg.querySelectorAll("circle")].sort((a, b) => a.cx.baseVal.value - b.cx.baseVal.value || a.cy.baseVal.value - b.cy.baseVal.value);
  order[0].setAttribute("tabindex", "0");
  const focusLabel = document.createElementNS(SVGNS, "text");
  focusLabel.setAttribute("class", "focus-label"); svg.append(focusLabel);
  const move = (from, to) => {
    from.setAttribute("tabindex", "-1"); to.setAttribute("tabindex", "0"); to.focus();
  };
  svg._focusNeuron = (name) => {
    const c = order.find((x) => x.dataset.name === name);
    const cur = order.find((x) => x.getAttribute("tabindex") === "0");
    if (c && cur && c !== cur) { cur.setAttribute("tabindex", "-1"); c.setAttribute("tabindex", "0"); }
  };
  order.forEach((c, i) => {
    c.addEventListener("focus", () => {
      focusLabel.textContent = c.dataset.name;
      focusLabel.setAttribute("x", c.cx.baseVal.value + 8); focusLabel.setAttribute("y", c.cy.baseVal.value - 8);
    });
    c.addEventListener("blur", () => { focusLabel.textContent = ""; });
    c.addEventListener("keydown", (e) => {
      const to = { ArrowRight: i + 1, ArrowDown: i + 1, ArrowLeft: i - 1, ArrowUp: i - 1, Home: 0, End: order.length - 1 }[e.key];
      if (to !== undefined) { e.preventDefault(); move(c, order[Math.max(0, Math.min(order.length - 1, to))]); }
      else if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(c.dataset.name); }
    });
  });
}

function enableZoom(svg) {
  let vb = [0, 0, 1000, 260], drag = null;
  svg._vb = vb;
  const apply = () => { svg._vb = vb; svg.setAttribute("viewBox", vb.map((x) => x.toFixed(1)).join(" ")); };
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const k = e.deltaY > 0 ? 1.15 : 1 / 1.15, r = svg.getBoundingClientRect();
    const px = vb[0] + vb[2] * (e.clientX - r.left) / r.width, py = vb[1] + vb[3] * (e.clientY - r.top) / r.height;
    vb = [px - (px - vb[0]) * k, py - (py - vb[1]) * k, vb[2] * k, vb[3] * k]; apply();
  }, { passive: false });
  svg.addEventListener("mousedown", (e) => { drag = [e.clientX, e.clientY, vb[0], vb[1]]; svg._dragged = false; });
  window.addEventListener("mouseup", () => { drag = null; svg._panning = false; });
  svg.addEventListener("mousemove", (e) => {
    if (!drag) return;
    if (Math.hypot(e.clientX - drag[0], e.clientY - drag[1]) > 4) svg._dragged = svg._panning = true;  // a pan, not a click
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
  return t >= 0 ? [mix(247, 178, t), mix(247, 24, t), mix(247, 43, t)]
                : [mix(247, 33, -t), mix(247, 102, -t), mix(247, 172, -t)];
}
const rgb = (c) => `rgb(${c[0]},${c[1]},${c[2]})`;

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
    fill = (n) => { const v = row[idx[n]]; return v === null || v === undefined ? "#ddd" : rgb(diverging(v, vmax)); };
    const what = { a: "wild type", b: S.compare ? "perturbed" : "", diff: "perturbed − wild type" }[mode];
    legend.textContent = `coloured by dF/F ${what} at ${res.time_s[S.frame]} s (scale ±${vmax.toPrecision(2)}; grey: ablated, no trace)`;
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
  name = String(name || "").trim();
  if (!name) { showError("Search: type a neuron name first, e.g. AVAL.", null, null, "search"); return; }
  try {
    const card = await api(`/api/neurons/${encodeURIComponent(name)}`);
    S.selected = card.name;
    const rows = (obj) => Object.entries(obj).map(([k, v]) => `<tr><td>${k}</td><td>${v}</td></tr>`).join("");
    let html = `<h2 id="card-title">${card.name}</h2><table>${rows(card.identity)}</table>`;
    for (const [title, sec] of Object.entries(card.sections)) html += `<h3>${title}</h3><table>${rows(sec)}</table>`;
    html += `<button id="use-stim" type="button">stimulate ${card.name}</button>`;
    $("card").innerHTML = html;
    $("use-stim").onclick = () => { $("stimulate").value = card.name; };
    if ($("side-view")._focusNeuron) $("side-view")._focusNeuron(card.name);
    colour();
    if (S.result) drawTraces();
    loadEdges();
  } catch (e) { showError(e.message, e.suggestions, select); }
}

// -- experiments ------------------------------------------------------------------------------
// names separated by commas, semicolons or spaces ("AVAL AVAR" is two neurons)
const list = (id) => $(id).value.split(/[\s,;]+/).map((s) => s.trim()).filter(Boolean);

function experimentBody() {
  const body = { model: $("model").value, stimulate: list("stimulate"), ablate: list("ablate"),
                 knockout: list("knockout"), duration_s: Number($("duration").value) };
  if ($("drug").value) body.drugs = [{ name: $("drug").value, dose_uM: Number($("dose").value) }];
  return body;
}

function checkForm(body) {
  // what the page can tell before asking the server; the server checks everything again
  const max = body.model === "conductance" ? S.limits.max_conductance_duration_s : S.limits.max_duration_s;
  if (!body.stimulate.length) return { field: "stimulate", text: "Stimulate: enter at least one neuron to stimulate, e.g. AVAL (separate several with commas or spaces)." };
  if ($("duration").value.trim() === "" || !Number.isFinite(body.duration_s) || body.duration_s <= 0) return { field: "duration", text: "Duration (s): enter a number of seconds above 0, e.g. 30." };
  if (max && body.duration_s > max) return { field: "duration", text: `Duration (s): at most ${max} s in the explorer${body.model === "conductance" ? " for the conductance level" : ""} (the digiworm simulate command runs longer).` };
  if (body.drugs && !(Number.isFinite(body.drugs[0].dose_uM) && body.drugs[0].dose_uM >= 0)) return { field: "dose", text: "Dose (µM): enter a concentration of 0 or more." };
  return null;
}

function clearResult() {
  // after a failed run nothing of the previous one may stay on screen as if it were the answer
  if (S.timer) togglePlay();
  S.result = null; S.compare = null;
  $("results").hidden = true; $("player").hidden = true; $("view-cond-label").hidden = true;
  colour();
}

async function run(e) {
  if (e) e.preventDefault();
  hideError();
  const body = experimentBody();
  const bad = checkForm(body);
  if (bad) { clearResult(); $("status").textContent = ""; showError(bad.text, null, null, bad.field); return false; }
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
    const flat = res.dff.flat().filter((v) => v !== null).map(Math.abs).sort((a, b) => a - b);
    res.vmax = flat.length ? Math.max(flat[Math.floor(0.99 * (flat.length - 1))], 1e-6) : 1;
    if (cmp) {
      const d = res.dff.flatMap((row, j) => row.map((v, i) => (v === null || cmp.a.dff[j][i] === null ? 0 : Math.abs(v - cmp.a.dff[j][i])))).sort((x, y) => x - y);
      res.vdiff = Math.max(d[Math.floor(0.99 * (d.length - 1))], 1e-9);
    }
    $("view-cond-label").hidden = !cmp;
    S.result = res; S.compare = cmp; S.lastBody = body;
    showResult();
    $("status").textContent = "done";
    return true;
  } catch (err) {
    clearResult();
    $("status").textContent = "";
    const { text, field } = explain(err.message, body);
    showError(text, err.suggestions, null, field);
    return false;
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
  const notes = [...(res.notes || []), ...(S.compare ? S.compare.a.notes || [] : []), ...(res.evidence ? [res.evidence] : [])];
  $("notes").replaceChildren(...notes.map((n) => Object.assign(document.createElement("p"), { className: "note", textContent: n })));
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
  const L = 48, R = 92, T = 16, B = 34, W = cv.width - L - R, H = cv.height - T - B;
  const t = res.time_s, x = (j) => L + W * j / (t.length - 1);
  const y = (v) => T + H - H * (v - lo) / (hi - lo || 1);
  ctx.font = "10px sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
  ctx.strokeRect(L, T, W, H);
  ctx.textAlign = "right";
  for (const v of niceTicks(lo, hi, 4)) { ctx.fillText(fmt(v), L - 4, y(v) + 3); ctx.beginPath(); ctx.moveTo(L - 3, y(v)); ctx.lineTo(L, y(v)); ctx.stroke(); }
  ctx.textAlign = "center";
  const tx = (s) => L + W * (s - t[0]) / ((t[t.length - 1] - t[0]) || 1);
  for (const s of niceTicks(t[0], t[t.length - 1], 5)) { ctx.fillText(fmt(s), tx(s), T + H + 12); ctx.beginPath(); ctx.moveTo(tx(s), T + H); ctx.lineTo(tx(s), T + H + 3); ctx.stroke(); }
  ctx.fillText("time (s)", L + W / 2, cv.height - 4);
  ctx.textAlign = "left"; ctx.fillText("dF/F (unitless)", 2, 10);
  const draw = (s, colour, dash) => {
    ctx.beginPath(); ctx.setLineDash(dash); ctx.strokeStyle = colour; ctx.lineWidth = 1.5;
    let pen = false;
    s.forEach((v, j) => { if (v === null) { pen = false; return; } (pen ? ctx.lineTo(x(j), y(v)) : ctx.moveTo(x(j), y(v))); pen = true; });
    ctx.stroke(); ctx.setLineDash([]);
  };
  ctx.save(); ctx.beginPath(); ctx.rect(L, T, W, H); ctx.clip();
  picks.forEach((i, k) => {
    const col = PALETTE[k % PALETTE.length];
    if (wt.length) draw(wt[k], col, [3, 3]);
    draw(series[k], col, []);
  });
  ctx.restore();
  const ablated = new Set(res.ablated || []);
  picks.forEach((i, k) => {
    ctx.fillStyle = PALETTE[k % PALETTE.length];
    ctx.fillText(res.neurons[i] + (k < nStim ? " (stim.)" : "") + (ablated.has(res.neurons[i]) ? " ablated" : ""), cv.width - R + 6, T + 8 + 13 * k);
  });
  if (wt.length) { ctx.fillStyle = "#555"; ctx.fillText("dashed: wild type", cv.width - R + 6, T + 8 + 13 * picks.length); }
  ctx.strokeStyle = "#e6a100"; ctx.beginPath();
  const j0 = t.findIndex((v) => v >= res.onset_s); ctx.moveTo(x(j0), T); ctx.lineTo(x(j0), T + H); ctx.stroke();
  ctx.strokeStyle = "#000"; ctx.beginPath(); ctx.moveTo(x(S.frame), T); ctx.lineTo(x(S.frame), T + H); ctx.stroke();
  // the text alternative: what the lines show
  const peaks = picks.map((i, k) => {
    const s = series[k].filter((v) => v !== null);
    return `${res.neurons[i]}${k < nStim ? " (stimulated)" : ""}: ${s.length ? `from ${fmt(s[0])} to a peak of ${fmt(Math.max(...s))}` : "no trace (ablated)"}`;
  });
  cv.setAttribute("aria-label", `Line chart of dF/F against time, ${t[0]} to ${t[t.length - 1]} s, stimulus at ${res.onset_s} s${wt.length ? ", wild type dashed" : ""}. ${peaks.join("; ")}.`);
}

function showMeasured() {
  const m = S.result.measured, box = $("measured"), cv = $("scatter"), hover = $("scatter-hover");
  if (!m) {
    box.textContent = S.result.measured_note || "No measured atlas response for this experiment.";
    cv.hidden = true; hover.hidden = true; cv.onmousemove = null; return;
  }
  box.textContent = `Measured (${m.strain}, ${m.source}): ${m.n} neurons; Pearson r with the prediction = ${m.pearson ?? "n/a"}`;
  cv.hidden = false; hover.hidden = false;
  const ctx = cv.getContext("2d"); ctx.clearRect(0, 0, cv.width, cv.height);
  const px = m.predicted, py = m.measured;
  const pad = ([lo, hi]) => [lo - 0.05 * (hi - lo || 1), hi + 0.05 * (hi - lo || 1)];  // dots inside the frame
  const [a0, a1] = pad(extent(px.concat([0]))), [b0, b1] = pad(extent(py.concat([0])));
  const L = 56, R = 12, T = 12, B = 46, W = cv.width - L - R, H = cv.height - T - B;
  const sx = (v) => L + W * (v - a0) / (a1 - a0 || 1), sy = (v) => T + H - H * (v - b0) / (b1 - b0 || 1);
  ctx.font = "10px sans-serif"; ctx.strokeStyle = "#999"; ctx.fillStyle = "#555"; ctx.lineWidth = 1;
  ctx.strokeRect(L, T, W, H);
  ctx.setLineDash([2, 3]); ctx.beginPath();
  ctx.moveTo(sx(0), T); ctx.lineTo(sx(0), T + H); ctx.moveTo(L, sy(0)); ctx.lineTo(L + W, sy(0)); ctx.stroke(); ctx.setLineDash([]);
  ctx.textAlign = "center";
  for (const v of niceTicks(a0, a1, 3)) { ctx.fillText(fmt(v), sx(v), T + H + 12); ctx.beginPath(); ctx.moveTo(sx(v), T + H); ctx.lineTo(sx(v), T + H + 3); ctx.stroke(); }
  ctx.fillText("predicted dF/F (unitless; model)", L + W / 2, T + H + 26);
  ctx.textAlign = "right";
  for (const v of niceTicks(b0, b1, 4)) { ctx.fillText(fmt(v), L - 4, sy(v) + 3); ctx.beginPath(); ctx.moveTo(L - 3, sy(v)); ctx.lineTo(L, sy(v)); ctx.stroke(); }
  ctx.save(); ctx.translate(12, T + H / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center";
  ctx.fillText("measured dF/F (unitless; Randi 2023)", 0, 0); ctx.restore();
  ctx.textAlign = "left"; ctx.fillText("each: mean over 30 s after onset; axes scaled separately", 4, cv.height - 4);
  ctx.fillStyle = "#24323f";
  px.forEach((v, i) => { ctx.beginPath(); ctx.arc(sx(v), sy(py[i]), 2.5, 0, 6.3); ctx.fill(); });
  cv.setAttribute("aria-label", `Scatter plot of measured against predicted dF/F for ${m.n} neurons responding to ${S.result.stimulated.join(", ")} (${m.strain}); predicted from ${fmt(Math.min(...px))} to ${fmt(Math.max(...px))}, measured from ${fmt(Math.min(...py))} to ${fmt(Math.max(...py))}; Pearson r ${m.pearson ?? "n/a"}.`);
  hover.textContent = "Hover over a point to read its neuron.";
  cv.onmousemove = (e) => {
    const r = cv.getBoundingClientRect(), mx = (e.clientX - r.left) * cv.width / r.width, my = (e.clientY - r.top) * cv.height / r.height;
    let best = -1, dist = 8;
    px.forEach((v, i) => { const d = Math.hypot(sx(v) - mx, sy(py[i]) - my); if (d < dist) { dist = d; best = i; } });
    if (best >= 0) hover.textContent = `${m.neurons[best]}: predicted ${fmt(px[best])}, measured ${fmt(py[best])} dF/F`;
  };
}

function showChanges() {
  const box = $("changes");
  if (!S.compare) { box.textContent = ""; return; }
  box.innerHTML = "<h3>Most changed vs wild type (max |ΔdF/F|)</h3>";
  box.append(S.compare.most_changed.map((c) => `${c.neuron} ${c.max_abs_change}`).join(" · "));
  if ((S.compare.ablated || []).length) {
    box.append(Object.assign(document.createElement("p"), { className: "hint", textContent: `Ablated, so no trace and no difference: ${S.compare.ablated.join(", ")}.` }));
  }
}

function setFrame(j) {
  if (!S.result) return;
  S.frame = j; $("scrub").value = j; $("time-label").textContent = `${S.result.time_s[j]} s`;
  colour(); drawTraces();
}

function togglePlay() {
  if (S.timer) { clearInterval(S.timer); S.timer = null; $("play").textContent = "Play"; return; }
  if (!S.result) return;  // nothing to play yet
  $("play").textContent = "Pause";
  S.timer = setInterval(() => { if (S.result) setFrame((S.frame + 1) % S.result.time_s.length); else togglePlay(); }, 120);
}

async function exportNetcdf(e) {
  e.preventDefault();
  if (!S.lastBody) return;
  const r = await fetch("/api/export.nc", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(S.lastBody) });
  if (!r.ok) { const d = await r.json(); const x = explain(d.detail, S.lastBody); showError(x.text, null, null, x.field); return; }
  const url = URL.createObjectURL(await r.blob());
  const a = document.createElement("a"); a.href = url; a.download = "digiworm_run.nc"; a.click();
  URL.revokeObjectURL(url);
}

// -- the in-silico atlas as a background job --------------------------------------------------
async function runAtlas() {
  hideError();
  const { model, ablate, knockout, drugs } = experimentBody();
  $("atlas-status").textContent = "starting…"; $("atlas-view").hidden = true;  // no stale matrix
  try {
    const { job } = await api("/api/jobs", { model, ablate, knockout, drugs: drugs || [] });
    S.job = job; S.jobModel = model;
    $("atlas-run").disabled = true; $("atlas-cancel").disabled = false;
    $("atlas-progress").hidden = false; $("atlas-view").hidden = true;
    pollAtlas();
  } catch (e) {
    $("atlas-status").textContent = "";
    const x = explain(e.message, { ablate }); showError(x.text, e.suggestions, null, x.field);
  }
}

function scoreText(s, model) {
  const strain = s.strain === "unc31" ? "unc-31" : "wild-type";
  let t = `done: clipped Pearson r ${s.pearson_clipped} vs the measured ${strain} atlas`;
  if (s.in_sample) t += ` (IN-SAMPLE: ${s.basis}, so this r measures fit, not prediction)`;
  else if (s.basis) t += ` (${s.basis})`;
  if (s.heldout) t += `; held-out r ${s.heldout.pearson_clipped} (${s.heldout.split}, from ${s.heldout.source})`;
  else if (s.in_sample && model.startsWith("fitted:")) t += "; no held-out score found beside this model (digiworm reproduce writes it into scores.json)";
  return `${t}. Anatomy baseline r ${s.anatomy_pearson_clipped}, noise ceiling ${s.noise_ceiling}.`;
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
  $("atlas-status").textContent = s ? scoreText(s, S.jobModel || "") : "done (no measured atlas for these perturbations)";
  $("atlas-command").textContent = r.command;
  drawAtlas(r);
}

function drawAtlas(r) {
  // responding neurons (rows) by stimulated neurons (columns), with names, colour bar and hover
  const cv = $("atlas-matrix"), ctx = cv.getContext("2d");
  const cols = r.neurons, rows = r.responding || r.neurons;
  const flat = r.dff.flat().filter((x) => x !== null).map(Math.abs).sort((a, b) => a - b);
  const vmax = Math.max(flat[Math.floor(0.99 * (flat.length - 1))] || 1e-6, 1e-9);
  const off = document.createElement("canvas"); off.width = cols.length; off.height = rows.length;
  const octx = off.getContext("2d"), img = octx.createImageData(cols.length, rows.length);
  r.dff.forEach((row, i) => row.forEach((x, j) => {
    const c = x === null ? [210, 210, 210] : diverging(x, vmax), k = 4 * (i * cols.length + j);
    img.data[k] = c[0]; img.data[k + 1] = c[1]; img.data[k + 2] = c[2]; img.data[k + 3] = 255;
  }));
  octx.putImageData(img, 0, 0);
  const L = 62, T = 8, size = 360, cw = size / cols.length, ch = size / rows.length;
  ctx.clearRect(0, 0, cv.width, cv.height);
  ctx.imageSmoothingEnabled = false; ctx.drawImage(off, L, T, size, size);
  ctx.strokeStyle = "#999"; ctx.lineWidth = 1; ctx.strokeRect(L, T, size, size);
  ctx.font = "8px sans-serif"; ctx.fillStyle = "#444";
  const step = Math.ceil(cols.length / 18);
  ctx.textAlign = "right";
  for (let i = 0; i < rows.length; i += step) ctx.fillText(rows[i], L - 3, T + (i + 0.5) * ch + 3);
  for (let j = 0; j < cols.length; j += step) {
    ctx.save(); ctx.translate(L + (j + 0.5) * cw + 3, T + size + 4); ctx.rotate(-Math.PI / 2); ctx.fillText(cols[j], 0, 0); ctx.restore();
  }
  ctx.font = "11px sans-serif"; ctx.fillStyle = "#222"; ctx.textAlign = "center";
  ctx.fillText("stimulated neuron (columns) →", L + size / 2, T + size + 52);
  ctx.save(); ctx.translate(11, T + size / 2); ctx.rotate(-Math.PI / 2); ctx.fillText("← responding neuron (rows)", 0, 0); ctx.restore();
  // colour bar
  const bx = L + size + 16, bh = 180;
  for (let k = 0; k < bh; k++) { ctx.fillStyle = rgb(diverging(vmax * (1 - 2 * k / (bh - 1)), vmax)); ctx.fillRect(bx, T + 14 + k, 14, 1); }
  ctx.strokeRect(bx, T + 14, 14, bh);
  ctx.fillStyle = "#222"; ctx.textAlign = "left"; ctx.font = "10px sans-serif";
  ctx.fillText("dF/F", bx, T + 8);
  ctx.fillText(`+${fmt(vmax)}`, bx + 18, T + 18); ctx.fillText("0", bx + 18, T + 14 + bh / 2 + 3); ctx.fillText(`−${fmt(vmax)}`, bx + 18, T + 14 + bh);
  ctx.fillStyle = "rgb(210,210,210)"; ctx.fillRect(bx, T + bh + 30, 14, 10); ctx.strokeRect(bx, T + bh + 30, 14, 10);
  ctx.fillStyle = "#222"; ctx.fillText("not", bx + 18, T + bh + 38); ctx.fillText("simulated", bx, T + bh + 52);
  // text alternative: size, scale and the strongest responses
  const top = [];
  r.dff.forEach((row, i) => row.forEach((x, j) => { if (x !== null && rows[i] !== cols[j]) top.push([Math.abs(x), i, j, x]); }));
  top.sort((a, b) => b[0] - a[0]);
  cv.setAttribute("aria-label", `Response matrix of the in-silico atlas: ${rows.length} responding neurons (rows) by ${cols.length} stimulated neurons (columns), colour = dF/F from −${fmt(vmax)} (blue) to +${fmt(vmax)} (red), grey = not simulated. Strongest responses: ${top.slice(0, 5).map(([, i, j, x]) => `stimulating ${cols[j]} → ${rows[i]} ${fmt(x)}`).join("; ")}.`);
  $("atlas-view").hidden = false;
  const hover = $("atlas-hover");
  hover.textContent = "Hover over the matrix to read one response.";
  cv.onmousemove = (e) => {
    const b = cv.getBoundingClientRect(), mx = (e.clientX - b.left) * cv.width / b.width, my = (e.clientY - b.top) * cv.height / b.height;
    const j = Math.floor((mx - L) / cw), i = Math.floor((my - T) / ch);
    if (i < 0 || j < 0 || i >= rows.length || j >= cols.length) return;
    const x = r.dff[i][j];
    hover.textContent = `stimulating ${cols[j]} → ${rows[i]} responds with dF/F ${x === null ? "n/a (not simulated)" : fmt(x)}`;
  };
}

// -- connectome edges -------------------------------------------------------------------------
async function loadEdges() {
  const kind = $("edge-kind").value, top = $("top-view");
  const g = top.querySelector("g.edges");
  if (!g) return;
  g.replaceChildren();
  if (!kind) { $("edge-count").textContent = ""; return; }
  const only = $("edge-selected").checked && S.selected;
  const q = new URLSearchParams({ kind, min_weight: $("edge-min").value || "0" });
  if (only) q.set("neuron", S.selected);
  if ($("edge-class").value.trim()) q.set("class", $("edge-class").value.trim().toUpperCase());
  try {
    const data = await api(`/api/connectome?${q}`);
    const pos = top._pos;
    const colour = { chemical: "#c0392b", gap: "#2980b9", peptide: "#8e44ad" }[kind];
    g.replaceChildren();
    for (const [pre, post, w] of data.edges.slice(0, 3000)) {
      const a = pos[pre], b = pos[post];
      const l = document.createElementNS(SVGNS, "line");
      l.setAttribute("x1", a[0]); l.setAttribute("y1", a[1]);
      l.setAttribute("x2", b[0]); l.setAttribute("y2", b[1]);
      l.setAttribute("stroke", colour); l.setAttribute("stroke-width", Math.min(4, 0.5 + Math.log1p(w)));
      g.append(l);
    }
    $("edge-count").textContent = `${data.edges.length} edges` + (data.edges.length > 3000 ? " (3000 drawn)" : "");
  } catch (e) { showError(e.message, e.suggestions); }
}

// -- guided tour ------------------------------------------------------------------------------
// Each step sets every form field it relies on (on top of the settings from before the tour),
// and leaving a step -- Next, Close or the end -- puts those settings back.
const TOUR_FIELDS = ["model", "stimulate", "ablate", "knockout", "drug", "dose", "duration", "compare", "edge-kind"];
const PLAIN = { model: "graded", ablate: "", knockout: "", drug: "", dose: "0", duration: "30", compare: false };
const TOUR = [
  { text: "The dots are the worm's 302 neurons at their measured soma positions. Click any one (or Tab to it and press Enter) to read its card: its partners, channels and measured responses. AVAL's card is open.",
    enter: () => select("AVAL") },
  { text: "AVA are command interneurons for backward locomotion. Now running: AVAL driven from 5 s on in the fitted graded network (the worm identified from the measured atlas)…",
    done: "AVA are command interneurons for backward locomotion. AVAL was driven from 5 s on in the fitted graded network: the traces show the responses. Press Play under the worm to watch the response spread, then Next.",
    form: { ...PLAIN, stimulate: "AVAL" }, run: true },
  { text: "Where the wet lab stimulated the same neuron (Randi et al. 2023), the measured responses appear below the traces beside the prediction, with their correlation.",
    form: { ...PLAIN, stimulate: "AVAL" } },
  { text: "RID signals mostly with neuropeptides. Now running: RID stimulated with unc-31 knocked out (no dense-core-vesicle release), beside wild type…",
    done: "RID stimulated with unc-31 knocked out, beside wild type (dashed lines): the responses that vanish are peptidergic, and the unc-31 atlas measured the same.",
    form: { ...PLAIN, stimulate: "RID", knockout: "unc-31", compare: true }, enter: () => select("RID"), run: true },
  { text: "The top view now shows the chemical synapses of the selected neuron. Close the tour to get your own settings back, then explore: ablate a neuron, apply a drug, or try another model.",
    form: { "edge-kind": "chemical" } },
];
let tourStep = -1, tourSaved = null;

function formState() {
  return Object.fromEntries(TOUR_FIELDS.map((id) => [id, $(id).type === "checkbox" ? $(id).checked : $(id).value]));
}
function setForm(state) {
  for (const [id, v] of Object.entries(state)) { if ($(id).type === "checkbox") $(id).checked = v; else $(id).value = v; }
}

async function tour(next) {
  if (!next) { if (tourStep >= 0) endTour(); tourSaved = formState(); tourStep = 0; } else tourStep += 1;
  if (tourStep >= TOUR.length) { endTour(); return; }
  const step = TOUR[tourStep], edges = $("edge-kind").value;
  setForm({ ...tourSaved, ...(step.form || {}) });
  if ($("edge-kind").value !== edges) loadEdges();
  $("tour").hidden = false;
  const say = (text) => { $("tour-text").textContent = `Step ${tourStep + 1} of ${TOUR.length}: ${text}`; };
  say(step.text);
  if (step.enter) step.enter();
  if (step.run) {
    const mine = tourStep;
    $("tour-next").disabled = true;
    const ok = await run();
    if (tourStep !== mine) return;  // closed or moved on meanwhile
    $("tour-next").disabled = false;
    say(ok ? step.done : "the run failed; the message above says why. Press Next to go on.");
  }
}
function endTour() {
  // put back the settings from before the tour (its results stay on screen)
  $("tour").hidden = true; $("tour-next").disabled = false;
  if (tourSaved) {
    const edges = $("edge-kind").value;
    setForm(tourSaved); tourSaved = null;
    if ($("edge-kind").value !== edges) loadEdges();
  }
  tourStep = -1;
}

// -- start ------------------------------------------------------------------------------------
function drugChoice(drugId, doseId, options) {
  // the drugs offered in a select; a chosen drug starts at its typical dose, not at 0 µM
  $(drugId).append(...options.drugs.map((d) => Object.assign(document.createElement("option"), { value: d.name, textContent: `${d.name} (typical ${d.typical_dose_uM} µM; potency ${d.evidence})`, title: `${d.class}. Potency: ${d.potency_source}` })));
  $(drugId).onchange = () => {
    const d = $(drugId).value;
    if (d && Number($(doseId).value) === 0) $(doseId).value = S.drugs[d];
  };
}


async function start() {
  try {
    const [table, options] = await Promise.all([api("/api/neurons"), api("/api/options")]);
    S.neurons = table.neurons; S.byName = Object.fromEntries(S.neurons.map((n) => [n.name, n]));
    S.limits = options.limits || {};
    S.drugs = Object.fromEntries(options.drugs.map((d) => [d.name, d.typical_dose_uM]));
    $("neuron-names").replaceChildren(...S.neurons.map((n) => Object.assign(document.createElement("option"), { value: n.name })));
    const known = new Set([...$("model").options].map((o) => o.value));
    $("model").append(...options.models.filter((m) => !known.has(m)).map((m) => Object.assign(document.createElement("option"), { value: m, textContent: m.replace("fitted:", "fitted: ") })));
    drugChoice("drug", "dose", options);
    drawWorm();
    initBehave(options);  // the moving worm (behave.js)
  } catch (e) { showError(`could not load the atlas: ${e.message}`); }
  $("search-form").onsubmit = (e) => { e.preventDefault(); select($("search").value); };
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
  document.addEventListener("keydown", (e) => { if (e.key === "Escape") closeChooser(); });
  document.addEventListener("mousedown", (e) => { if (!$("pick").contains(e.target)) closeChooser(); });
  $("tour-button").onclick = () => tour(false);
  $("tour-next").onclick = () => tour(true);
  $("tour-close").onclick = endTour;
  document.body.dataset.ready = "1";
}
start();
