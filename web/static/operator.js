"use strict";
// The operator's panels: the backlog and consumers and the last hour's
// throughput (GET /stats), failures by reason with their retry buttons
// (GET /photos/failures, POST /photos/retry), and the forms that add photos
// by URL (POST /photos/urls then POST /photos/process) or upload one
// (POST /photos). Tells app.js to refresh the photos with a "photos:changed" event.

const $ = (id) => document.getElementById(id);
const message = $("message");
const SVG = "http://www.w3.org/2000/svg";
const CHART = { width: 300, height: 80 };
let timer = null;

function say(text, kind = "info") {
  message.textContent = text;
  message.dataset.kind = kind;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

// fetch, then the JSON answer; a 401 (the key was revoked) reloads the page,
// which then asks for a key; any other error throws with the server's words.
async function call(url, options = {}) {
  const response = await fetch(url, options);
  if (response.status === 401) {
    window.location.reload();
    throw new Error("an API key is required");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const invalid = body.invalid ? `: ${body.invalid.map(String).join(", ")}` : "";
    throw new Error((body.error || response.statusText) + invalid);
  }
  return body;
}

function postJSON(url, body) {
  return call(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function changed() {
  document.dispatchEvent(new Event("photos:changed"));
  refresh();
}

// --- backlog and consumers -------------------------------------------------

function showBacklog(stats) {
  const byRole = Object.fromEntries((stats.queues || []).map((q) => [q.role, q]));
  document.querySelectorAll("#backlog [data-queue]").forEach((dd) => {
    const queue = byRole[dd.dataset.queue];
    dd.textContent = queue ? String(queue.messages) : "–";
    dd.classList.toggle("attention", Boolean(queue && queue.messages && dd.dataset.queue === "dead"));
  });
  const consumers = $("consumers");
  consumers.textContent = stats.consumers === null ? "–" : String(stats.consumers);
  consumers.classList.toggle("attention", stats.consumers === 0);
  const brokerError = $("broker-error");
  brokerError.hidden = !stats.broker_error;
  brokerError.textContent = stats.broker_error ? `RabbitMQ does not answer: ${stats.broker_error}` : "";
}

// --- the last hour, one stacked bar a minute -------------------------------

function rect(x, y, width, height, cls, minute) {
  const node = document.createElementNS(SVG, "rect");
  Object.entries({ x, y, width, height, class: cls }).forEach(([k, v]) => node.setAttribute(k, v));
  node.dataset.minute = minute;
  return node;
}

function showThroughput(minutes) {
  const chart = $("throughput");
  const completed = minutes.reduce((n, m) => n + m.completed, 0);
  const failed = minutes.reduce((n, m) => n + m.failed, 0);
  const peak = Math.max(1, ...minutes.map((m) => m.completed + m.failed));
  const slot = CHART.width / Math.max(1, minutes.length);
  const scale = (CHART.height - 2) / peak;
  const bars = [];
  minutes.forEach((m, i) => {
    const x = i * slot + slot * 0.1;
    const width = slot * 0.8;
    const done = m.completed * scale;
    const bad = m.failed * scale;
    const when = new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (done) bars.push(rect(x, CHART.height - done, width, done, "bar-completed", m.minute));
    if (bad) bars.push(rect(x, CHART.height - done - bad, width, bad, "bar-failed", m.minute));
    if (done || bad) {
      const title = document.createElementNS(SVG, "title");
      title.textContent = `${when}: ${m.completed} completed, ${m.failed} failed`;
      bars[bars.length - 1].append(title);
    }
  });
  const base = document.createElementNS(SVG, "line");
  Object.entries({ x1: 0, x2: CHART.width, y1: CHART.height - 0.5, y2: CHART.height - 0.5, class: "baseline" })
    .forEach(([k, v]) => base.setAttribute(k, v));
  chart.replaceChildren(base, ...bars);
  chart.dataset.completed = completed;
  chart.dataset.failed = failed;
  $("throughput-total").textContent = `${plural(completed, "photo")} completed, ${failed} failed`;
  $("throughput-peak").textContent = completed + failed ? `peak ${peak}/min` : "";
}

// --- failures by reason ------------------------------------------------------

function ago(iso) {
  const seconds = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (seconds < 60) return "just now";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleString();
}

function failureItem(group) {
  const item = document.createElement("li");
  item.dataset.reason = group.reason;
  const reason = document.createElement("span");
  reason.className = "reason";
  reason.textContent = group.reason;
  const meta = document.createElement("span");
  meta.className = "quiet";
  meta.textContent = `${plural(group.count, "photo")}, last ${ago(group.last_at)}`;
  const button = document.createElement("button");
  button.type = "button";
  button.className = "secondary retry";
  button.textContent = "Retry";
  button.addEventListener("click", () => retry({ reason: group.reason }, button));
  item.append(reason, meta, button);
  return item;
}

function showFailures(groups) {
  const list = $("failures");
  // Keep the list while nothing changed, so that a button is not replaced under the pointer.
  const key = JSON.stringify(groups.map((g) => [g.reason, g.count]));
  if (list.dataset.key !== key) {
    list.replaceChildren(...groups.map(failureItem));
    list.dataset.key = key;
  }
  const total = groups.reduce((n, g) => n + g.count, 0);
  $("no-failures").hidden = groups.length > 0;
  const all = $("retry-all");
  all.hidden = groups.length === 0;
  all.textContent = `Retry all failed (${total})`;
}

async function retry(body, button) {
  button.disabled = true;
  try {
    const answer = await postJSON("/photos/retry", body);
    const what = body.reason ? `failed with “${body.reason}”` : "failed";
    say(`Queued ${plural(answer.queued, "photo")} that ${what} again.`);
  } catch (error) {
    say(`Could not retry: ${error.message}`, "error");
  } finally {
    button.disabled = false;
    changed();
  }
}

$("retry-all").addEventListener("click", (event) => retry({}, event.currentTarget));

// --- adding photos -------------------------------------------------------------

async function queue(uuids) {
  const answer = await postJSON("/photos/process", { uuids });
  return answer.queued.length;
}

$("add-urls").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const urls = form.elements.urls.value.split("\n").map((u) => u.trim()).filter(Boolean);
  const submit = form.querySelector("button[type=submit]");
  submit.disabled = true;
  try {
    const { uuids } = await postJSON("/photos/urls", { urls });
    const queued = form.elements.process.checked ? await queue(uuids) : 0;
    say(`Added ${plural(uuids.length, "photo")}${queued ? `, ${queued} queued for processing` : ""}.`);
    form.elements.urls.value = "";
  } catch (error) {
    say(`Could not add: ${error.message}`, "error");
  } finally {
    submit.disabled = false;
    changed();
  }
});

$("upload").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  const submit = form.querySelector("button[type=submit]");
  const data = new FormData();
  data.append("file", form.elements.file.files[0]);
  data.append("process", form.elements.process.checked ? "true" : "false");
  submit.disabled = true;
  try {
    const photo = await call("/photos", { method: "POST", body: data });
    const queued = photo.status === "pending" && form.elements.process.checked;
    say(`Uploaded ${form.elements.file.files[0].name}${queued ? ", queued for processing" : ""}.`);
    form.reset();
  } catch (error) {
    say(`Could not upload: ${error.message}`, "error");
  } finally {
    submit.disabled = false;
    changed();
  }
});

// --- refreshing ---------------------------------------------------------------

async function refresh() {
  clearTimeout(timer);
  try {
    const [stats, failures] = await Promise.all([call("/stats"), call("/photos/failures")]);
    showBacklog(stats);
    showThroughput(stats.throughput);
    showFailures(failures);
    const busy = stats.counts.pending + stats.counts.processing > 0;
    timer = setTimeout(refresh, busy ? 2000 : 5000);
  } catch (error) {
    say(`Could not load the figures: ${error.message}`, "error");
    timer = setTimeout(refresh, 5000);
  }
}

refresh();
