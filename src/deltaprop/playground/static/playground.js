// deltaprop playground: draws what the server's engine computes; it computes nothing itself.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const CLASS_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                       "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const NUMBER_FIELDS = ["samples", "noise", "lr", "batch_size", "l2", "dropout", "seed"];
const TEXT_FIELDS = ["data", "activation", "loss", "optimizer", "init"];
const state = { session: null, socket: null, snapshot: null, playing: false,
                explanation: null, stepIndex: 0, options: null };

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
  $("data").onchange = syncDataFields;
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
  return s;
}

// --- talking to the server ------------------------------------------------------------------

async function build() {
  message("");
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
  if (m.type === "snapshot") render(m);
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
  const query = new URLSearchParams({ name: file.name, target: $("target").value.trim() });
  const response = await fetch(`/api/uploads?${query}`, {
    method: "POST", headers: { "Content-Type": "text/csv" }, body: file });
  const body = await response.json();
  if (!response.ok) { message(body.error); return; }
  $("data").add(new Option(body.upload, body.upload));
  $("data").value = body.upload;
  syncDataFields();
  message(`${body.upload}: ${body.rows} rows, features ${body.columns.join(", ")}`);
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

function mapImage(values, grid) {  // values: grid*grid percents, rows along y (bottom first)
  const canvas = document.createElement("canvas");
  canvas.width = grid; canvas.height = grid;
  const context = canvas.getContext("2d");
  for (let r = 0; r < grid; r++) {
    for (let c = 0; c < grid; c++) {
      context.fillStyle = colour(values[r * grid + c] / 100);
      context.fillRect(c, grid - 1 - r, 1, 1);
    }
  }
  return canvas.toDataURL();
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
  snapshot.layers.forEach((layer, l) => {
    const flat = layer.weight.flat();
    const largest = Math.max(...flat.map(Math.abs), 1e-9);
    layer.weight.forEach((row, j) => row.forEach((w, i) => {
      const a = positions[l][i], b = positions[l + 1][j];
      if (!a || !b) return;
      const line = element("line", {
        x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "edge", id: `edge-${l + 1}-${j}-${i}`,
        stroke: w >= 0 ? "#1f77b4" : "#e4670a", "stroke-width": 0.4 + 3.5 * Math.abs(w) / largest,
        "stroke-opacity": 0.35 + 0.6 * Math.abs(w) / largest }, edges);
      element("title", {}, line).textContent = `w = ${fmt(w)} (unit ${i + 1} → ${j + 1})`;
    }));
  });
  const plane = snapshot.plane;
  positions.forEach((column, c) => {
    const size = plane ? 30 : 20;
    column.forEach((p, j) => {
      const group = element("g", { id: `unit-${c}-${j}` }, svg);
      let image = null;
      if (plane && c > 0 && c < positions.length - 1 && plane.units[c - 1]) {
        image = mapImage(plane.units[c - 1][j], plane.grid);
      } else if (plane && c === 0) {
        image = mapImage(axisMap(plane.grid, j), plane.grid);
      }
      if (image) {
        element("image", { href: image, x: p.x - size / 2, y: p.y - size / 2, width: size,
                           height: size, style: "image-rendering: pixelated" }, group);
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
  const cell = canvas.width / plane.grid;
  const p = plane.prediction;
  const values = p.value || [];
  const low = Math.min(...values), high = Math.max(...values);
  for (let r = 0; r < plane.grid; r++) {
    for (let c = 0; c < plane.grid; c++) {
      const k = r * plane.grid + c;
      if (p.class) {
        context.globalAlpha = 0.15 + 0.5 * (p.confidence[k] / 100);
        context.fillStyle = CLASS_COLOURS[p.class[k] % 10];
      } else {
        context.globalAlpha = 0.7;
        context.fillStyle = colour((2 * (values[k] - low)) / (high - low || 1) - 1);
      }
      context.fillRect(c * cell, canvas.height - (r + 1) * cell, cell + 0.5, cell + 0.5);
    }
  }
  context.globalAlpha = 1;
  const [x0, x1] = plane.x, [y0, y1] = plane.y;
  plane.points.forEach(([x, y], i) => {
    context.beginPath();
    context.arc(((x - x0) / (x1 - x0)) * canvas.width,
                canvas.height - ((y - y0) / (y1 - y0)) * canvas.height, 2.5, 0, 2 * Math.PI);
    context.fillStyle = p.class ? CLASS_COLOURS[plane.labels[i] % 10] : "#333";
    context.strokeStyle = "white";
    context.fill(); context.stroke();
  });
}

function drawCurves(snapshot) {
  const canvas = $("curves");
  const context = canvas.getContext("2d");
  context.clearRect(0, 0, canvas.width, canvas.height);
  const h = snapshot.history;
  const series = [["loss", "#1f77b4", []], ["test_loss", "#1f77b4", [4, 3]],
                  ["accuracy", "#2ca02c", []], ["test_accuracy", "#2ca02c", [4, 3]]];
  const losses = [...(h.loss || []), ...(h.test_loss || [])].filter((v) => v !== null);
  const top = Math.max(...losses, 1e-9);
  const n = (h.loss || []).length;
  series.forEach(([name, stroke, dash]) => {
    const values = h[name];
    if (!values || !values.length) return;
    const scale = name.includes("loss") ? top : 1;
    context.beginPath();
    context.setLineDash(dash);
    context.strokeStyle = stroke;
    values.forEach((v, i) => {
      if (v === null) return;
      const x = 30 + (i * (canvas.width - 40)) / Math.max(n - 1, 1);
      const y = canvas.height - 20 - (v / scale) * (canvas.height - 40);
      if (i === 0) context.moveTo(x, y); else context.lineTo(x, y);
      if (values.length === 1) context.arc(x, y, 2, 0, 2 * Math.PI);  // one epoch: a dot
    });
    context.stroke();
  });
  context.setLineDash([]);
  context.fillStyle = "#222";
  context.fillText("loss (blue) and accuracy (green); dashed: test rows", 30, 12);
  context.fillText(`epoch ${snapshot.epoch}`, canvas.width - 70, canvas.height - 5);
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
        check.className = `check ${part.check.ok ? "ok" : "bad"}`;
        check.textContent = `${part.check.ok ? "✓" : "✗"} finite differences agree: relative ` +
          `error ${part.check.relative_error.toExponential(1)}`;
      }
      if (part.note) row.insertCell().textContent = part.note;
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
