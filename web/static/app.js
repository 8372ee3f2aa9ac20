"use strict";
// Lists the photos, refreshes while any is pending or processing, and queues
// the pending ones on request. Talks only to the JSON endpoints.
import { thumbnail } from "./thumbs.js";

const list = document.getElementById("photos");
const counts = document.getElementById("counts");
const message = document.getElementById("message");
const button = document.getElementById("process");
const empty = document.getElementById("empty");
const STATUS_ORDER = ["pending", "processing", "completed", "failed"];
// Cards by photo uuid, kept while the photo does not change, so that a
// refresh does not rebuild (and reload) every thumbnail.
const cards = new Map();
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  children.forEach((c) => node.append(c));
  return node;
}

function card(photo) {
  const made = thumbnail(photo, `thumbnail of ${photo.url}`);
  const thumb = made && made.shown;
  const picture = el("div", { class: "thumb" });
  if (made) {
    picture.append(made.node);
  } else {
    picture.append({ failed: "no thumbnail", processing: "processing…" }[photo.status] || "waiting…");
  }
  const meta = el("div", { class: "meta" },
    el("span", { class: `status status-${photo.status}`, "data-status": photo.status }, photo.status),
    el("span", { title: photo.url }, photo.url.split("/").pop() || photo.url));
  if (thumb) meta.append(el("span", {}, `${thumb.width}×${thumb.height}`));
  if (photo.failure_reason) meta.append(el("span", { class: "reason" }, photo.failure_reason));
  return el("li", { class: "card", "data-uuid": photo.uuid }, picture, meta);
}

function render(photos) {
  const seen = new Set();
  const nodes = photos.map((photo) => {
    const key = JSON.stringify([photo.status, photo.failure_reason, photo.thumbnails, photo.thumbhash]);
    seen.add(photo.uuid);
    const known = cards.get(photo.uuid);
    if (known && known.key === key) return known.node;
    const node = card(photo);
    cards.set(photo.uuid, { key, node });
    return node;
  });
  cards.forEach((_, uuid) => { if (!seen.has(uuid)) cards.delete(uuid); });
  // Only touch the list when its order or members changed.
  if (nodes.length !== list.children.length || nodes.some((n, i) => list.children[i] !== n)) {
    list.replaceChildren(...nodes);
  }
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch("/photos");
    // The key was revoked: the page, reloaded, asks for one.
    if (response.status === 401) { window.location.reload(); return; }
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const data = await response.json();
    counts.replaceChildren(...STATUS_ORDER.map((s) => {
      const n = data.counts[s] ?? 0;
      return el("span", { "data-count": s, class: n ? "" : "zero" }, `${s}: ${n}`);
    }));
    render(data.photos);
    if (message.dataset.kind === "load-error") { message.textContent = ""; delete message.dataset.kind; }
    empty.hidden = data.photos.length > 0;
    button.disabled = data.counts.pending === 0;
    const busy = data.photos.some((p) => p.status === "pending" || p.status === "processing");
    timer = setTimeout(refresh, busy ? 1000 : 5000);
  } catch (error) {
    message.textContent = `Could not load photos: ${error.message}`;
    message.dataset.kind = "load-error";
    timer = setTimeout(refresh, 5000);
  }
}

button.addEventListener("click", async () => {
  button.disabled = true;
  try {
    const pending = await (await fetch("/photos/pending?limit=10000")).json();
    if (pending.length === 0) { message.textContent = "Nothing is pending."; return; }
    const response = await fetch("/photos/process", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ uuids: pending.map((p) => p.uuid) }),
    });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    const n = body.queued.length;
    message.textContent = `Queued ${n} photo${n === 1 ? "" : "s"} for processing.`;
  } catch (error) {
    message.textContent = `Could not queue: ${error.message}`;
  } finally {
    refresh();
  }
});

// operator.js added, queued or retried photos.
document.addEventListener("photos:changed", () => refresh());

refresh();
