// The wsconn reference frontend: a WebSocket client that reconnects the way pytest-wsconn's
// ReconnectingClient does (same states, full-jitter backoff, transition log), with a status
// indicator, a "Reconnect now" control, a fallback mode, a troubleshooting panel fed by the
// close-code catalogue (/frontend/catalogue.json, exported from pytest_wsconn.closecodes) and a
// connection diagnostics panel. Plain JS, no build step, no third-party code.
//
// Settings come from the page's query string: token, ws (a WebSocket URL other than this
// server's /ws), initial, factor, max_delay, max_attempts ("none": forever), reset_after,
// fallback_after (seconds and counts, as in BackoffPolicy).
"use strict";

const params = new URLSearchParams(location.search);
const setting = (name, fallback) => {
  const value = Number(params.get(name));
  return params.has(name) && Number.isFinite(value) ? value : fallback;
};
const policy = {
  initial: setting("initial", 0.5),
  factor: setting("factor", 2),
  maxDelay: setting("max_delay", 30),
  maxAttempts: params.get("max_attempts") === "none" ? null : setting("max_attempts", 10),
  resetAfter: setting("reset_after", 30),
};
const fallbackAfter = params.has("fallback_after") ? setting("fallback_after", null) : null;
const CHECK_SECONDS = 5;
const $ = (id) => document.getElementById(id);
const now = () => performance.now() / 1000;

function wsUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(params.get("ws") || `${scheme}//${location.host}/ws`);
  if (params.get("token")) {
    url.searchParams.set("token", params.get("token"));
  }
  return url.toString();
}

function httpBase() {
  const url = new URL(wsUrl());
  return `${url.protocol === "wss:" ? "https:" : "http:"}//${url.host}`;
}

// Mirrors pytest_wsconn.backoff.Backoff with jitter "full".
class Backoff {
  constructor(settings, random = Math.random, clock = now) {
    Object.assign(this, { settings, random, clock, attempts: 0, openedAt: null });
  }
  nextDelay(suggested) {
    const n = this.attempts;
    this.attempts += 1;
    const { initial, factor, maxDelay, maxAttempts } = this.settings;
    if (maxAttempts !== null && this.attempts >= maxAttempts) {
      return null;
    }
    const delay = this.random() * Math.min(maxDelay, initial * factor ** n);
    return suggested ? Math.max(delay, suggested) : delay;
  }
  opened() {
    this.openedAt = this.clock();
  }
  closed() {
    const openedAt = this.openedAt;
    this.openedAt = null;
    if (openedAt !== null && this.clock() - openedAt >= this.settings.resetAfter) {
      this.reset();
    }
  }
  reset() {
    this.attempts = 0;
  }
}

let catalogue = { close: {}, http: {} };
const catalogueLoaded = fetch("/frontend/catalogue.json")
  .then((response) => response.json())
  .then((data) => { catalogue = data; })
  .catch(() => {}); // a page served elsewhere classifies with the fallback below

function classify(code, reason) {
  const known = catalogue.close[String(code)];
  const error = known || {
    category: code >= 3000 && code <= 4999 ? "app_defined" : "unknown",
    message: `The connection closed with code ${code}.`,
    causes: [],
    steps: [],
    retryable: true,
    min_retry_delay: 0,
  };
  return { ...error, code, reason };
}

function blocked(error) {
  const mixed = location.protocol === "https:" && wsUrl().startsWith("ws:");
  return {
    category: mixed ? "mixed_content" : "blocked",
    code: null,
    reason: `${error.name}: ${error.message}`,
    message: mixed
      ? "Blocked as mixed content: an https page may not open a ws:// WebSocket."
      : "The browser refused to open this WebSocket before sending any request.",
    causes: mixed ? ["the WebSocket URL says ws:// while the page is served over https"] : [],
    steps: mixed ? ["use wss:// (TLS at your proxy), or derive the scheme from location.protocol"] : [],
    retryable: false,
    min_retry_delay: 0,
  };
}

const app = {
  state: "idle",
  started: now(),
  transitions: [],
  error: null,
  socket: null,
  timer: null,
  backoff: new Backoff(policy),
};

function move(target, cause, extra = {}) {
  const transition = { at: now(), source: app.state, target, cause, ...extra };
  app.transitions.push(transition);
  app.state = target;
  const status = $("status");
  status.textContent = target;
  status.dataset.state = target;
  $("fallback").hidden = target !== "fallback";
  $("send").disabled = target !== "open";
  const delay = extra.delay === undefined ? "" : ` (next try in ${extra.delay.toFixed(2)} s)`;
  const line = document.createElement("li");
  line.textContent = `+${(transition.at - app.started).toFixed(3)}s ${transition.source} → ${target}: ${cause}${delay}`;
  $("transitions").append(line);
}

function showTrouble(error) {
  $("troubleshooting").hidden = error === null;
  if (error === null) {
    return;
  }
  const said = error.reason ? ` The server said: "${error.reason}".` : "";
  const code = error.code === null ? "" : `${error.code} `;
  $("trouble-message").textContent = `${code}${error.category}: ${error.message}${said}`;
  const fill = (list, items) => list.replaceChildren(...items.map((item) => {
    const entry = document.createElement("li");
    entry.textContent = item;
    return entry;
  }));
  fill($("trouble-causes"), error.causes);
  fill($("trouble-steps"), error.steps);
}

function attempt() {
  app.timer = null;
  let socket;
  try {
    socket = new WebSocket(wsUrl(), ["wsconn.v1"]);
  } catch (error) {
    retry(blocked(error));
    return;
  }
  app.socket = socket;
  socket.onopen = () => {
    app.backoff.opened();
    app.error = null;
    move("open", "connected");
  };
  socket.onmessage = (event) => {
    const line = document.createElement("li");
    line.textContent = String(event.data);
    $("received").append(line);
  };
  socket.onclose = (event) => {
    app.socket = null;
    app.backoff.closed();
    catalogueLoaded.then(() => retry(classify(event.code, event.reason)));
  };
}

function retry(error) {
  app.error = error;
  showTrouble(error);
  if (!error.retryable) {
    move("failed", `not retrying: ${error.category}: ${error.message}`);
    return;
  }
  const failures = app.backoff.attempts;
  const suggested = error.min_retry_delay || null;
  let delay = app.backoff.nextDelay(suggested);
  const degraded = fallbackAfter !== null && failures + 1 >= fallbackAfter;
  if (delay === null && !degraded) {
    move("failed", `gave up after ${failures + 1} attempts: ${error.category}: ${error.message}`);
    return;
  }
  if (degraded) {
    delay = Math.max(policy.maxDelay, suggested || 0);
  }
  move(degraded ? "fallback" : "reconnecting", `${error.category}: ${error.message}`, { delay, failures });
  app.timer = setTimeout(attempt, delay * 1000);
}

function start() {
  app.backoff.reset();
  move("connecting", app.state === "idle" ? "started" : "reconnect now");
  attempt();
}

// Skip the current wait (reconnecting, fallback); start over after failed. Like reconnect_now().
function reconnectNow() {
  if (app.state === "failed") {
    start();
  } else if (app.timer !== null) {
    clearTimeout(app.timer);
    attempt();
  }
}

// Diagnostics: ordered checks from this browser, each with a deadline, then a verdict.
function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_SECONDS} s`)), CHECK_SECONDS * 1000);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

async function getJson(path) {
  const response = await fetch(`${httpBase()}${path}`, { cache: "no-store" });
  if (!response.ok) {
    throw new Error(`HTTP ${response.status}`);
  }
  return response.json();
}

function openProbe() {
  return new Promise((resolve, reject) => {
    const started = now();
    const probe = new WebSocket(wsUrl(), ["wsconn.v1"]);
    probe.onopen = () => resolve({ probe, seconds: now() - started });
    probe.onclose = (event) => reject(new Error(`closed with ${event.code} before opening`));
  });
}

function echo(probe) {
  return new Promise((resolve, reject) => {
    const started = now();
    const text = `diagnostics ${Math.random()}`;
    probe.onmessage = (event) => event.data === text && resolve(now() - started);
    probe.onclose = (event) => reject(new Error(`closed with ${event.code} before the echo`));
    probe.send(text);
  });
}

async function runDiagnostics() {
  const report = $("diagnostics-report");
  report.replaceChildren();
  $("diagnostics-verdict").textContent = "running…";
  let probe = null;
  const checks = [
    ["GET /health", async () => (await getJson("/health")).status],
    ["GET /health/websocket", async () => {
      const health = await getJson("/health/websocket");
      if (!health.config.ok) {
        throw new Error(health.config.problems.join("; "));
      }
      return `${health.active_connections} open, ${health.accepted} accepted`;
    }],
    ["WebSocket handshake", async () => {
      const opened = await openProbe();
      probe = opened.probe;
      return `open in ${(opened.seconds * 1000).toFixed(0)} ms`;
    }],
    ["round trip", async () => {
      if (probe === null) {
        throw new Error("skipped: no connection to send on");
      }
      return `echo in ${((await echo(probe)) * 1000).toFixed(0)} ms`;
    }],
  ];
  const failed = [];
  for (const [name, check] of checks) {
    const line = document.createElement("li");
    try {
      line.textContent = `${name}: ${await withDeadline(check(), name)}`;
      line.className = "pass";
    } catch (error) {
      line.textContent = `${name}: ${error.message}`;
      line.className = "fail";
      failed.push(name);
    }
    report.append(line);
  }
  if (probe !== null) {
    probe.onclose = null;
    probe.close(1000, "diagnostics done");
  }
  $("diagnostics-verdict").textContent = failed.length ? `failed: ${failed.join(", ")}` : "all checks passed";
  return failed;
}

$("reconnect").addEventListener("click", reconnectNow);
$("run-diagnostics").addEventListener("click", runDiagnostics);
$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  if (app.socket !== null && app.state === "open") {
    app.socket.send($("message").value);
  }
});
window.wsconnApp = {
  state: () => app.state,
  transitions: () => app.transitions.map((t) => ({ ...t })),
  send: (text) => app.socket !== null && app.socket.send(text),
  reconnectNow,
  runDiagnostics,
};
start();
