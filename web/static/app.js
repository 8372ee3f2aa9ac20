"use strict";
// Lists the photos, refreshes while any is pending or processing, and queues
// the pending ones on request. Talks only to the JSON endpoints.
const list = document.getElementById("photos");
const counts = document.getElementById("counts");
const message = document.getElementById("message");
const button = document.getElementById("process");
const empty = document.getElementById("empty");
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  children.forEach((c) => node.append(c));
  return node;
}

function card(photo) {
  const thumb = photo.thumbnails.find((t) => t.rendition === "fit-320") || photo.thumbnails[0];
  const picture = el("div", { class: "thumb" });
  if (thumb) {
    picture.append(el("img", { src: thumb.url, alt: `thumbnail of ${photo.url}`, width: thumb.width, height: thumb.height }));
  } else {
    picture.append(photo.status === "failed" ? "no thumbnail" : "waiting…");
  }
  const meta = el("div", { class: "meta" },
    el("span", { class: `status status-${photo.status}`, "data-status": photo.status }, photo.status),
    el("span", { title: photo.url }, photo.url.split("/").pop() || photo.url));
  if (thumb) meta.append(el("span", {}, `${thumb.width}×${thumb.height}`));
  if (photo.failure_reason) meta.append(el("span", { class: "reason" }, photo.failure_reason));
  return el("li", { class: "card", "data-uuid": photo.uuid }, picture, meta);
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch("/photos");
    if (!response.ok) throw new Error((await response.json()).error || response.statusText);
    const data = await response.json();
    counts.replaceChildren(...Object.entries(data.counts).map(([s, n]) => el("span", { "data-count": s }, `${s}: ${n}`)));
    list.replaceChildren(...data.photos.map(card));
    empty.hidden = data.photos.length > 0;
    button.disabled = data.counts.pending === 0;
    const busy = data.photos.some((p) => p.status === "pending" || p.status === "processing");
    timer = setTimeout(refresh, busy ? 1000 : 5000);
  } catch (error) {
    message.textContent = `Could not load photos: ${error.message}`;
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
    message.textContent = response.ok ? `Queued ${body.queued.length} photo(s).` : `Could not queue: ${body.error}`;
  } catch (error) {
    message.textContent = `Could not queue: ${error.message}`;
  } finally {
    refresh();
  }
});

refresh();
