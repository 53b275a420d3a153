// The app shell: header, hash router, live updates, the "manager gone" banner.
//
// Pages are modules exporting create(ctx) -> {refresh(), unmount(), minInterval?}; a page
// draws itself in ctx.root and re-fetches its own data in refresh(), which runs on mount
// and whenever the manager reports a change (at most once per page's minInterval).

import { get, lastAnswer, onConnectionChange } from "./api.js";
import { fill, formatTime, sleep } from "./dom.js";
import { startHeartbeat, startLive } from "./live.js";
import * as overview from "./pages/overview.js";
import * as trials from "./pages/trials.js";
import * as detail from "./pages/detail.js";
import * as compare from "./pages/compare.js";
import * as charts from "./pages/charts.js";
import * as experiments from "./pages/experiments.js";
import * as pareto from "./pages/pareto.js";
import * as experimentsCompare from "./pages/experiments-compare.js";
import { loadPlotly } from "./plot.js";

// "experiment": a manager's (or a view's) UI; "standalone": `nnictl webui`, the experiments
// pages only, served without an experiment.
const MODE = (document.querySelector('meta[name="nni-ui-mode"]') || {}).content === "standalone"
  ? "standalone" : "experiment";
const PAGES = MODE === "standalone"
  ? {experiments, "experiments-compare": experimentsCompare}
  : {overview, trials, trial: detail, compare, charts, experiments, pareto,
     "experiments-compare": experimentsCompare};
const HOME = MODE === "standalone" ? "experiments" : "overview";
const NAV = {overview: "overview", trials: "trials", trial: "trials", compare: "trials", charts: "charts",
             experiments: "experiments", pareto: "pareto", "experiments-compare": "experiments"};
// Pages that draw charts: plotly.js is fetched as they open, in parallel with their data.
const DRAWING = new Set(["overview", "trial", "compare", "charts", "pareto", "experiments-compare"]);

// What the first page draws first, asked for as the app starts, beside /ui/overview, rather
// than after it: the server answers the UI's requests in order, and the answer is then there
// when the page first refreshes (instead of one more round trip after plotly.js has run).
const EARLY = {overview: ["/ui/metric-series"], charts: ["/ui/metric-series"]};

const $ = (id) => document.getElementById(id);

// Answers asked for early (path -> promise), each taken once by the first page; dropped when
// the user moves on, so no later page reads an old one.
const early = new Map();

/** The early answer for `path` if there is one (once), else a fresh GET. */
function take(path) {
  const promise = early.get(path);
  early.delete(path);
  return promise || get(path);
}

const ctx = {
  mode: MODE,
  readOnly: false,
  experiment: null,     // the last /ui/overview answer
  progress: null,       // the last /progress answer (live only)
  toast,
  setStatus,
  take,
};

let current = null;          // {name, page, ...refresh bookkeeping}
let routed = false;          // the first page was shown: early answers are no longer current

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = raw.split("?");
  const [name, ...rest] = path.split("/");
  return {name: name || HOME, arg: rest.length ? decodeURIComponent(rest.join("/")) : null,
          params: new URLSearchParams(search)};
}

function route() {
  const {name, arg, params} = parseHash();
  const key = PAGES[name] ? name : HOME;
  if (routed) early.clear();
  routed = true;
  if (current && current.page.unmount) current.page.unmount();
  const root = $("page");
  root.replaceChildren();
  for (const link of document.querySelectorAll("#nav a")) {
    link.classList.toggle("active", link.dataset.page === NAV[key]);
  }
  if (DRAWING.has(key)) loadPlotly().catch(() => {});
  const page = PAGES[key].create(Object.assign(Object.create(ctx), {root, arg, params}));
  current = {name: key, page, lastRefresh: 0, pending: false, running: false};
  refresh(current);
}

/** Refresh the current page now, or as soon as its running refresh ends (coalesced). */
async function refresh(entry = current) {
  if (!entry) return;
  entry.pending = true;
  if (entry.running) return;
  entry.running = true;
  while (entry.pending && entry === current) {
    entry.pending = false;
    const wait = entry.lastRefresh + (entry.page.minInterval || 300) - Date.now();
    if (wait > 0) await sleep(wait);
    if (entry !== current) break;
    entry.lastRefresh = Date.now();
    try {
      await entry.page.refresh();
    } catch (error) {
      if (error.status !== 0 && error.status !== 503) toast(error.message, true);
    }
  }
  entry.running = false;
}

function setStatus(status) {
  const chip = $("exp-status");
  chip.textContent = status || "";
  chip.className = `status status-${status}`;
}

function showExperiment(info) {
  ctx.experiment = info;
  $("exp-name").textContent = info.name || "";
  $("exp-id").textContent = info.id || "";
  document.title = `${info.name || info.id || "experiment"} · nni-ng`;
  setStatus(info.status);
  // A multi-objective experiment (config `objectives`) has a Pareto-front page.
  const paretoLink = $("nav-pareto");
  paretoLink.hidden = !((info.config || {}).objectives || []).length;
  paretoLink.href = "#/pareto";          // a page of this app (/pareto redirects here too)
  paretoLink.dataset.page = "pareto";
}

let toastTimer = null;
function toast(message, isError = false) {
  const el = $("toast");
  el.textContent = message;
  el.className = isError ? "toast error" : "toast";
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, isError ? 8000 : 4000);
}

function setLive(state, title) {
  const dot = $("live");
  dot.className = `live ${state}`;
  dot.title = title;
}

onConnectionChange((connected) => {
  const banner = $("banner");
  // Controls cannot work without the manager: the stylesheet greys them out meanwhile.
  document.body.classList.toggle("disconnected", !connected);
  if (connected) {
    banner.hidden = true;
    setLive(ctx.readOnly ? "" : "on", ctx.readOnly ? "Read-only: a stopped experiment" : "Live");
    refresh();
  } else {
    fill(banner, `The experiment manager is not responding: it was stopped or has exited. `
      + `The data shown is from ${formatTime(lastAnswer())}. Retrying in the background…`);
    banner.hidden = false;
    setLive("off", "Disconnected");
  }
});

/** `nnictl webui`: no experiment, no live updates; the experiments page polls for itself. */
function startStandalone() {
  ctx.readOnly = true;
  document.body.classList.add("standalone");
  for (const link of document.querySelectorAll("#nav a")) link.hidden = link.dataset.page !== "experiments";
  document.querySelector(".brand").setAttribute("href", "#/experiments");
  $("exp-name").textContent = "All experiments";
  $("exp-status").hidden = true;
  document.title = "Experiments · nni-ng";
  window.addEventListener("hashchange", route);
  route();
  setLive("", "Experiments of this user, read from their stores");
}

async function start() {
  if (MODE === "standalone") {
    startStandalone();
    return;
  }
  let info = null;
  let asking = get("/ui/overview");   // first: the page is routed once it is answered
  const {name} = parseHash();
  for (const path of EARLY[PAGES[name] ? name : HOME] || []) {
    const promise = get(path);
    promise.catch(() => {});   // taken (and its failure reported) by the page
    early.set(path, promise);
  }
  while (!info) {
    try {
      info = await (asking || get("/ui/overview"));
    } catch {
      asking = null;
      early.clear();   // no server yet: the page asks again itself
      await sleep(2000);
    }
  }
  early.set("/ui/overview", Promise.resolve(info));   // the overview page's first refresh
  ctx.readOnly = info.readOnly;
  document.body.classList.toggle("read-only", ctx.readOnly);
  $("readonly-badge").hidden = !ctx.readOnly;
  showExperiment(info);
  window.addEventListener("hashchange", route);
  route();
  if (ctx.readOnly) {
    setLive("", "Read-only: a stopped experiment");
    startHeartbeat();
  } else {
    setLive("on", "Live");
    startLive((progress) => {
      ctx.progress = progress;
      setStatus(progress.status);
      refresh();
    });
  }
}

// Pages call this after fetching the overview, so the header follows along.
ctx.showExperiment = showExperiment;
// A page that skipped part of its work (throttled) asks to be refreshed again later.
ctx.refreshSoon = () => refresh();

start();
