// The message composer: Enter sends, Shift+Enter is a new line; typing indicator; files by
// button or drag and drop, with a progress bar per upload.
import { h, uid } from "./dom.js";
import { errorSlot } from "./errors.js";
import { uploadRow } from "./files.js";
import { icon } from "./icons.js";

const TEXT_MAX_CODE_POINTS = 16000;
const TYPING_IDLE_MS = 3000;

export function createComposer({ chat, conversationId, dropTarget }) {
  const inputId = uid("composer");
  const textarea = h("textarea", { id: inputId, class: "composer-input", rows: 1, placeholder: "Write a message…", "aria-describedby": `${inputId}-hint` });
  const fileInput = h("input", { type: "file", multiple: true, class: "visually-hidden", tabIndex: -1, "aria-label": "Choose files to send" });
  const attach = h("button", { type: "button", class: "button ghost attach", "aria-label": "Attach files", title: "Attach files (or drop them here)" }, icon("attach"));
  const send = h("button", { type: "submit", class: "button primary send", "aria-label": "Send message" }, "Send");
  const uploads = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const error = errorSlot();
  const form = h(
    "form",
    { class: "composer", "aria-label": "Send a message" },
    uploads,
    h("div", { class: "composer-row" }, attach, fileInput, h("label", { for: inputId, class: "visually-hidden" }, "Message"), textarea, send),
    h("p", { id: `${inputId}-hint`, class: "visually-hidden" }, "Enter sends, Shift+Enter starts a new line."),
    error.el,
  );

  let typing = false;
  let typingTimer = null;
  function setTyping(on) {
    clearTimeout(typingTimer);
    if (on) typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
    if (typing === on) return;
    typing = on;
    Promise.resolve(chat.typing(conversationId, on)).catch(() => {});
  }

  function grow() {
    textarea.style.height = "auto";
    textarea.style.height = `${Math.min(textarea.scrollHeight, 200)}px`;
  }

  async function submit() {
    const text = textarea.value;
    if (!text.trim()) return;
    if ([...text].length > TEXT_MAX_CODE_POINTS) {
      error.text(`This message is too long (${[...text].length} characters; at most ${TEXT_MAX_CODE_POINTS}). Split it or send it as a file.`);
      return;
    }
    error.clear();
    textarea.value = "";
    grow();
    setTyping(false);
    try {
      await chat.sendText(conversationId, text);
    } catch (failure) {
      error.show(failure);
    }
  }

  async function upload(file) {
    const row = uploadRow(file);
    uploads.append(row.el);
    try {
      await chat.uploadFile(conversationId, file, { onProgress: row.progress.handler() });
      row.el.remove();
    } catch (failure) {
      row.fail(failure);
    }
  }

  function uploadAll(files) {
    for (const file of files) upload(file);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      submit();
    }
  });
  textarea.addEventListener("input", () => {
    grow();
    setTyping(textarea.value.length > 0);
  });
  textarea.addEventListener("blur", () => setTyping(false));
  attach.addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", () => {
    uploadAll([...fileInput.files]);
    fileInput.value = "";
  });

  let depth = 0;
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  dropTarget.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth += 1;
    dropTarget.classList.add("is-dropping");
  });
  dropTarget.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  dropTarget.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (!depth) dropTarget.classList.remove("is-dropping");
  });
  dropTarget.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    dropTarget.classList.remove("is-dropping");
    uploadAll([...event.dataTransfer.files]);
  });

  return {
    el: form,
    focus: () => textarea.focus(),
    destroy: () => setTyping(false),
  };
}
