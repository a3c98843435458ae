"use strict";
const D = JSON.parse(document.getElementById("data").textContent);
const NS = "http://www.w3.org/2000/svg";
const LANE = 260, PAD = 130;
const W = PAD * 2 + LANE * Math.max(D.lanes.length - 1, 1);
const X = {};
D.lanes.forEach((l, i) => { X[l] = PAD + i * LANE; });
function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  return e;
}
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function svgRow(height) {
  const s = el("svg", {width: W, height: height});
  D.lanes.forEach(l => s.appendChild(el("line", {x1: X[l], x2: X[l], y1: 0, y2: height, class: "lane"})));
  return s;
}
function header() {
  const row = h("div", "row");
  row.appendChild(h("div", "time", "time (s)"));
  const s = el("svg", {width: W, height: 28});
  D.lanes.forEach(l => s.appendChild(el("text", {x: X[l], y: 18, "text-anchor": "middle", class: "lbl", "font-weight": "bold"}, l)));
  row.appendChild(s);
  document.getElementById("lanes").appendChild(row);
}
function arrow(s, step, y, cls) {
  const x1 = X[step.src], x2 = X[step.dst];
  const dir = x2 >= x1 ? 1 : -1;
  const g = el("g", {class: "arrowline"});
  g.appendChild(el("line", {x1: x1, x2: x2 - dir * 7, y1: y, y2: y, class: "arrow " + cls}));
  g.appendChild(el("path", {d: `M${x2},${y} l${-dir * 8},-4 v8 z`, class: cls}));
  s.appendChild(g);
  const mid = (x1 + x2) / 2;
  s.appendChild(el("text", {x: mid, y: y - 5, "text-anchor": "middle", class: "lbl " + cls}, step.g.length > 60 ? step.g.slice(0, 57) + "..." : step.g));
}
function states(s, step, y) {
  step.st.forEach(([lane, state, who]) => {
    const x = X[lane] + 6, w = state.length * 6.5 + 8;
    const g = el("g", {class: "fsm"});
    g.appendChild(el("title", {}, who + " -> " + state));
    g.appendChild(el("rect", {x: x, y: y + 2, width: w, height: 13, rx: 3, class: "statebox"}));
    g.appendChild(el("text", {x: x + 4, y: y + 12, class: "state"}, state));
    s.appendChild(g);
  });
}
function detail(step) {
  const d = h("div", "detail");
  d.appendChild(h("pre", "head", step.h));
  d.appendChild(h("pre", "tree", step.tree.join("\n")));
  const hex = h("div", "hex");
  const octets = [];
  for (let i = 0; i < step.hex.length; i += 2) {
    const o = h("span", "", step.hex.slice(i, i + 2));
    octets.push(o); hex.appendChild(o);
  }
  d.appendChild(hex);
  step.fields.forEach(f => {
    const row = h("div", "fld", `${f.s.toString(16).padStart(4, "0")}  ${"  ".repeat(f.d)}${f.l}`);
    row.dataset.s = f.s; row.dataset.e = f.e;
    row.addEventListener("mouseenter", () => { for (let i = f.s; i < f.e; i++) octets[i] && octets[i].classList.add("hl"); });
    row.addEventListener("mouseleave", () => octets.forEach(o => o.classList.remove("hl")));
    d.appendChild(row);
    if (f.b.length) d.appendChild(h("div", "bits", f.b.join("\n")));
  });
  return d;
}
function build() {
  header();
  if (D.note) document.getElementById("note").textContent = D.note;
  const ladder = document.getElementById("ladder");
  let last = null;
  D.steps.forEach(step => {
    if (last !== null && step.t !== null && step.t - last > D.pause) {
      ladder.appendChild(h("div", "pause", `... ${(step.t - last).toFixed(1)} s without a message or TCP event ...`));
    }
    if (step.t !== null) last = step.t;
    const row = h("div", "row " + (step.k === "message" ? "msg" : step.k));
    row.appendChild(h("div", "time", step.t === null ? "" : step.t.toFixed(6)));
    const height = step.st.length ? 40 : 30;
    const s = svgRow(height);
    const cls = step.k === "message" ? step.type : step.k;
    arrow(s, step, 18, cls);
    states(s, step, 20);
    row.appendChild(s);
    ladder.appendChild(row);
    if (step.k === "message") {
      row.dataset.index = step.i;
      row.title = step.h;
      let open = null;
      row.addEventListener("click", () => {
        if (open) { open.remove(); open = null; row.classList.remove("open"); return; }
        open = detail(step);
        row.after(open); row.classList.add("open");
      });
    }
  });
}
build();
