// Bootstrap: without a secure context there is no Web Crypto, so explain how to fix that
// instead of failing; otherwise load and mount the application.
import { h } from "./ui/dom.js";

function secureContextHelp() {
  const here = window.location;
  const httpsAddress = `https://${here.hostname}/`;
  return h(
    "main",
    { class: "insecure", "aria-labelledby": "insecure-title" },
    h("h1", { id: "insecure-title" }, "This page cannot encrypt your messages yet"),
    h(
      "p",
      {},
      "Secure Chat encrypts everything in your browser with the Web Crypto API. Browsers only offer it on " +
        "secure pages, and this page was opened over an insecure connection (",
      h("code", {}, here.origin),
      "), so the chat cannot start.",
    ),
    h("h2", {}, "How to fix it"),
    h(
      "ol",
      {},
      h("li", {}, "Open the chat's https:// address instead, for example ", h("code", {}, httpsAddress), "."),
      h(
        "li",
        {},
        "If the browser warns that the certificate is not trusted, ask your administrator for the site CA " +
          "certificate, import it into your browser or operating system as a trusted authority, and reload. " +
          "Do not click through the warning on a network you do not control.",
      ),
      h("li", {}, "On the server itself, ", h("code", {}, "http://localhost"), " also works."),
    ),
    h("p", { class: "muted" }, "Nothing was sent to the server. Your password has not been used."),
  );
}

async function start() {
  const root = document.getElementById("app") || document.body.appendChild(h("div", { id: "app" }));
  if (!window.isSecureContext || !globalThis.crypto || !globalThis.crypto.subtle) {
    document.title = "Secure Chat: secure connection needed";
    root.replaceChildren(secureContextHelp());
    return;
  }
  try {
    const { mountApp } = await import("./ui/app.js");
    await mountApp(root);
  } catch (error) {
    root.replaceChildren(
      h(
        "main",
        { class: "insecure" },
        h("h1", {}, "The chat could not start"),
        h("p", {}, "Reload the page. If this keeps happening, tell your administrator: ", h("code", {}, String(error && error.message))),
      ),
    );
    throw error;
  }
}

start();
