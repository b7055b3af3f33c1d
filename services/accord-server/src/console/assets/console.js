// Accord console: loads each view with the tab's token, keeps it live over
// Server-Sent Events (read with fetch, so that the token goes as a header),
// resumes from the last position seen after a lost connection.
"use strict";

const TOKEN_KEY = "accord-console-token";
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  caller: null,
  last: 0,
  live: null,
  refresh: null,
  rates: [],
  lastHead: null,
};

function headers() {
  const out = { "x-accord-console": "1" };
  if (state.token) out.authorization = "Bearer " + state.token;
  return out;
}

const main = () => document.getElementById("view");

function setConnection(text, lost) {
  const status = document.getElementById("connection");
  status.textContent = text;
  status.classList.toggle("lost", !!lost);
}

function showLogin(message) {
  document.getElementById("login").hidden = false;
  main().hidden = true;
  document.getElementById("login-error").textContent = message || "";
  document.getElementById("token").focus();
}

async function whoami() {
  const response = await fetch("/api/whoami", { headers: headers() });
  if (response.status === 401 || response.status === 403) {
    showLogin(state.token ? "That token is not accepted." : "");
    return false;
  }
  state.caller = await response.json();
  document.getElementById("login").hidden = true;
  main().hidden = false;
  return true;
}

function currentPath() {
  return location.pathname + location.search;
}

function markNavigation() {
  const section = "/" + location.pathname.split("/")[1];
  for (const link of document.querySelectorAll("nav a")) {
    const here = link.getAttribute("href") === (section === "/" ? "/" : section);
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function load(path, options) {
  const response = await fetch("/fragment" + path, { headers: headers() });
  if (response.status === 401) {
    showLogin("Your token was not accepted.");
    return;
  }
  const text = await response.text();
  const view = main();
  if (!response.ok) {
    view.innerHTML = "";
    const p = document.createElement("p");
    p.setAttribute("role", "alert");
    p.textContent = text;
    view.appendChild(p);
    return;
  }
  view.innerHTML = text;
  const head = view.querySelector("[data-head]");
  if (head) state.last = Math.max(state.last, Number(head.dataset.head));
  const title = view.querySelector("h1");
  document.title = (title ? title.textContent + " · " : "") + "Accord console";
  markNavigation();
  if (!(options && options.quiet) && title) {
    title.setAttribute("tabindex", "-1");
    title.focus();
  }
  drawRate();
}

function navigate(path) {
  history.pushState({}, "", path);
  restartLive();
  load(path);
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a");
  if (!link || link.target || link.origin !== location.origin) return;
  if (link.pathname.startsWith("/assets") || event.ctrlKey || event.metaKey) return;
  event.preventDefault();
  navigate(link.pathname + link.search);
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  event.preventDefault();
  if (form.id === "login") {
    state.token = document.getElementById("token").value.trim();
    sessionStorage.setItem(TOKEN_KEY, state.token);
    start();
    return;
  }
  const query = new URLSearchParams();
  for (const [name, value] of new FormData(form)) {
    if (String(value).trim() !== "") query.set(name, String(value).trim());
  }
  const action = new URL(form.action, location.origin).pathname;
  navigate(action + (query.toString() ? "?" + query : ""));
});

window.addEventListener("popstate", () => {
  restartLive();
  load(currentPath());
});

// A view made of log-derived figures loads again when the log moves;
// the log view adds rows instead. A form being filled is not disturbed.
function scheduleRefresh() {
  if (state.refresh) return;
  state.refresh = setTimeout(() => {
    state.refresh = null;
    const active = document.activeElement;
    if (active && main().contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName)) {
      scheduleRefresh();
      return;
    }
    if (new URLSearchParams(location.search).get("as_of")) return;
    load(currentPath(), { quiet: true });
  }, 400);
}

function onAppend(data) {
  const table = main().querySelector("table[data-live-rows] tbody");
  if (table && data.row) {
    table.insertAdjacentHTML("afterbegin", data.row);
    while (table.rows.length > 200) table.deleteRow(table.rows.length - 1);
  } else if (!table) {
    scheduleRefresh();
  }
}

function onHead(data) {
  const now = Date.now();
  if (state.lastHead) {
    const seconds = (now - state.lastHead.at) / 1000;
    if (seconds > 0) {
      state.rates.push(Math.max(0, (data.head - state.lastHead.head) / seconds));
      if (state.rates.length > 60) state.rates.shift();
    }
  }
  state.lastHead = { head: data.head, at: now };
  drawRate();
}

function drawRate() {
  const rate = document.getElementById("rate");
  const chart = document.getElementById("rate-chart");
  if (!rate || !chart || state.rates.length === 0) return;
  rate.textContent = Math.round(state.rates[state.rates.length - 1]).toLocaleString("en") + " events/s";
  const top = Math.max(1, ...state.rates);
  const points = state.rates
    .map((value, index) => `${index * 2},${24 - (value / top) * 22}`)
    .join(" ");
  chart.innerHTML = `<polyline points="${points}"></polyline>`;
}

// Reads a Server-Sent Events body, calling `handle(event, data)`.
async function readEvents(response, handle) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) handle(name, JSON.parse(data));
    }
  }
}

function restartLive() {
  if (state.live) state.live.abort();
  state.live = null;
  live();
}

async function live() {
  const controller = new AbortController();
  state.live = controller;
  let pause = 500;
  while (!controller.signal.aborted) {
    const query = new URLSearchParams(location.pathname === "/log" ? location.search : "");
    query.set("after", String(state.last));
    try {
      const response = await fetch("/live?" + query, { headers: headers(), signal: controller.signal });
      if (response.status === 401) return showLogin("Your token was not accepted.");
      if (!response.ok) throw new Error(await response.text());
      setConnection("Live");
      pause = 500;
      await readEvents(response, (name, data) => {
        if (typeof data.position === "number") state.last = Math.max(state.last, data.position);
        if (name === "append") onAppend(data);
        if (name === "head") onHead(data);
      });
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    setConnection("Connection lost; reconnecting…", true);
    await new Promise((resolve) => setTimeout(resolve, pause));
    pause = Math.min(pause * 2, 10000);
    // Figures may have moved meanwhile: load the view again once back (the
    // log's rows come from the feed, which resumes after the last one seen).
    if (!main().querySelector("table[data-live-rows]")) scheduleRefresh();
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const action = button.dataset.action;
  const progress = document.getElementById("action-progress");
  const status = document.getElementById("action-status");
  for (const other of document.querySelectorAll("button[data-action]")) other.disabled = true;
  progress.hidden = false;
  progress.value = 0;
  status.textContent = action === "verify" ? "Verifying the log…" : "Rebuilding the read models…";
  try {
    const response = await fetch("/action/" + action, { method: "POST", headers: headers() });
    if (!response.ok) throw new Error(await response.text());
    await readEvents(response, (name, data) => {
      if (data.total > 0) progress.value = Math.round((100 * data.done_count) / data.total);
      status.textContent = data.message;
    });
  } catch (error) {
    status.textContent = "Failed: " + error.message;
  } finally {
    for (const other of document.querySelectorAll("button[data-action]")) other.disabled = false;
  }
});

async function start() {
  if (!(await whoami())) return;
  await load(currentPath(), { quiet: true });
  restartLive();
}

start();
