// Wire encodings of docs/protocol.md section 2: strict base64, LP(), UTF-8 and byte helpers.
// Pure functions: no DOM, no network. Mirrors securechat.client.encoding.

const B64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUES = (() => {
  const table = new Int16Array(128).fill(-1);
  for (let i = 0; i < B64_ALPHABET.length; i += 1) table[B64_ALPHABET.charCodeAt(i)] = i;
  return table;
})();
// LP() prefixes every part with a 4-byte unsigned big-endian length.
const LP_MAX_PART = 0xffffffff;
// crypto.getRandomValues fills at most 65536 bytes per call.
const RANDOM_MAX_CALL = 65536;

const encoder = new TextEncoder();
// fatal: refuse invalid UTF-8 (as Python's bytes.decode does); ignoreBOM: keep a leading
// U+FEFF as a character instead of silently dropping it (Python keeps it as well).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function isBytes(value) {
  return value instanceof Uint8Array;
}

function requireBytes(value, what) {
  if (!isBytes(value)) throw new TypeError(`${what} must be a Uint8Array`);
  return value;
}

/**
 * Whether a string is well-formed UTF-16 (no unpaired surrogates), i.e. encodable as UTF-8.
 * @param {string} text
 * @returns {boolean}
 */
export function isWellFormed(text) {
  if (typeof text.isWellFormed === "function") return text.isWellFormed();
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

/**
 * Encode bytes as standard base64 (RFC 4648 section 4) with padding.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function b64encode(bytes) {
  requireBytes(bytes, "bytes");
  const out = [];
  let i = 0;
  for (; i + 3 <= bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out.push(
      B64_ALPHABET[n >>> 18] +
        B64_ALPHABET[(n >>> 12) & 63] +
        B64_ALPHABET[(n >>> 6) & 63] +
        B64_ALPHABET[n & 63],
    );
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i] << 16;
    out.push(`${B64_ALPHABET[n >>> 18]}${B64_ALPHABET[(n >>> 12) & 63]}==`);
  } else if (rest === 2) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8);
    out.push(
      `${B64_ALPHABET[n >>> 18]}${B64_ALPHABET[(n >>> 12) & 63]}${B64_ALPHABET[(n >>> 6) & 63]}=`,
    );
  }
  return out.join("");
}

/**
 * Decode strict, canonical standard base64 with padding, optionally of an exact length.
 *
 * Throws TypeError (not a string) or RangeError (anything else: whitespace, the URL-safe
 * alphabet, missing or misplaced padding, non-zero unused bits such as "AB==", the wrong
 * decoded length), with a message that starts with the field name.
 * @param {string} text
 * @param {{field?: string, length?: number}} [options]
 * @returns {Uint8Array}
 */
export function b64decode(text, { field = "value", length } = {}) {
  if (typeof text !== "string") throw new TypeError(`${field}: expected a base64 string`);
  if (text.length % 4 !== 0) throw new RangeError(`${field}: invalid base64`);
  let padding = 0;
  if (text.endsWith("==")) padding = 2;
  else if (text.endsWith("=")) padding = 1;
  const body = text.length - padding;
  const out = new Uint8Array((text.length / 4) * 3 - padding);
  let bits = 0;
  let buffered = 0;
  let o = 0;
  for (let i = 0; i < body; i += 1) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? B64_VALUES[code] : -1;
    if (value < 0) throw new RangeError(`${field}: invalid base64`);
    bits = ((bits << 6) | value) & 0xffffff;
    buffered += 6;
    if (buffered >= 8) {
      buffered -= 8;
      out[o] = (bits >>> buffered) & 0xff;
      o += 1;
    }
  }
  // The unused low bits of the last character must be zero: one spelling per value.
  if (buffered > 0 && (bits & ((1 << buffered) - 1)) !== 0) {
    throw new RangeError(`${field}: non-canonical base64`);
  }
  if (length !== undefined && out.length !== length) {
    throw new RangeError(`${field}: expected ${length} bytes, got ${out.length}`);
  }
  return out;
}

/**
 * UTF-8 encoding of a string; RangeError for unpaired surrogates (which have no UTF-8 form
 * and which TextEncoder would silently replace).
 * @param {string} text
 * @returns {Uint8Array}
 */
export function utf8(text) {
  if (typeof text !== "string") throw new TypeError("expected a string");
  if (!isWellFormed(text)) throw new RangeError("string has unpaired surrogates");
  return encoder.encode(text);
}

/**
 * Strict UTF-8 decoding; TypeError for invalid UTF-8. A leading BOM is kept as U+FEFF.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function fromUtf8(bytes) {
  return decoder.decode(requireBytes(bytes, "bytes"));
}

function lpPart(part) {
  if (typeof part === "boolean") throw new TypeError("LP part must not be a boolean");
  if (typeof part === "number") {
    if (!Number.isSafeInteger(part)) throw new TypeError("LP number must be an integer");
    if (part < 0) throw new RangeError("LP integer must not be negative");
    return encoder.encode(String(part));
  }
  if (typeof part === "bigint") {
    if (part < 0n) throw new RangeError("LP integer must not be negative");
    return encoder.encode(part.toString());
  }
  if (typeof part === "string") return utf8(part);
  if (isBytes(part)) return part;
  throw new TypeError(`LP part must be a Uint8Array, string or integer, not ${typeof part}`);
}

/**
 * Concatenate the LP encodings of the parts: a 4-byte big-endian length, then the bytes.
 * Strings are UTF-8, non-negative integers their decimal ASCII form (`LP("7")`),
 * Uint8Arrays are taken as they are.
 * @param {...(Uint8Array|string|number|bigint)} parts
 * @returns {Uint8Array}
 */
export function lp(...parts) {
  const raws = parts.map(lpPart);
  let total = 0;
  for (const raw of raws) {
    if (raw.length > LP_MAX_PART) throw new RangeError("LP part too long");
    total += 4 + raw.length;
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const raw of raws) {
    view.setUint32(offset, raw.length, false);
    out.set(raw, offset + 4);
    offset += 4 + raw.length;
  }
  return out;
}

/**
 * Concatenate byte arrays into a new Uint8Array.
 * @param {...Uint8Array} arrays
 * @returns {Uint8Array}
 */
export function concat(...arrays) {
  let total = 0;
  for (const array of arrays) total += requireBytes(array, "part").length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const array of arrays) {
    out.set(array, offset);
    offset += array.length;
  }
  return out;
}

/**
 * Compare two byte arrays; the time taken depends on the length only, not on the contents.
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 * @returns {boolean}
 */
export function equalBytes(a, b) {
  requireBytes(a, "a");
  requireBytes(b, "b");
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * `n` bytes from the CSPRNG (crypto.getRandomValues).
 * @param {number} n
 * @returns {Uint8Array}
 */
export function randomBytes(n) {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError("n must be a non-negative integer");
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += RANDOM_MAX_CALL) {
    crypto.getRandomValues(out.subarray(i, Math.min(n, i + RANDOM_MAX_CALL)));
  }
  return out;
}

/**
 * Lowercase hexadecimal form of bytes.
 * @param {Uint8Array} bytes
 * @returns {string}
 */
export function toHex(bytes) {
  requireBytes(bytes, "bytes");
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/**
 * Bytes of a hexadecimal string (even length, either case); RangeError otherwise.
 * @param {string} text
 * @returns {Uint8Array}
 */
export function fromHex(text) {
  if (typeof text !== "string") throw new TypeError("expected a hex string");
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) throw new RangeError("invalid hex");
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i += 1) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
