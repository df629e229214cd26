// Transport: the HTTP API (fetch, XHR for uploads) and Socket.IO (docs/protocol.md §7, §8).
// No crypto, no DOM. The session token travels only in the Authorization header and in the
// Socket.IO auth payload, never in a URL.
import { io } from "socket.io-client";

/** Every HTTP path of the API is below this prefix. */
export const API_PREFIX = "/api/v1";

/** Milliseconds `Realtime.request` waits for an acknowledgement by default. */
export const DEFAULT_ACK_TIMEOUT_MS = 15000;

/**
 * The server refused a request (HTTP error answer or a negative Socket.IO ack), or it could
 * not be reached. `code` is the protocol's error code (`validation_error`, `blocked`…) or one
 * of the client-side codes `network` (no answer), `timeout` (no ack in time),
 * `disconnected` (no socket), `aborted`, `http_error` (an answer without an error body).
 */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status; 0 when there was no HTTP answer (ack, network)
   * @param {any} body the parsed answer (`{error: {code, message, field?}}`) or an ack
   * @param {{code?: string, message?: string, retryAfter?: number|null, cause?: unknown}} [fallback]
   */
  constructor(status, body, fallback = {}) {
    const error = body && typeof body === "object" && body.error && typeof body.error === "object" ? body.error : {};
    const message = typeof error.message === "string" ? error.message : fallback.message || `HTTP ${status}`;
    super(message, fallback.cause === undefined ? undefined : { cause: fallback.cause });
    this.name = "ApiError";
    /** @type {number} */
    this.status = status;
    /** @type {string} */
    this.code = typeof error.code === "string" ? error.code : fallback.code || "http_error";
    /** @type {string|null} */
    this.field = typeof error.field === "string" ? error.field : null;
    /** @type {any} */
    this.body = body;
    /** Seconds to wait (`rate_limited`), from the Retry-After header or the body. */
    this.retryAfter = numberOrNull(error.retry_after ?? fallback.retryAfter);
    /** The conversation that already exists (`conversation_exists`). */
    this.existingId = typeof error.existing_id === "string" ? error.existing_id : null;
    /** The conversation's epoch (`epoch_conflict`). */
    this.currentEpoch = numberOrNull(error.current_epoch);
  }

  /**
   * The error of a negative Socket.IO acknowledgement `{ok: false, error: {code, message}}`.
   * @param {any} ack
   * @returns {ApiError}
   */
  static fromAck(ack) {
    const body = ack && typeof ack === "object" && ack.error ? ack : { error: { code: "internal_error", message: "malformed acknowledgement" } };
    return new ApiError(0, body);
  }

  /**
   * A client-side failure: no answer at all.
   * @param {string} code `network`, `timeout`, `disconnected`, `aborted`
   * @param {string} message
   * @param {unknown} [cause]
   * @returns {ApiError}
   */
  static local(code, message, cause) {
    return new ApiError(0, null, { code, message, cause });
  }
}

function numberOrNull(value) {
  const number = Number(value);
  return value !== null && value !== undefined && value !== "" && Number.isFinite(number) ? number : null;
}

async function readBody(response) {
  if (response.status === 204 || response.status === 205) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return response.ok ? text : null;
  }
}

/**
 * JSON over HTTP to `/api/v1`. Set `token` after login; every request then carries
 * `Authorization: Bearer <token>`.
 */
export class Http {
  /**
   * @param {string} [base] origin of the server ("" for the page's own origin)
   */
  constructor(base = "") {
    /** @type {string} */
    this.base = String(base).replace(/\/+$/, "");
    /** @type {string|null} */
    this.token = null;
  }

  /**
   * The absolute path of an API path.
   * @param {string} path below `/api/v1`, starting with "/"
   * @returns {string}
   */
  url(path) {
    if (typeof path !== "string" || !path.startsWith("/")) throw new TypeError("API paths start with /");
    return `${this.base}${API_PREFIX}${path}`;
  }

  /** @returns {Record<string, string>} */
  authHeaders() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  }

  /**
   * Call the API: a JSON body in (when `body` is not undefined), JSON out.
   * @param {string} method GET, POST, PUT, PATCH, DELETE
   * @param {string} path below `/api/v1`, with its query string
   * @param {any} [body]
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<any>} the parsed answer; null for 204
   * @throws {ApiError}
   */
  async call(method, path, body, { signal } = {}) {
    const headers = { Accept: "application/json", ...this.authHeaders() };
    const init = { method, headers, credentials: "omit", cache: "no-store", redirect: "error", signal };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const response = await this.#fetch(this.url(path), init);
    const data = await readBody(response).catch((error) => {
      throw ApiError.local("network", "the answer could not be read", error);
    });
    if (!response.ok) throw errorOf(response, data);
    return data;
  }

  /**
   * Upload a blob as `application/octet-stream` (XMLHttpRequest, for upload progress).
   * @param {string} path below `/api/v1`
   * @param {Blob} blob
   * @param {{onProgress?: (loaded: number, total: number) => void, signal?: AbortSignal}} [options]
   * @returns {Promise<any>} the parsed JSON answer
   * @throws {ApiError}
   */
  upload(path, blob, { onProgress, signal } = {}) {
    const url = this.url(path);
    const auth = this.authHeaders();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.responseType = "text";
      xhr.withCredentials = false;
      for (const [name, value] of Object.entries(auth)) xhr.setRequestHeader(name, value);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("Content-Type", "application/octet-stream");
      if (onProgress) {
        xhr.upload.addEventListener("progress", (event) => {
          onProgress(event.loaded, event.lengthComputable ? event.total : blob.size);
        });
      }
      const abort = () => xhr.abort();
      signal?.addEventListener("abort", abort, { once: true });
      const done = () => signal?.removeEventListener("abort", abort);
      xhr.addEventListener("load", () => {
        done();
        let data = null;
        try {
          data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
        } catch {
          data = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          if (data === null) reject(new ApiError(xhr.status, null, { message: "the upload's answer is not JSON" }));
          else resolve(data);
          return;
        }
        reject(new ApiError(xhr.status, data, { message: `upload refused (HTTP ${xhr.status})`, retryAfter: xhr.getResponseHeader("Retry-After") }));
      });
      xhr.addEventListener("error", () => {
        done();
        reject(ApiError.local("network", "the upload could not reach the server"));
      });
      xhr.addEventListener("abort", () => {
        done();
        reject(ApiError.local("aborted", "the upload was cancelled"));
      });
      if (signal?.aborted) {
        done();
        reject(ApiError.local("aborted", "the upload was cancelled"));
        return;
      }
      xhr.send(blob);
    });
  }

  /**
   * GET a binary resource; the caller reads `response.body` as a stream.
   * @param {string} path below `/api/v1`
   * @param {{signal?: AbortSignal}} [options]
   * @returns {Promise<Response>} a 2xx response whose body has not been read
   * @throws {ApiError}
   */
  async download(path, { signal } = {}) {
    const init = {
      method: "GET",
      headers: { Accept: "application/octet-stream", ...this.authHeaders() },
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
      signal,
    };
    const response = await this.#fetch(this.url(path), init);
    if (!response.ok) throw errorOf(response, await readBody(response).catch(() => null));
    return response;
  }

  async #fetch(url, init) {
    try {
      return await fetch(url, init);
    } catch (error) {
      if (error && error.name === "AbortError") throw ApiError.local("aborted", "the request was cancelled", error);
      throw ApiError.local("network", "cannot reach the chat server", error);
    }
  }
}

function errorOf(response, data) {
  return new ApiError(response.status, data, {
    message: `HTTP ${response.status} ${response.statusText}`.trim(),
    retryAfter: response.headers.get("Retry-After"),
  });
}

/**
 * @typedef {"connected" | "disconnected" | "reconnecting" | "revoked"} RealtimeStatus
 */

/**
 * Socket.IO to the server it came from, reconnecting with backoff until the session ends.
 * Handlers registered with `on` survive reconnects and `connect` calls.
 */
export class Realtime {
  /**
   * @param {{url?: string, ioFactory?: typeof io, options?: object}} [config]
   *   `url`: the server ("" or undefined: this page's origin); `ioFactory`/`options` for tests
   */
  constructor({ url = "", ioFactory = io, options = {} } = {}) {
    this.url = url;
    this.ioFactory = ioFactory;
    this.options = options;
    /** @type {any} the Socket.IO socket, or null */
    this.socket = null;
    /** @type {RealtimeStatus} */
    this.status = "disconnected";
    this.revoked = false;
    this.token = null;
    this.handlers = new Map();
    this.statusHandlers = new Set();
    this.retryTimer = null;
    this.retries = 0;
    this.onReconnectAttempt = null;
  }

  /** @returns {boolean} whether the socket is connected now */
  get connected() {
    return Boolean(this.socket && this.socket.connected);
  }

  /**
   * Open the socket with `auth: {token}`; closes a previous one first.
   * @param {string} token the session token
   */
  connect(token) {
    if (typeof token !== "string" || !token) throw new TypeError("connect(token): a session token is required");
    this.#close();
    this.token = token;
    this.revoked = false;
    this.retries = 0;
    const socket = this.ioFactory(this.url || undefined, {
      path: "/socket.io/",
      // A function, so every reconnection sends the current token (and never in the URL).
      auth: (callback) => callback({ token: this.token }),
      transports: ["websocket", "polling"],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: 1000,
      reconnectionDelayMax: 30000,
      randomizationFactor: 0.5,
      timeout: 20000,
      withCredentials: false,
      autoConnect: false,
      // A manager of its own: a new login never reuses the previous session's connection.
      forceNew: true,
      ...this.options,
    });
    this.socket = socket;
    socket.on("connect", () => {
      this.retries = 0;
      this.#setStatus("connected");
    });
    socket.on("disconnect", (reason) => {
      if (this.socket !== socket || this.revoked) return;
      this.#setStatus("disconnected", { reason });
      // The server closed the socket without ending the session: Socket.IO does not
      // reconnect by itself in that case.
      if (reason === "io server disconnect") this.#retryLater(socket);
    });
    socket.on("connect_error", (error) => {
      if (this.socket !== socket || this.revoked) return;
      const code = error && error.data && error.data.code;
      if (code === "unauthorized" || code === "token_in_url") {
        this.#revoke(code);
        return;
      }
      // A refusal by the server (socket.active false) is not retried by Socket.IO itself.
      if (!socket.active) this.#retryLater(socket);
    });
    this.onReconnectAttempt = () => {
      if (this.socket === socket && !this.revoked) this.#setStatus("reconnecting");
    };
    socket.io.on("reconnect_attempt", this.onReconnectAttempt);
    socket.on("session:revoked", (payload) => {
      if (this.socket === socket) this.#revoke((payload && payload.reason) || "revoked");
    });
    socket.onAny((event, ...args) => this.#dispatch(event, args));
    socket.connect();
  }

  /**
   * Listen to a server event (`message:new`, `session:revoked`…).
   * @param {string} event
   * @param {(data: any) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(event, handler) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(handler);
    return () => this.handlers.get(event)?.delete(handler);
  }

  /**
   * Listen to connection status changes.
   * @param {(status: RealtimeStatus, detail: {reason?: string}) => void} handler
   * @returns {() => void} unsubscribe
   */
  onStatus(handler) {
    this.statusHandlers.add(handler);
    return () => this.statusHandlers.delete(handler);
  }

  /**
   * Emit a client event and wait for its acknowledgement.
   * @param {string} event `message:send`, `message:read`, `typing:start`, `typing:stop`, `presence:list`
   * @param {any} data
   * @param {number} [timeoutMs]
   * @returns {Promise<any>} the ack object (`{ok: true, …}` or `{ok: false, error}`)
   * @throws {ApiError} `disconnected` when there is no connected socket, `timeout` when no
   *   acknowledgement arrived in time
   */
  async request(event, data, timeoutMs = DEFAULT_ACK_TIMEOUT_MS) {
    const socket = this.socket;
    if (!socket || !socket.connected) throw ApiError.local("disconnected", "not connected to the chat server");
    try {
      return await socket.timeout(timeoutMs).emitWithAck(event, data);
    } catch (error) {
      throw ApiError.local("timeout", `no answer to ${event} within ${Math.round(timeoutMs / 1000)} s`, error);
    }
  }

  /** Close the socket; no reconnection until the next `connect`. */
  disconnect() {
    const had = this.socket !== null;
    this.#close();
    this.token = null;
    if (had && this.status !== "revoked") this.#setStatus("disconnected", { reason: "client" });
  }

  #close() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.offAny();
      socket.removeAllListeners();
      socket.io.off("reconnect_attempt", this.onReconnectAttempt);
      socket.disconnect();
    }
  }

  #retryLater(socket) {
    clearTimeout(this.retryTimer);
    this.retries += 1;
    const base = Math.min(30000, 1000 * 2 ** Math.min(this.retries, 5));
    const delay = base / 2 + Math.random() * (base / 2);
    this.#setStatus("reconnecting");
    this.retryTimer = setTimeout(() => {
      if (this.socket === socket && !this.revoked && !socket.connected) socket.connect();
    }, delay);
  }

  #revoke(reason) {
    this.revoked = true;
    clearTimeout(this.retryTimer);
    const socket = this.socket;
    if (socket) {
      socket.io.reconnection(false);
      // Let handlers of session:revoked run first (onAny runs after this listener).
      queueMicrotask(() => socket.disconnect());
    }
    this.#setStatus("revoked", { reason });
  }

  #setStatus(status, detail = {}) {
    if (this.status === status) return;
    this.status = status;
    for (const handler of [...this.statusHandlers]) {
      try {
        handler(status, detail);
      } catch (error) {
        reportError(error);
      }
    }
  }

  #dispatch(event, args) {
    const handlers = this.handlers.get(event);
    if (!handlers) return;
    for (const handler of [...handlers]) {
      try {
        handler(...args);
      } catch (error) {
        reportError(error);
      }
    }
  }
}

/** Report an error thrown by a listener without stopping the others. */
function reportError(error) {
  if (typeof globalThis.reportError === "function") globalThis.reportError(error);
  else console.error(error);
}
