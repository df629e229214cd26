// File messages: a card with name, size, download with progress, and for images a preview
// in a box of reserved size (object URL of the decrypted Blob, revoked when removed).
import { parseFileContent, safeName } from "../files.js";
import { formatBytes, h, onDispose } from "./dom.js";
import { errorSlot } from "./errors.js";
import { icon } from "./icons.js";
import { createProgress } from "./progress.js";

const PREVIEW_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;
const PREVIEW_MAX_BYTES = 15 * 1024 * 1024;

function saveBlob(blob, name) {
  // Typed as bytes, so the browser never renders a downloaded file in the app's origin.
  const url = URL.createObjectURL(new Blob([blob], { type: "application/octet-stream" }));
  const link = h("a", { href: url, download: name, class: "visually-hidden" });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

const IMAGE_MAGIC = [
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x42, 0x4d], // BMP
];

async function looksLikeImage(blob) {
  const head = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
  const ascii = String.fromCharCode(...head);
  if (ascii.startsWith("RIFF") && ascii.slice(8, 12) === "WEBP") return true;
  if (ascii.slice(4, 12) === "ftypavif") return true;
  return IMAGE_MAGIC.some((magic) => magic.every((byte, index) => head[index] === byte));
}

export function fileCard(ctx, message, content) {
  let ref;
  try {
    ref = message.file || parseFileContent(content);
  } catch (error) {
    return h("p", { class: "message-text is-undecryptable" }, "🔒 This file's description is invalid; it cannot be opened.");
  }
  const info = { ...content, ...(ref && typeof ref === "object" ? ref : {}) };
  const name = safeName(String(info.name || content.name || "file"));
  const size = Number(info.size ?? content.size) || 0;
  const mime = String(info.mime || content.mime || "");
  const progress = createProgress(`Download progress of ${name}`);
  progress.el.classList.add("is-idle");
  const error = errorSlot();
  const button = h("button", { type: "button", class: "button small", "aria-label": `Download ${name}` }, "Download");
  let cached = null;

  async function fetchBlob() {
    if (cached) return cached;
    progress.el.classList.remove("is-idle");
    progress.set(0);
    progress.step("Downloading and decrypting…");
    try {
      cached = await ctx.chat.downloadFile(ref, { onProgress: progress.handler() });
      progress.set(1);
      progress.step("");
      progress.el.classList.add("is-idle");
      return cached;
    } catch (failure) {
      progress.el.classList.add("is-idle");
      progress.step("");
      throw failure;
    }
  }

  button.addEventListener("click", async () => {
    error.clear();
    button.disabled = true;
    try {
      saveBlob(await fetchBlob(), name);
    } catch (failure) {
      error.show(failure);
    } finally {
      button.disabled = false;
    }
  });

  const caption = content.text ? h("p", { class: "message-text file-caption" }, String(content.text)) : null;
  const card = h(
    "div",
    { class: "file-card" },
    h(
      "div",
      { class: "file-row" },
      h("span", { class: "file-icon" }, icon("file")),
      h("span", { class: "file-meta" }, h("span", { class: "file-name" }, name), h("span", { class: "file-size muted" }, formatBytes(size))),
      button,
    ),
    progress.el,
    error.el,
    caption,
  );

  if (PREVIEW_TYPES.test(mime) && size <= PREVIEW_MAX_BYTES) {
    const box = h("div", { class: "preview-box", role: "img", "aria-label": `Preview of ${name} (loading)` });
    card.insertBefore(box, card.firstChild);
    let url = null;
    onDispose(card, () => {
      if (url) URL.revokeObjectURL(url);
      url = null;
    });
    fetchBlob()
      .then((blob) => {
        if (!card.isConnected && !box.isConnected) return;
        // Previews only for what really is a raster image (magic bytes, not the sender's hint).
        return looksLikeImage(blob).then((ok) => (ok ? blob : Promise.reject(new Error("not an image"))));
      })
      .then((blob) => {
        if (!blob || (!card.isConnected && !box.isConnected)) return;
        url = URL.createObjectURL(new Blob([blob], { type: info.mime }));
        const img = h("img", { src: url, alt: `Image ${name}`, class: "preview-image", decoding: "async" });
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
        box.replaceChildren(img);
      })
      .catch((failure) => {
        box.classList.add("is-failed");
        box.setAttribute("aria-label", `Preview of ${name} unavailable`);
        error.show(failure);
      });
  }
  return card;
}

/** An upload in progress, shown above the composer. */
export function uploadRow(file) {
  const progress = createProgress(`Upload progress of ${file.name}`);
  progress.step("Encrypting and uploading…");
  const error = errorSlot();
  const dismiss = h("button", { type: "button", class: "link-button", "aria-label": `Dismiss ${file.name}`, hidden: true }, "Dismiss");
  const el = h("li", { class: "upload-row" }, h("span", { class: "file-name" }, `${file.name} (${formatBytes(file.size)})`), progress.el, error.el, dismiss);
  dismiss.addEventListener("click", () => el.remove());
  return {
    el,
    progress,
    fail(failure) {
      progress.el.classList.add("is-idle");
      error.show(failure);
      dismiss.hidden = false;
    },
  };
}
