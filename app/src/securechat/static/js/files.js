// Encrypted files (docs/protocol.md section 5.4) and the contents that carry them: chunked
// AES-256-GCM blobs, the `file` content, safe names, and `reaction` contents. No DOM, no
// network. Mirrors securechat.client.files and securechat.client.reactions.
//
// A file is encrypted under its own random 32-byte key into a blob of records
// `nonce(12) || AES-256-GCM(key, nonce, chunk, aad_i)`, one per 64 KiB chunk, where
// aad_i = LP("securechat/p256-v1/file-chunk") || LP(decimal(i)) || LP(last ? "1" : "0").
// Neither direction holds the whole file as one array: records are kept as Blob parts, and
// the blob's SHA-256 is computed incrementally (sha256.js).

import { CryptoError, UUID_RE, fieldB64, fieldInt, fieldStr } from "./crypto.js";
import { b64encode, lp, randomBytes } from "./encoding.js";
import { Sha256 } from "./sha256.js";

/** Plaintext bytes per chunk (the only chunk size of protocol version 1). */
export const CHUNK_BYTES = 65536;
/** Every record adds its nonce in front and the GCM tag behind the chunk. */
export const RECORD_OVERHEAD = 12 + 16;
/** The size of every record but the last. */
export const RECORD_BYTES = CHUNK_BYTES + RECORD_OVERHEAD;
export const FILE_KEY_BYTES = 32;
export const NAME_MAX_BYTES = 255;
export const CAPTION_MAX_CHARS = 16000;
export const MAX_FILE_BYTES = Number.MAX_SAFE_INTEGER;
export const EMOJI_MAX_CODE_POINTS = 16;

const NONCE_BYTES = 12;
const LABEL_FILE_CHUNK = "securechat/p256-v1/file-chunk";
const SHA256_RE = /^[0-9a-f]{64}$/;
// RFC 6838 restricted-name "/" restricted-name, no parameters.
const MIME_NAME = "[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}";
const MIME_RE = new RegExp(`^${MIME_NAME}/${MIME_NAME}$`);
// Separators, control characters (NUL included), unpaired surrogates, and the bidirectional
// formatting characters that turn "evil\u202etxt.exe" into "evilexe.txt" on screen.
const FORBIDDEN_NAME_CHAR = /[/\\\p{Cc}\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;
const FORBIDDEN_NAME_CHARS = /[/\\\p{Cc}\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;
const SEPARATORS = /[/\\]/;
// What Python's str.strip() removes (str.isspace()); unlike String.prototype.trim, not U+FEFF.
const PY_SPACE =
  "[\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const PY_STRIP = new RegExp(`^${PY_SPACE}+|${PY_SPACE}+$`, "gu");
const FALLBACK_NAME = "file";
const EMOJI_FORBIDDEN = /[\p{Cc}\p{Cs}]/u;
const REACTION_OPS = new Set(["add", "remove"]);

/**
 * The result of encryptFile: the blob to upload and what the `file` content needs.
 * @typedef {{body: Blob, key: Uint8Array, sha256: string, size: number,
 *   ciphertextSize: number}} EncryptedFile
 */
/**
 * A validated `file` content (parseFileContent).
 * @typedef {{fileId: string, name: string, mime: string, size: number, ciphertextSize: number,
 *   sha256: string, key: Uint8Array, chunkBytes: number, text: string|null}} FileRef
 */

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function codePoints(text) {
  let count = 0;
  for (const _ of text) count += 1;
  return count;
}

/**
 * AAD of chunk `index` (0-based): `LP(label) || LP(decimal(i)) || LP("1" | "0")`.
 * @param {number} index
 * @param {boolean} last
 * @returns {Uint8Array}
 */
export function chunkAad(index, last) {
  return lp(LABEL_FILE_CHUNK, index, last ? "1" : "0");
}

/**
 * The exact blob size for a file of `plainSize` bytes: `size + 28 * max(1, ceil(size/65536))`.
 * @param {number} plainSize
 * @returns {number}
 */
export function encryptedSize(plainSize) {
  if (typeof plainSize !== "number" || !Number.isInteger(plainSize)) {
    throw new TypeError("plainSize must be an integer");
  }
  if (plainSize < 0) throw new RangeError("plainSize must not be negative");
  const records = Math.max(1, Math.ceil(plainSize / CHUNK_BYTES));
  return plainSize + records * RECORD_OVERHEAD;
}

async function aesKey(key, usage) {
  return crypto.subtle.importKey("raw", key, "AES-GCM", false, [usage]);
}

function checkFileKey(key) {
  if (!(key instanceof Uint8Array) || key.length !== FILE_KEY_BYTES) {
    throw new CryptoError(`file_key must be ${FILE_KEY_BYTES} bytes`);
  }
  return key;
}

// --------------------------------------------------------------------------- encryption

// Records are collected into one Blob part per 16 (about 1 MiB): creating a Blob is a round
// trip to the browser's blob store, which cost more than the AES-GCM of a record when every
// record had its own. At most this many records are held as arrays at a time.
const RECORDS_PER_PART = 16;

/**
 * Pieces of bytes with a running length; `take(n)` removes and returns the first n bytes (a
 * view into a piece when they lie in one, else a copy).
 */
class ByteQueue {
  constructor() {
    this.pieces = [];
    this.head = 0;
    this.length = 0;
  }

  push(piece) {
    if (piece.length > 0) {
      this.pieces.push(piece);
      this.length += piece.length;
    }
  }

  take(n) {
    // Most reads fall inside one piece (a Blob's stream delivers up to 2 MiB at a time): a
    // view of it, no copy. Callers only read what they take.
    const first = this.pieces[0];
    if (first !== undefined && first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.pieces.shift();
        this.head = 0;
      }
      this.length -= n;
      return view;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.pieces[0];
      const available = piece.length - this.head;
      const count = Math.min(available, n - filled);
      out.set(piece.subarray(this.head, this.head + count), filled);
      filled += count;
      this.head += count;
      if (this.head === piece.length) {
        this.pieces.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }
}

/**
 * Encrypt a file (a Blob or File) into a blob of records under a fresh random key. Reads
 * the file as one stream (`blob.stream()`), re-framed into 64 KiB chunks, and keeps the
 * records as Blob parts, so the file is never held as one array. `onProgress(doneBytes,
 * totalBytes)` (plaintext bytes) is called after each chunk.
 * @param {Blob} blob
 * @param {{onProgress?: (done: number, total: number) => void}} [options]
 * @returns {Promise<EncryptedFile>}
 */
export async function encryptFile(blob, { onProgress } = {}) {
  return encryptFileWith(blob, { onProgress });
}

/**
 * encryptFile with a fixed key and fixed record nonces (tests and vectors only): `nonces`
 * must hold one 12-byte Uint8Array per record.
 * @param {Blob} blob
 * @param {{key?: Uint8Array, nonces?: Uint8Array[],
 *   onProgress?: (done: number, total: number) => void}} [options]
 * @returns {Promise<EncryptedFile>}
 */
export async function encryptFileWith(blob, { key, nonces, onProgress } = {}) {
  if (!(blob instanceof Blob)) throw new TypeError("encryptFile needs a Blob or File");
  const fileKey =
    key === undefined || key === null ? randomBytes(FILE_KEY_BYTES) : checkFileKey(key);
  const cryptoKey = await aesKey(fileKey, "encrypt");
  const size = blob.size;
  const records = Math.max(1, Math.ceil(size / CHUNK_BYTES));
  const hash = new Sha256();
  const parts = [];
  let batch = [];
  let ciphertextSize = 0;
  // One stream instead of a slice per chunk: each slice read was a round trip to the blob
  // store and cost ten times the chunk's AES-GCM. The stream pulls only when we read.
  const reader = blob.stream().getReader();
  const queue = new ByteQueue();
  let ended = false;
  // Read until `n` bytes are queued or the stream ends.
  const fill = async (n) => {
    while (!ended && queue.length < n) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else queue.push(value instanceof Uint8Array ? value : new Uint8Array(value));
    }
  };
  try {
    for (let index = 0; index < records; index += 1) {
      const start = index * CHUNK_BYTES;
      const end = Math.min(size, start + CHUNK_BYTES);
      await fill(end - start);
      if (queue.length < end - start) throw new Error("the file changed while it was read");
      const chunk = queue.take(end - start);
      let nonce;
      if (nonces === undefined || nonces === null) {
        nonce = randomBytes(NONCE_BYTES);
      } else {
        nonce = nonces[index];
        if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
          throw new RangeError("need one 12-byte nonce per record");
        }
      }
      const aad = chunkAad(index, index === records - 1);
      const sealed = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 },
          cryptoKey,
          chunk,
        ),
      );
      hash.update(nonce);
      hash.update(sealed);
      batch.push(nonce, sealed);
      if (batch.length === 2 * RECORDS_PER_PART) {
        parts.push(new Blob(batch));
        batch = [];
      }
      ciphertextSize += NONCE_BYTES + sealed.length;
      if (onProgress) onProgress(end, size);
    }
    // More bytes than blob.size said: the file grew while it was read.
    await fill(1);
    if (queue.length > 0) throw new Error("the file changed while it was read");
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
  reader.releaseLock();
  if (batch.length > 0) parts.push(new Blob(batch));
  return { body: new Blob(parts), key: fileKey, sha256: hash.hexdigest(), size, ciphertextSize };
}

// --------------------------------------------------------------------------- decryption

async function openRecord(cryptoKey, index, record, last) {
  if (record.length < RECORD_OVERHEAD) throw new CryptoError("empty or truncated file");
  try {
    const plain = await crypto.subtle.decrypt(
      {
        name: "AES-GCM",
        iv: record.subarray(0, NONCE_BYTES),
        additionalData: chunkAad(index, last),
        tagLength: 128,
      },
      cryptoKey,
      record.subarray(NONCE_BYTES),
    );
    return new Uint8Array(plain);
  } catch {
    throw new CryptoError("decryption failed");
  }
}

/**
 * Decrypt a blob read from a ReadableStream of Uint8Array pieces of any sizes (a fetch
 * Response's body; a Blob is accepted too) into a Blob of plaintext. The pieces are
 * re-framed into 65,564-byte records; the final record, whatever its length, is the last.
 * Rejects with CryptoError for an empty or truncated blob, reordered or modified records,
 * appended data, a wrong key, a non-canonical empty last chunk, or a blob whose SHA-256 is
 * not `expectedSha256` (checked before the last record is opened; pass null to skip, as the
 * reference client allows). `onProgress(blobBytesRead)` is called after each piece.
 * @param {ReadableStream<Uint8Array>|Blob} readable
 * @param {Uint8Array} key 32 bytes
 * @param {string|null} expectedSha256 64 lowercase hex digits
 * @param {{onProgress?: (read: number) => void}} [options]
 * @returns {Promise<Blob>}
 */
export async function decryptStream(readable, key, expectedSha256, { onProgress } = {}) {
  const fileKey = checkFileKey(key);
  if (
    expectedSha256 !== undefined &&
    expectedSha256 !== null &&
    (typeof expectedSha256 !== "string" || !SHA256_RE.test(expectedSha256))
  ) {
    throw new CryptoError("malformed sha256");
  }
  const stream = readable instanceof Blob ? readable.stream() : readable;
  if (!stream || typeof stream.getReader !== "function") {
    throw new TypeError("decryptStream needs a ReadableStream");
  }
  const cryptoKey = await aesKey(fileKey, "decrypt");
  const reader = stream.getReader();
  const hash = new Sha256();
  const queue = new ByteQueue();
  const parts = [];
  let index = 0;
  let read = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const piece = value instanceof Uint8Array ? value : new Uint8Array(value);
      queue.push(piece);
      read += piece.length;
      // A full record followed by more data is not the last one.
      while (queue.length > RECORD_BYTES) {
        const record = queue.take(RECORD_BYTES);
        hash.update(record);
        parts.push(new Blob([await openRecord(cryptoKey, index, record, false)]));
        index += 1;
      }
      if (onProgress) onProgress(read);
    }
    // The loop always leaves at least one byte, so an empty queue means an empty blob.
    if (queue.length === 0) throw new CryptoError("empty or truncated file");
    const record = queue.take(queue.length);
    hash.update(record);
    const actual = hash.hexdigest();
    if (expectedSha256 !== undefined && expectedSha256 !== null && actual !== expectedSha256) {
      throw new CryptoError("file hash mismatch");
    }
    const chunk = await openRecord(cryptoKey, index, record, true);
    // Writers end a non-empty file with a non-empty chunk: one blob per plaintext and nonces.
    if (index > 0 && chunk.length === 0) throw new CryptoError("non-canonical file");
    parts.push(new Blob([chunk]));
  } catch (error) {
    reader.cancel().catch(() => {});
    throw error;
  }
  reader.releaseLock();
  return new Blob(parts);
}

// --------------------------------------------------------------------------- names

function checkName(name) {
  if (name === "" || name === "." || name === ".." || FORBIDDEN_NAME_CHAR.test(name)) {
    throw new CryptoError("malformed name");
  }
  // No surrogates are left, so the name encodes.
  if (new TextEncoder().encode(name).length > NAME_MAX_BYTES) {
    throw new CryptoError("malformed name");
  }
  return name;
}

function utf8Length(codePoint) {
  if (codePoint < 0x80) return 1;
  if (codePoint < 0x800) return 2;
  if (codePoint < 0x10000) return 3;
  return 4;
}

function pyStrip(text) {
  return text.replace(PY_STRIP, "");
}

/**
 * A name that is safe to create inside a download directory: keeps the part after the last
 * `/` or `\`, drops control and bidi characters, trims white space and cuts to 255 UTF-8
 * bytes; what is left, or "file" if nothing usable is.
 * @param {string} name
 * @returns {string}
 */
export function safeName(name) {
  if (typeof name !== "string") throw new TypeError("name must be a string");
  const base = name.split(SEPARATORS).pop();
  let cleaned = pyStrip(base.replace(FORBIDDEN_NAME_CHARS, ""));
  let bytes = 0;
  let cut = "";
  for (const ch of cleaned) {
    bytes += utf8Length(ch.codePointAt(0));
    if (bytes > NAME_MAX_BYTES) break;
    cut += ch;
  }
  cleaned = pyStrip(cut);
  if (cleaned === "" || cleaned === "." || cleaned === "..") return FALLBACK_NAME;
  return cleaned;
}

// --------------------------------------------------------------------------- file content

/**
 * Validate a received `file` content (section 5.4); CryptoError for anything malformed.
 * Unknown members are ignored.
 * @param {object} content
 * @returns {FileRef}
 */
export function parseFileContent(content) {
  if (!isPlainObject(content) || content.type !== "file") {
    throw new CryptoError("not a file content");
  }
  const fileId = fieldStr(content, "file_id");
  if (!UUID_RE.test(fileId)) throw new CryptoError("malformed file_id");
  const name = checkName(fieldStr(content, "name"));
  const mime = fieldStr(content, "mime");
  if (!MIME_RE.test(mime)) throw new CryptoError("malformed mime");
  const size = fieldInt(content, "size");
  if (size > MAX_FILE_BYTES) throw new CryptoError("malformed size");
  const ciphertextSize = fieldInt(content, "ciphertext_size");
  // Exact arithmetic: sizes near 2^53 must not round into a match.
  const records = BigInt(Math.max(1, Math.ceil(size / CHUNK_BYTES)));
  if (BigInt(ciphertextSize) !== BigInt(size) + records * BigInt(RECORD_OVERHEAD)) {
    throw new CryptoError("malformed ciphertext_size");
  }
  const sha256 = fieldStr(content, "sha256");
  if (!SHA256_RE.test(sha256)) throw new CryptoError("malformed sha256");
  const key = fieldB64(content, "key", { length: FILE_KEY_BYTES });
  if (fieldInt(content, "chunk_bytes") !== CHUNK_BYTES) {
    throw new CryptoError("unsupported chunk_bytes");
  }
  const text = content.text;
  const hasText = text !== undefined && text !== null;
  if (hasText && (typeof text !== "string" || codePoints(text) > CAPTION_MAX_CHARS)) {
    throw new CryptoError("malformed text");
  }
  return {
    fileId,
    name,
    mime,
    size,
    ciphertextSize,
    sha256,
    key,
    chunkBytes: CHUNK_BYTES,
    text: text === undefined ? null : text,
  };
}

/**
 * The `file` content that shares an uploaded blob (section 5.4): `fileId` is the server's id
 * of the upload; `size`, `ciphertextSize`, `sha256` and `key` come from encryptFile. Checked
 * with the receiver's rules (parseFileContent); RangeError for a malformed argument.
 * @param {{fileId: string, name: string, mime: string, size: number, ciphertextSize: number,
 *   sha256: string, key: Uint8Array, caption?: string|null}} file
 * @returns {object}
 */
export function fileContent({ fileId, name, mime, size, ciphertextSize, sha256, key, caption }) {
  if (!(key instanceof Uint8Array)) throw new RangeError("malformed key");
  const content = {
    type: "file",
    file_id: fileId,
    name,
    mime,
    size,
    ciphertext_size: ciphertextSize,
    sha256,
    key: b64encode(key),
    chunk_bytes: CHUNK_BYTES,
  };
  if (caption !== undefined && caption !== null) content.text = caption;
  // One set of rules: what we send is exactly what a receiver accepts.
  try {
    parseFileContent(content);
  } catch (error) {
    if (error instanceof CryptoError) throw new RangeError(error.message);
    throw error;
  }
  return content;
}

// --------------------------------------------------------------------------- reactions

function validEmoji(emoji) {
  if (typeof emoji !== "string" || EMOJI_FORBIDDEN.test(emoji)) return false;
  const count = codePoints(emoji);
  return count >= 1 && count <= EMOJI_MAX_CODE_POINTS;
}

function checkReaction(target, emoji, op) {
  if (typeof target !== "string" || !UUID_RE.test(target)) return "target";
  if (!validEmoji(emoji)) return "emoji";
  if (typeof op !== "string" || !REACTION_OPS.has(op)) return "op";
  return null;
}

/**
 * The content of a reaction to message `target` (section 5.2); RangeError if malformed.
 * @param {string} target the message_id reacted to
 * @param {string} emoji 1 to 16 code points, no control characters
 * @param {"add"|"remove"} [op]
 * @returns {{type: "reaction", target: string, emoji: string, op: string}}
 */
export function reactionContent(target, emoji, op = "add") {
  const bad = checkReaction(target, emoji, op);
  if (bad !== null) throw new RangeError(`malformed ${bad}`);
  return { type: "reaction", target, emoji, op };
}

/**
 * Validate a received `reaction` content; CryptoError if it is not a valid one.
 * @param {object} content
 * @returns {{target: string, emoji: string, op: "add"|"remove"}}
 */
export function parseReactionContent(content) {
  if (!isPlainObject(content) || content.type !== "reaction") {
    throw new CryptoError("not a reaction content");
  }
  const { target, emoji, op } = content;
  const bad = checkReaction(target, emoji, op);
  if (bad !== null) throw new CryptoError(`malformed ${bad}`);
  return { target, emoji, op };
}

// Python's str ordering: by code point (JS's < compares UTF-16 code units).
function compareCodePoints(a, b) {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const ca = a.codePointAt(i);
    const cb = b.codePointAt(j);
    if (ca !== cb) return ca < cb ? -1 : 1;
    i += ca > 0xffff ? 2 : 1;
    j += cb > 0xffff ? 2 : 1;
  }
  if (i < a.length) return 1;
  if (j < b.length) return -1;
  return 0;
}

/**
 * Fold reaction messages into `Map(target message_id -> Map(emoji -> Set(user_id)))`.
 *
 * `events` are one conversation's decrypted messages, in any order, each either
 * `[seq, senderId, content]` (as in the reference client) or `{seq, senderId, content}`;
 * `senderId` must come from the verified envelope. They are applied in `seq` order (ties,
 * which a server never produces, are broken by the other fields). Contents that are not
 * valid reactions are ignored; emoji nobody reacts with any longer, and targets left without
 * emoji, are dropped. Maps keep first-reaction order.
 * @param {Iterable<[number, string, object] | {seq: number, senderId?: string,
 *   sender_id?: string, content: object}>} events
 * @returns {Map<string, Map<string, Set<string>>>}
 */
export function aggregateReactions(events) {
  const valid = [];
  for (const event of events) {
    let seq;
    let senderId;
    let content;
    if (Array.isArray(event)) {
      [seq, senderId, content] = event;
    } else if (isPlainObject(event)) {
      ({ seq, content } = event);
      senderId = event.senderId ?? event.sender_id;
    } else {
      continue;
    }
    if (!Number.isSafeInteger(seq)) continue;
    if (typeof senderId !== "string" || senderId === "" || !isPlainObject(content)) continue;
    try {
      valid.push({ seq, senderId, reaction: parseReactionContent(content) });
    } catch (error) {
      if (!(error instanceof CryptoError)) throw error;
    }
  }
  valid.sort(
    (x, y) =>
      x.seq - y.seq ||
      compareCodePoints(x.senderId, y.senderId) ||
      compareCodePoints(x.reaction.target, y.reaction.target) ||
      compareCodePoints(x.reaction.emoji, y.reaction.emoji) ||
      compareCodePoints(x.reaction.op, y.reaction.op),
  );

  const state = new Map();
  for (const { senderId, reaction } of valid) {
    if (reaction.op === "add") {
      if (!state.has(reaction.target)) state.set(reaction.target, new Map());
      const emojis = state.get(reaction.target);
      if (!emojis.has(reaction.emoji)) emojis.set(reaction.emoji, new Set());
      emojis.get(reaction.emoji).add(senderId);
      continue;
    }
    const emojis = state.get(reaction.target);
    const users = emojis === undefined ? undefined : emojis.get(reaction.emoji);
    if (users === undefined) continue;
    users.delete(senderId);
    if (users.size === 0) {
      emojis.delete(reaction.emoji);
      if (emojis.size === 0) state.delete(reaction.target);
    }
  }
  return state;
}
