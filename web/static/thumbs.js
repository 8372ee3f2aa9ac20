// The thumbnail of a photo's card: its fit-320 JPEG, the WebP and AVIF of the
// same thumbnail offered first through <picture> when they were made, and,
// until the image has arrived, the photo's ThumbHash drawn blurred in its place.
import { thumbHashToDataURL } from "./vendor/thumbhash.js";

// Browsers take the first <source> whose type they read, else the <img>.
const SOURCES = [["fit-320-avif", "image/avif"], ["fit-320-webp", "image/webp"]];

function bytes(base64) {
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

// A node for the card and the rendition it shows, or null without one.
export function thumbnail(photo, alt) {
  const byName = new Map(photo.thumbnails.map((t) => [t.rendition, t]));
  // Else the largest other one (a task's square-64 rather than its square-32).
  const shown = byName.get("fit-320")
    || photo.thumbnails.reduce((best, t) => (!best || t.width * t.height > best.width * best.height ? t : best), null);
  if (!shown) return null;
  const picture = document.createElement("picture");
  for (const [name, type] of SOURCES) {
    if (!byName.has(name)) continue;
    const source = document.createElement("source");
    source.type = type;
    source.srcset = byName.get(name).url;
    picture.append(source);
  }
  const img = document.createElement("img");
  Object.assign(img, { src: shown.url, alt, width: shown.width, height: shown.height });
  picture.append(img);
  // The frame has the thumbnail's proportions before any byte of it arrives
  // (style.css sizes it from these two properties), so the placeholder, its
  // background, fills exactly the box the image will.
  const frame = document.createElement("div");
  frame.className = "frame";
  frame.style.setProperty("--ratio", `${shown.width} / ${shown.height}`);
  frame.style.setProperty("--width", `${shown.width}px`);
  if (photo.thumbhash) {
    frame.style.backgroundImage = `url("${thumbHashToDataURL(bytes(photo.thumbhash))}")`;
    frame.dataset.placeholder = "thumbhash";
    img.addEventListener("load", () => {
      frame.style.backgroundImage = "none";
      delete frame.dataset.placeholder;
    }, { once: true });
  }
  frame.append(picture);
  return { node: frame, shown };
}
