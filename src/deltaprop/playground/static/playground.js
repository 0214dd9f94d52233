// deltaprop playground: draws what the server's engine computes; it computes nothing itself.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const CLASS_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const NUMBER_FIELDS = ["samples", "noise", "lr", "batch_size", "l2", "dropout", "seed"];
const TEXT_FIELDS = ["data", "activation", "loss", "optimizer", "init"];
const state = { session: null, socket: null, snapshot: null, playing: false,
                explanation: null, stepIndex: 0, options: null, badUpload: null };
const VANISHING = 1e-6;  // a gradient whose entries all stay below this has all but vanished

// --- set-up ---------------------------------------------------------------------------------

async function start() {
  const options = await (await fetch("/api/options")).json();
  state.options = options;
  fill("data", options.data);
  fill("activation", options.activations);
  fill("loss", options.losses);
  fill("optimizer", options.optimizers);
  fill("init", options.inits);
  const d = options.defaults;
  for (const key of [...NUMBER_FIELDS, ...TEXT_FIELDS]) $(key).value = d[key];
  $("hidden").value = d.hidden.join(",");
  $("target").value = d.target || "";
  $("settings").addEventListener("submit", (event) => { event.preventDefault(); build(); });
  $("play").onclick = () => send({ type: state.playing ? "pause" : "play" }, !state.playing);
  $("step").onclick = () => send({ type: "step" });
  $("explain").onclick = () => send({ type: "explain", index: Number($("explain-index").value) });
  $("prev").onclick = () => showStep(state.stepIndex - 1);
  $("next").onclick = () => showStep(state.stepIndex + 1);
  $("upload").onchange = upload;
  $("data").onchange = () => { state.badUpload = null; syncDataFields(); };
  $("edges").onchange = () => { if (state.snapshot) render(state.snapshot); };
  syncDataFields();
}

function fill(id, names) {
  const select = $(id);
  select.replaceChildren(...names.map((name) => new Option(name, name)));
}

function syncDataFields() {
  const synthetic = state.options.synthetic.includes($("data").value);
  $("samples").disabled = !synthetic;
  $("noise").disabled = !synthetic;
}

function message(text) { $("message").textContent = text || ""; }

function settings() {
  const s = {};
  for (const key of TEXT_FIELDS) s[key] = $(key).value;
  for (const key of NUMBER_FIELDS) s[key] = $(key).value === "" ? null : Number($(key).value);
  const text = $("hidden").value.trim();
  const widths = text === "" ? [] : text.split(",").map((w) => Number(w.trim()));
  s.hidden = widths.every((w) => Number.isInteger(w)) ? widths : text;  // the server says why
  s.target = $("target").value.trim() || null;
  s.standardize = { auto: null, yes: true, no: false }[$("standardize").value];
  const uploaded = !state.options.data.includes(s.data);
  s.drop = uploaded ? $("drop").value.split(",").map((c) => c.trim()).filter((c) => c) : [];
  return s;
}

// --- talking to the server ------------------------------------------------------------------

async function build() {
  message("");
  if (state.badUpload) { message(state.badUpload); return; }  // never the old set silently
  if (state.socket) state.socket.close();
  setPlaying(false);
  const response = await fetch("/api/sessions", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(settings()) });
  const body = await response.json();
  if (!response.ok) { message(body.error); return; }
  state.session = body.id;
  $("status").dataset.session = body.id;
  for (const id of ["play", "step", "explain"]) $(id).disabled = false;
  for (const [id, path] of [["export-model", "model"], ["export-code", "code"]]) {
    $(id).href = `/api/sessions/${body.id}/${path}`;
    $(id).classList.remove("disabled");
  }
  clearExplanation();
  render(body.snapshot);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(`${scheme}${location.host}/api/sessions/${body.id}/ws`);
  socket.onmessage = (event) => receive(JSON.parse(event.data));
  socket.onclose = () => { if (state.socket === socket) setPlaying(false); };
  state.socket = socket;
}

function send(payload, playing) {
  if (!state.socket || state.socket.readyState !== WebSocket.OPEN) return;
  state.socket.send(JSON.stringify(payload));
  if (playing !== undefined) setPlaying(playing);
}

function receive(m) {
  if (m.type === "snapshot") drawSoon(m);
  else if (m.type === "explanation") explained(m);
  else if (m.type === "error") message(m.message);
  else if (m.type === "paused") { setPlaying(false); if (m.reason !== "asked") message(m.reason); }
}

function setPlaying(on) {
  state.playing = on;
  $("play").textContent = on ? "Pause" : "Play";
  $("step").disabled = on || !state.session;
}

async function upload() {
  const file = $("upload").files[0];
  if (!file) return;
  // the file is read without a target: its columns come back, to choose the target from
  const query = new URLSearchParams({ name: file.name });
  const response = await fetch(`/api/uploads?${query}`, {
    method: "POST", headers: { "Content-Type": "text/csv" }, body: file });
  const body = await response.json();
  if (!response.ok) {
    state.badUpload = `${file.name} was not loaded (${body.error}); choose another file or a ` +
      "built-in data set";
    message(state.badUpload);
    return;
  }
  state.badUpload = null;
  $("data").add(new Option(body.upload, body.upload));
  $("data").value = body.upload;
  $("columns").replaceChildren(...body.columns.map((c) => new Option(c, c)));
  syncDataFields();
  const target = $("target").value.trim();
  const chosen = target || (body.columns.includes("y") ? "y" : "");
  const pick = body.columns.includes(chosen)
    ? `target: ${chosen}${target ? "" : " (a column named y is the default)"}`
    : `type the target column (one of ${body.columns.join(", ")}), then build`;
  message(`${body.upload}: ${body.rows} rows; ${pick}`);
}

function drawSoon(snapshot) {  // draw the newest snapshot once per frame, then say so
  state.latest = snapshot;
  if (state.frame) return;
  state.frame = requestAnimationFrame(() => {
    state.frame = null;
    render(state.latest);
    send({ type: "drawn", epoch: state.latest.epoch });
  });
}

// --- drawing a snapshot ---------------------------------------------------------------------

function fmt(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e4 || (Math.abs(value) < 1e-3 && value !== 0)
    ? value.toExponential(2) : Number(value.toPrecision(4)).toString();
}

function render(snapshot) {
  state.snapshot = snapshot;
  const h = snapshot.history;
  const last = (name) => (h[name] && h[name].length ? h[name][h[name].length - 1] : null);
  const metric = snapshot.task === "classification" ? "accuracy" : "r2";
  $("status").dataset.epoch = snapshot.epoch;
  $("status").textContent = `epoch ${snapshot.epoch} · training loss ${fmt(last("loss"))} · ` +
    `test loss ${fmt(last("test_loss"))} · test ${metric} ${fmt(last("test_" + metric))}` +
    (snapshot.diverged ? " · the loss is not finite: build again with a smaller rate" : "");
  drawNetwork(snapshot);
  drawPlane(snapshot);
  drawCurves(snapshot);
  if (state.explanation) highlight(state.explanation.steps[state.stepIndex]);
}

function colour(v) {  // v in [-1, 1]: orange (negative), white, blue (positive)
  const t = Math.min(1, Math.abs(v));
  const [r, g, b] = v < 0 ? [228, 103, 10] : [31, 119, 180];
  return `rgb(${Math.round(255 + (r - 255) * t)},${Math.round(255 + (g - 255) * t)},` +
         `${Math.round(255 + (b - 255) * t)})`;
}

function lattice(grid, paint) {  // one pixel per lattice point, rows along y (bottom first)
  const canvas = document.createElement("canvas");
  canvas.width = grid; canvas.height = grid;
  const context = canvas.getContext("2d");
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      paint(context, r * grid + c);
      context.fillRect(c, grid - 1 - r, 1, 1);
    }
  }
  return canvas;
}

function smooth(source, size) {  // the lattice scaled up, interpolated between its points
  const canvas = document.createElement("canvas");
  canvas.width = size; canvas.height = size;
  const context = canvas.getContext("2d");
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(source, 0, 0, size, size);
  return canvas;
}

function mapImage(values, grid) {  // values: grid*grid percents in [-100, 100]
  const small = lattice(grid, (context, k) => { context.fillStyle = colour(values[k] / 100); });
  return smooth(small, 64).toDataURL();
}

function element(name, attributes, parent) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  if (parent) parent.appendChild(node);
  return node;
}

function unitPositions(snapshot, width, height) {
  const columns = snapshot.widths.length;
  return snapshot.widths.map((n, c) => {
    const drawn = Math.min(n, snapshot.drawn_units);
    const x = 60 + (c * (width - 190)) / Math.max(columns - 1, 1);
    const gap = Math.min(44, (height - 60) / Math.max(drawn, 1));
    const top = height / 2 - (gap * (drawn - 1)) / 2;
    return Array.from({ length: drawn }, (_, j) => ({ x, y: top + j * gap, n }));
  });
}

function drawNetwork(snapshot) {
  const svg = $("network");
  svg.replaceChildren();
  const width = Number(svg.getAttribute("width"));
  const height = Number(svg.getAttribute("height"));
  const positions = unitPositions(snapshot, width, height);
  const edges = element("g", {}, svg);
  const gradients = $("edges").value === "gradients";
  snapshot.layers.forEach((layer, l) => {
    const shown = gradients ? layer.grad : layer.weight;
    const flat = shown.flat();
    const largest = Math.max(...flat.map(Math.abs), 1e-300);
    shown.forEach((row, j) => row.forEach((v, i) => {
      const a = positions[l][i], b = positions[l + 1][j];
      if (!a || !b) return;
      const line = element("line", {
        x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge", id: `edge-${l + 1}-${j}-${i}`,
        stroke: v >= 0 ? "#1f77b4" : "#e4670a", "stroke-width": 0.4 + 3.5 * Math.abs(v) / largest,
        "stroke-opacity": 0.35 + 0.6 * Math.abs(v) / largest }, edges);
      element("title", {}, line).textContent = `w = ${fmt(layer.weight[j][i])}, ∂L/∂w = ` +
        `${fmt(layer.grad[j][i])} (unit ${i + 1} → ${j + 1})`;
    }));
    if (gradients) {  // each layer's gradient norm: vanishing gradients show as they fall
      const x = (positions[l][0].x + positions[l + 1][0].x) / 2;
      const tiny = layer.grad_norm < VANISHING;
      element("text", { x, y: height - 22, "text-anchor": "middle",
                        class: tiny ? "gradient-norm vanishing" : "gradient-norm",
                        id: `grad-norm-${l + 1}` }, svg).textContent =
        `‖∂L/∂W${l + 1}‖ = ${fmt(layer.grad_norm)}${tiny ? " vanishing" : ""}`;
    }
  });
  const plane = snapshot.plane;
  positions.forEach((column, c) => {
    const size = plane ? 30 : 20;
    column.forEach((p, j) => {
      const group = element("g", { id: `unit-${c}-${j}` }, svg);
      let image = null;
      const last = positions.length - 1;
      if (plane && c > 0 && c < last && plane.units[c - 1]) {
        image = mapImage(plane.units[c - 1][j], plane.grid);
      } else if (plane && c === last && plane.output && plane.output[j]) {
        image = mapImage(plane.output[j], plane.grid);  // the output unit: its probability
      } else if (plane && c === 0) {
        image = mapImage(axisMap(plane.grid, j), plane.grid);
      }
      if (image) {
        element("image", { href: image, x: p.x - size / 2, y: p.y - size / 2, width: size,
                           height: size, class: "heat" }, group);
      }
      element("rect", { x: p.x - size / 2, y: p.y - size / 2, width: size, height: size,
                        rx: image ? 2 : size / 2, class: "unit", "fill-opacity": image ? 0 : 1,
                        id: `box-${c}-${j}` }, group);
      const label = element("text", { x: p.x + size / 2 + 3, y: p.y + 3, class: "annotation",
                                      id: `ann-${c}-${j}` }, group);
      label.textContent = "";
      if (c === 0 && snapshot.features[j] !== undefined && snapshot.features.length <= 12) {
        element("text", { x: p.x - size / 2 - 4, y: p.y + 3, "text-anchor": "end" }, group)
          .textContent = snapshot.features[j];
      }
    });
    const n = snapshot.widths[c];
    const caption = c === 0 ? "input" : c === positions.length - 1 ? "output" : `layer ${c}`;
    element("text", { x: column[0].x, y: 14, "text-anchor": "middle" }, svg).textContent =
      `${caption} (${n})`;
    if (n > column.length) {
      element("text", { x: column[0].x, y: height - 8, "text-anchor": "middle" }, svg)
        .textContent = `${column.length} of ${n} drawn`;
    }
  });
}

function axisMap(grid, feature) {
  const values = [];
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) values.push(feature === 0 ? (200 * c) / (grid - 1) - 100
                                                              : (200 * r) / (grid - 1) - 100);
  }
  return values;
}

function drawPlane(snapshot) {
  const canvas = $("boundary");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const plane = snapshot.plane;
  if (!plane) {
    context.globalAlpha = 1;
    context.fillStyle = "#555";
    context.fillText("the decision map needs data of two features", 20, 150);
    return;
  }
  const p = plane.prediction;
  const values = p.value || [];
  const low = Math.min(...values), high = Math.max(...values);
  const small = lattice(plane.grid, (context, k) => {
    if (p.class) {
      context.globalAlpha = 0.15 + 0.5 * (p.confidence[k] / 100);
      context.fillStyle = CLASS_COLOURS[p.class[k] % 10];
    } else {
      context.globalAlpha = 0.7;
      context.fillStyle = colour((2 * (values[k] - low)) / (high - low || 1) - 1);
    }
  });
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = "high";
  context.drawImage(small, 0, 0, canvas.width, canvas.height);
  const [x0, x1] = plane.x, [y0, y1] = plane.y;
  const dot = ([x, y], label, test) => {
    context.beginPath();
    context.arc(((x - x0) / (x1 - x0)) * canvas.width,
                canvas.height - ((y - y0) / (y1 - y0)) * canvas.height, test ? 3 : 2.5, 0,
                2 * Math.PI);
    const shade = p.class ? CLASS_COLOURS[label % 10] : "#333";
    context.fillStyle = test ? "white" : shade;  // test rows: rings; training rows: dots
    context.strokeStyle = test ? shade : "white";
    context.lineWidth = test ? 1.8 : 1;
    context.fill(); context.stroke();
  };
  plane.points.forEach((point, i) => dot(point, plane.labels[i], false));
  (plane.test_points || []).forEach((point, i) => dot(point, plane.test_labels[i], true));
  context.lineWidth = 1;
}

function drawCurves(snapshot) {
  const canvas = $("curves");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const h = snapshot.history;
  const accuracy = snapshot.task === "classification" ? "accuracy" : "r2";
  const series = [["loss", "#1f77b4", []], ["test_loss", "#1f77b4", [4, 3]],
                  [accuracy, "#2ca02c", []], ["test_" + accuracy, "#2ca02c", [4, 3]]];
  const losses = [...(h.loss || []), ...(h.test_loss || [])].filter((v) => v !== null);
  const top = Math.max(...losses, 1e-9);
  const n = (h.loss || []).length;
  const left = 40, right = canvas.width - 34, upper = 22, lower = canvas.height - 28;
  const xOf = (i) => left + (i * (right - left)) / Math.max(n - 1, 1);
  const yOf = (fraction) => lower - fraction * (lower - upper);
  // axes: epochs along x, loss on the left (0 to its largest), the score on the right (0 to 1)
  context.strokeStyle = "#888";
  context.beginPath();
  context.moveTo(left, upper); context.lineTo(left, lower); context.lineTo(right, lower);
  context.lineTo(right, upper);
  context.stroke();
  context.fillStyle = "#444";
  context.font = "10px sans-serif";
  for (const fraction of [0, 0.5, 1]) {
    context.textAlign = "right";
    context.fillText(fmt(fraction * top), left - 3, yOf(fraction) + 3);
    context.textAlign = "left";
    context.fillText(fmt(fraction), right + 3, yOf(fraction) + 3);
  }
  context.textAlign = "center";
  const ticks = n > 1 ? [1, Math.ceil(n / 2), n] : [1];
  for (const epoch of [...new Set(ticks)]) context.fillText(String(epoch), xOf(epoch - 1), lower + 11);
  context.fillText("epoch", (left + right) / 2, canvas.height - 3);
  context.textAlign = "left";
  series.forEach(([name, stroke, dash]) => {
    const values = h[name];
    if (!values || !values.length) return;
    const scale = name.includes("loss") ? top : 1;
    context.beginPath();
    context.setLineDash(dash);
    context.strokeStyle = stroke;
    values.forEach((v, i) => {
      if (v === null) return;
      const x = xOf(i), y = yOf(Math.max(0, Math.min(1, v / scale)));
      if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
      if (values.length === 1) context.arc(x, y, 2, 0, 2 * Math.PI);  // one epoch: a dot
    });
    context.stroke();
  });
  context.setLineDash([]);
  context.fillStyle = "#222";
  context.fillText(`loss (blue, left) and ${accuracy} (green, right); dashed: test rows`, 4, 12);
}

// --- one sample's back propagation ----------------------------------------------------------

function clearExplanation() {
  state.explanation = null;
  $("step-title").textContent = "";
  $("step-body").replaceChildren();
  $("step-counter").textContent = "";
  $("prev").disabled = $("next").disabled = true;
}

function explained(m) {
  state.explanation = m.explanation;
  state.explanation.target = m.target;
  $("prev").disabled = $("next").disabled = false;
  showStep(0);
}

function formatData(data) {
  if (!Array.isArray(data)) return fmt(data);
  if (Array.isArray(data[0])) {
    const rows = data.slice(0, 8).map((row) => "[" + row.slice(0, 8).map(fmt).join(", ") +
                                                (row.length > 8 ? ", …" : "") + "]");
    return rows.join("\n") + (data.length > 8 ? "\n…" : "");
  }
  return "[" + data.slice(0, 12).map(fmt).join(", ") + (data.length > 12 ? ", …" : "") + "]";
}

function showStep(i) {
  const steps = state.explanation.steps;
  i = Math.max(0, Math.min(steps.length - 1, i));
  state.stepIndex = i;
  const step = steps[i];
  $("step-counter").textContent = `step ${i + 1} of ${steps.length} (row target: ` +
    `${state.explanation.target})`;
  $("step-title").textContent = (step.number ? `Step ${step.number}: ` : "") + step.title;
  const body = $("step-body");
  body.replaceChildren();
  let table = null;
  for (const part of step.parts) {
    if (part.type === "value") {
      if (!table) table = body.appendChild(document.createElement("table"));
      const row = table.insertRow();
      row.id = `value-${part.key}`;
      row.dataset.values = JSON.stringify(part.data);
      row.insertCell().textContent = part.text;
      const cell = row.insertCell();
      cell.textContent = formatData(part.data);
      cell.style.whiteSpace = "pre";
      const check = row.insertCell();
      if (part.check) {
        const tolerance = state.explanation.tolerance;
        check.className = `check ${part.check.ok ? "ok" : "bad"}`;
        check.textContent = (part.check.ok ? "✓ finite differences agree"
          : "✗ finite differences disagree") + `: relative error ` +
          `${part.check.relative_error.toExponential(1)} (tolerance ${tolerance.toExponential(0)})`;
      }
      if (part.note) row.insertCell().textContent = part.note;
      const fading = vanishing(part);
      if (fading) {
        const cell = row.insertCell();
        cell.className = "vanishing";
        cell.textContent = fading;
      }
      continue;
    }
    table = null;
    const node = body.appendChild(document.createElement(part.type === "prose" ? "p" : "div"));
    if (part.type === "equation") {
      node.className = "eq";
      node.textContent = part.text;
      if (part.shapes) {
        node.appendChild(document.createElement("span")).className = "shapes";
        node.lastChild.textContent = `shapes ${part.shapes}`;
      }
    } else node.textContent = part.text;
  }
  highlight(step);
}

function vanishing(part) {  // a gradient too small to move anything: say so, and why
  if (!/^(delta|dW|db|dL_da)/.test(part.key)) return "";
  const largest = Math.max(...[part.data].flat(3).map((v) => Math.abs(v)));
  if (largest === 0) return "all zero: no error reaches here (every gate on the way is closed)";
  if (largest >= VANISHING) return "";
  return `vanishing: every entry is below ${VANISHING.toExponential(0)} (largest ` +
    `${largest.toExponential(2)}); saturated units (σ or tanh near their limits) or closed ` +
    "ReLU gates pass almost no error back, so these weights barely learn";
}

function valueOf(step, key) {
  const part = step.parts.find((p) => p.type === "value" && p.key === key);
  return part ? part.data : null;
}

function annotate(column, values, prefix) {
  if (!values) return;
  const list = Array.isArray(values) ? values : [values];
  list.forEach((v, j) => {
    const label = $(`ann-${column}-${j}`);
    if (label) label.textContent = `${prefix}${fmt(v)}`;
    const box = $(`box-${column}-${j}`);
    if (box) box.classList.add("active");
  });
}

function highlight(step) {
  document.querySelectorAll("#network .annotation").forEach((t) => { t.textContent = ""; });
  document.querySelectorAll("#network .unit").forEach((u) => u.classList.remove(
    "active", "open", "closed"));
  document.querySelectorAll("#network .edge.active").forEach((e) => e.classList.remove("active"));
  document.querySelectorAll("#network .edge-annotation").forEach((t) => t.remove());
  if (!step || !state.snapshot) return;
  const L = state.snapshot.widths.length - 1;
  const layer = step.layer;
  if (step.kind === "forward") {
    annotate(0, valueOf(step, "x"), "x=");
    for (let l = 1; l < L; l++) annotate(l, valueOf(step, `a${l}`), "a=");
    annotate(L, valueOf(step, "y_hat"), "ŷ=");
  } else if (step.kind === "loss") {
    annotate(L, valueOf(step, "y"), "y=");
  } else if (step.kind === "output-error") {
    annotate(L, valueOf(step, `delta${L}`), "δ=");
  } else if (step.kind === "propagate") {
    annotate(layer, valueOf(step, `dL_da${layer}`), "∂L/∂a=");
  } else if (step.kind === "activation") {
    const gates = valueOf(step, `local${layer}`) || [];
    gates.forEach((g, j) => {
      const box = $(`box-${layer}-${j}`);
      if (box) box.classList.add(g > 0 ? "open" : "closed");
    });
    annotate(layer, valueOf(step, `delta${layer}`), "δ=");
  } else if (step.kind === "parameters") {
    annotate(layer, valueOf(step, `db${layer}`), "∂L/∂b=");
    const grads = valueOf(step, `dW${layer}`) || [];
    const svg = $("network");
    grads.forEach((row, j) => (Array.isArray(row) ? row : [row]).forEach((g, i) => {
      const edge = $(`edge-${layer}-${j}-${i}`);
      if (!edge) return;
      edge.classList.add("active");
      edge.querySelector("title").textContent += ` · ∂L/∂w = δ·a = ${fmt(g)}`;
      if (grads.length * (grads[0].length || 1) <= 48) {
        const x = (2 * Number(edge.getAttribute("x2")) + Number(edge.getAttribute("x1"))) / 3;
        const y = (2 * Number(edge.getAttribute("y2")) + Number(edge.getAttribute("y1"))) / 3;
        element("text", { x, y, class: "annotation edge-annotation" }, svg).textContent = fmt(g);
      }
    }));
  }
}

start();
