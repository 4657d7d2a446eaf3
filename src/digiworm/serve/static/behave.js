// digiworm explorer: the moving worm. A wild-type worm and a perturbed one, run by
// POST /api/behave and played side by side. Loaded before app.js, which calls initBehave().
"use strict";

const B = { data: null, frame: 0, timer: null, touches: [], lastBody: null };
// the medium slider: 0 water ... 10 agar, blended log-linearly in each drag coefficient
const MEDIUM_STEPS = 10;
const VIEW_MM = 2.4;  // the width each canvas shows, mm (the camera follows the worm)
const READOUTS = [
  ["speed_mm_per_s", "forward speed", "mm/s"], ["reverse_speed_mm_per_s", "reverse speed", "mm/s"],
  ["frequency_hz", "undulation frequency", "Hz"], ["wavelength_body_lengths", "wavelength", "body lengths"],
  ["reversals_per_min", "reversals", "per min"], ["fraction_backward", "time backward", "fraction"],
  ["co_contraction", "co-contraction", "0–1"], ["body_length_change", "body length change (assumed scale)", "fraction"],
  ["touch_reversals", "reversed after each touch", ""],
];

function mediumSpec(step) {
  const f = Number(step) / MEDIUM_STEPS;
  return f === 0 ? "water" : f === 1 ? "agar" : `blend:${f.toFixed(1)}`;
}
function mediumText(step) {
  const f = Number(step) / MEDIUM_STEPS;
  return f === 0 ? "water" : f === 1 ? "agar" : `${Math.round(100 * f)} % of the way from water to agar`;
}

function initBehave(options) {
  drugChoice("behave-drug", "behave-dose", options);  // app.js
  $("medium").oninput = () => { $("medium-label").textContent = mediumText($("medium").value); };
  $("behave-form").onsubmit = (e) => { e.preventDefault(); runWorms(); };
  $("touch-head").onclick = () => touch("anterior");
  $("touch-tail").onclick = () => touch("posterior");
  $("touch-clear").onclick = () => { B.touches = []; showTouches(); runWorms(); };
  $("behave-play").onclick = toggleWorms;
  $("behave-scrub").oninput = (e) => setWormFrame(Number(e.target.value));
}

function behaveBody() {
  const drug = $("behave-drug").value, dose = Number($("behave-dose").value);
  return {
    model: $("behave-model").value, medium: mediumSpec($("medium").value),
    duration_s: Number($("behave-duration").value),
    ablate: list("behave-ablate"), knockout: list("behave-knockout"),
    drugs: drug ? [{ name: drug, dose_uM: dose }] : [],
    touch: B.touches.map(([where, at_s]) => ({ where, at_s })), seed: 0,
  };
}

function touch(where) {
  const duration = Number($("behave-duration").value);
  let at = B.data ? B.data.time_s[B.frame] : 2;
  if (!B.data || B.frame === 0 || !(at > 0) || at >= duration - 1) at = 2;
  at = Math.round(at * 10) / 10;
  B.touches = [...B.touches, [where, at]].slice(-4);  // at most four touches per run
  showTouches();
  runWorms(Math.max(0, at - 1));
}

function showTouches() {
  $("touch-list").textContent = B.touches.length ? "touches: " + B.touches.map(([w, a]) => `${w === "anterior" ? "head" : "tail"} at ${a} s`).join(", ") : "";
  $("touch-clear").disabled = !B.touches.length;
}

async function runWorms(playFrom) {
  hideError();
  const body = behaveBody();
  if (B.timer) toggleWorms();
  $("behave-run").disabled = true;
  $("behave-status").textContent = "running the worms… (the first run compiles: up to a minute)";
  try {
    const data = await api("/api/behave", body);
    B.data = data; B.lastBody = body;
    prepare(data);
    $("behave-view").hidden = false;
    $("behave-scrub").max = data.time_s.length - 1;
    $("figure-b").hidden = !data.runs.perturbed;
    $("caption-b").textContent = data.runs.perturbed ? `perturbed: ${perturbationText(body)}` : "";
    $("caption-a").textContent = `wild type, ${data.medium}`;
    showWormTable(data);
    $("behave-evidence").textContent = JSON.stringify(data.evidence, null, 1);
    $("behave-command").textContent = Object.entries(data.runs).map(([k, r]) => `# ${k === "wild_type" ? "wild type" : "perturbed"}\n${r.command}`).join("\n");
    $("behave-status").textContent = `done: ${data.duration_s} s in ${data.medium}`;
    const start = playFrom === undefined ? 0 : data.time_s.findIndex((t) => t >= playFrom);
    setWormFrame(Math.max(0, start));
    if (playFrom !== undefined) toggleWorms();
  } catch (err) {
    const x = explainBehave(err.message);
    showError(x.text, err.suggestions, null, x.field);
    $("behave-status").textContent = "";
  } finally {
    $("behave-run").disabled = false;
  }
}

function explainBehave(message) {
  // a server message in the words of this form
  const text = String(message || "request failed");
  let field = null;
  if (/unknown neuron/.test(text)) field = "behave-ablate";
  else if (/unknown gene|knock/.test(text)) field = "behave-knockout";
  else if (/\bdose\b/.test(text)) field = "behave-dose";
  else if (/\bdrug\b/.test(text)) field = "behave-drug";
  else if (/medium|blend/.test(text)) field = "medium";
  else if (/duration/.test(text)) field = "behave-duration";
  const label = field ? document.querySelector(`label:has(#${field})`) : null;
  const name = label ? label.firstChild.textContent.trim() : "";
  return { text: name ? `The moving worm, ${name}: ${text}` : `The moving worm: ${text}`, field };
}

function perturbationText(body) {
  const parts = [];
  if (body.ablate.length) parts.push(`${body.ablate.join(", ")} ablated`);
  if (body.knockout.length) parts.push(body.knockout.join(", "));
  for (const d of body.drugs) parts.push(`${d.name} ${d.dose_uM} µM`);
  return parts.join("; ");
}

function prepare(data) {
  // per run: each frame's centroid (the camera) and the path walked so far
  for (const run of Object.values(data.runs)) {
    run.centroid = run.xy_mm.map((pts) => {
      let x = 0, y = 0;
      for (const [px, py] of pts) { x += px; y += py; }
      return [x / pts.length, y / pts.length];
    });
  }
}

function setWormFrame(j) {
  if (!B.data) return;
  B.frame = j; $("behave-scrub").value = j;
  $("behave-time").textContent = `${B.data.time_s[j].toFixed(2)} s`;
  drawMovingWorm($("worm-a"), B.data.runs.wild_type, j);
  if (B.data.runs.perturbed) drawMovingWorm($("worm-b"), B.data.runs.perturbed, j);
  drawGate();
}

function toggleWorms() {
  if (B.timer) { clearInterval(B.timer); B.timer = null; $("behave-play").textContent = "Play"; return; }
  if (!B.data) return;
  $("behave-play").textContent = "Pause";
  const ms = 1000 * B.data.frame_s;  // real time
  B.timer = setInterval(() => {
    if (!B.data || B.frame + 1 >= B.data.time_s.length) { toggleWorms(); return; }
    setWormFrame(B.frame + 1);
  }, ms);
}

function drawMovingWorm(canvas, run, j) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height;
  const px = W / VIEW_MM, [cx, cy] = run.centroid[j];
  const X = (x) => W / 2 + (x - cx) * px, Y = (y) => H / 2 - (y - cy) * px;
  ctx.clearRect(0, 0, W, H);
  // the grid stays put in the dish: the worm moves over it
  ctx.strokeStyle = "#eee"; ctx.lineWidth = 1;
  const g = 0.5;
  for (let x = Math.floor((cx - VIEW_MM) / g) * g; x <= cx + VIEW_MM; x += g) { ctx.beginPath(); ctx.moveTo(X(x), 0); ctx.lineTo(X(x), H); ctx.stroke(); }
  for (let y = Math.floor((cy - VIEW_MM) / g) * g; y <= cy + VIEW_MM; y += g) { ctx.beginPath(); ctx.moveTo(0, Y(y)); ctx.lineTo(W, Y(y)); ctx.stroke(); }
  // the path of the centroid so far
  ctx.strokeStyle = "#9ab"; ctx.lineWidth = 1.5; ctx.beginPath();
  run.centroid.slice(0, j + 1).forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y))));
  ctx.stroke();
  // the body: its centreline drawn 80 µm wide
  const pts = run.xy_mm[j];
  ctx.strokeStyle = "#e3d6b8"; ctx.lineCap = "round"; ctx.lineJoin = "round"; ctx.lineWidth = 0.08 * px;
  ctx.beginPath(); pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y)))); ctx.stroke();
  ctx.fillStyle = "#6b5a3a"; ctx.beginPath(); ctx.arc(X(pts[0][0]), Y(pts[0][1]), 0.025 * px, 0, 2 * Math.PI); ctx.fill();
  // the neurons on it, coloured by their change from the wild type's rest
  const Q = B.data.activity_scale.levels, row = run.activity[j], n = pts.length - 1;
  B.data.neurons.forEach((neuron, i) => {
    const s = Math.min(n - 1e-6, Math.max(0, neuron.along * n)), k = Math.floor(s), f = s - k;
    const [x0, y0] = pts[k], [x1, y1] = pts[Math.min(k + 1, n)];
    const tx = x1 - x0, ty = y1 - y0, tl = Math.hypot(tx, ty) || 1;
    const off = -0.03 * neuron.across;  // dorsal (positive) on the right of head-to-tail, mm
    const x = x0 + f * tx + off * (-ty / tl), y = y0 + f * ty + off * (tx / tl);
    const v = row[i];
    ctx.fillStyle = v === null ? "#ccc" : rgb(diverging(v, Q));
    ctx.strokeStyle = "rgba(0,0,0,0.35)"; ctx.lineWidth = 0.5;
    ctx.beginPath(); ctx.arc(X(x), Y(y), 2.6, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
  });
  // a touch being given: a mark at the head or the tail
  const t = B.data.time_s[j];
  for (const tc of B.data.touch) {
    if (t < tc.at_s || t >= tc.at_s + 1) continue;
    const [x, y] = tc.where === "anterior" ? pts[0] : pts[n];
    ctx.strokeStyle = "#1a7f37"; ctx.lineWidth = 3;
    ctx.beginPath(); ctx.arc(X(x), Y(y), 0.09 * px, 0, 2 * Math.PI); ctx.stroke();
  }
  // the scale bar, the time and the direction
  ctx.fillStyle = "#333"; ctx.fillRect(10, H - 14, 0.5 * px, 3);
  ctx.font = "12px system-ui, sans-serif";
  ctx.fillText("0.5 mm", 10, H - 20);
  const back = run.backward_gate[j] > 0.5;
  ctx.fillText(`${t.toFixed(1)} s · ${back ? "backward" : "forward"}`, 10, 16);
}

function drawGate() {
  const c = $("behave-gate"), ctx = c.getContext("2d"), W = c.width, H = c.height;
  const d = B.data, T = d.duration_s, L = 46, R = 10, top = 8, bottom = 22;
  const X = (t) => L + (W - L - R) * t / T, Y = (v) => top + (H - top - bottom) * (1 - v);
  ctx.clearRect(0, 0, W, H);
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#555"; ctx.strokeStyle = "#999"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(L, Y(0)); ctx.lineTo(W - R, Y(0)); ctx.moveTo(L, Y(0)); ctx.lineTo(L, Y(1)); ctx.stroke();
  ctx.fillText("backward", 2, Y(1) + 8); ctx.fillText("forward", 2, Y(0));
  for (const t of niceTicks(0, T, 6)) ctx.fillText(`${t} s`, X(t) - 8, H - 6);
  for (const tc of d.touch) {
    ctx.fillStyle = "rgba(26,127,55,0.18)"; ctx.fillRect(X(tc.at_s), Y(1), X(tc.at_s + 1) - X(tc.at_s), Y(0) - Y(1));
  }
  const lines = [["wild_type", "#222", "wild type"], ["perturbed", "#c0392b", "perturbed"]];
  lines.forEach(([key, colourName, label], k) => {
    const run = d.runs[key];
    if (!run) return;
    ctx.strokeStyle = colourName; ctx.lineWidth = 1.5; ctx.beginPath();
    run.backward_gate.forEach((v, i) => (i ? ctx.lineTo(X(d.time_s[i]), Y(v)) : ctx.moveTo(X(d.time_s[i]), Y(v))));
    ctx.stroke();
    ctx.fillStyle = colourName; ctx.fillText(label, W - R - 150 + 80 * k, top + 10);
  });
  ctx.strokeStyle = "#0050c8"; ctx.beginPath(); ctx.moveTo(X(d.time_s[B.frame]), Y(0)); ctx.lineTo(X(d.time_s[B.frame]), Y(1)); ctx.stroke();
}

function showWormTable(data) {
  const runs = data.runs, keys = Object.keys(runs);
  const head = ["read-out", ...keys.map((k) => (k === "wild_type" ? "wild type" : "perturbed")), "units"];
  const rows = READOUTS.map(([key, label, units]) => [label, ...keys.map((k) => {
    const v = runs[k].readouts[key];
    return Array.isArray(v) ? (v.length ? v.map((b) => (b ? "yes" : "no")).join(", ") : "no touch") : fmt(v);
  }), units]);
  const table = $("behave-table");
  table.replaceChildren();
  const tr = (cells, tag) => { const r = document.createElement("tr"); for (const c of cells) r.append(Object.assign(document.createElement(tag), { textContent: c })); return r; };
  table.append(tr(head, "th"), ...rows.map((r) => tr(r, "td")));
  const scores = runs.wild_type.scores;
  if (scores.length) {
    table.append(tr(["wild type against the papers", "", ...keys.slice(1).map(() => ""), ""], "th"));
    for (const s of scores) {
      const mark = s.in_range === true ? "in range" : s.in_range === false ? "out of range" : "no range";
      table.append(tr([`${s.quantity} (target ${fmt(s.target)} ${s.units})`, `${fmt(s.simulated)} · ${mark}`, ...keys.slice(1).map(() => ""), s.units], "td"));
    }
  }
}
