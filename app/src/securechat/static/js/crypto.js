// Cryptographic core of suite p256-v1 (docs/protocol.md sections 3 to 5 and 9) over Web
// Crypto. Pure computation: no DOM, no network, nothing but crypto.subtle and the CSPRNG.
// Mirrors securechat.client.crypto and securechat.client.safety: every failure caused by data
// from outside (bad signature, failed decryption, malformed field, key not on P-256) throws
// CryptoError with a short message.
//
// Binary values are Uint8Array; public keys are uncompressed P-256 points (65 bytes); private
// keys travel as PKCS #8. Functions that touch crypto.subtle are async.

import {
  b64decode,
  b64encode,
  concat,
  fromUtf8,
  isWellFormed,
  lp,
  randomBytes,
  utf8,
} from "./encoding.js";

/**
 * A user's two key pairs of one key version (extractable private keys).
 * @typedef {{ecdh: CryptoKeyPair, ecdsa: CryptoKeyPair}} Identity
 */
/**
 * One key version of a user as published in the key directory (raw 65-byte points).
 * @typedef {{userId: string, keyVersion: number, ecdhPublic: Uint8Array,
 *   ecdsaPublic: Uint8Array}} PublicKeys
 */
/**
 * The local party: who we are, which key version, and its private keys.
 * @typedef {{userId: string, keyVersion: number, identity: Identity}} Signer
 */
/**
 * An epoch-key wrap as sent and stored (section 5.1).
 * @typedef {{recipient_id: string, recipient_key_version: number, ephemeral_public: string,
 *   nonce: string, ciphertext: string, signature: string}} Wrap
 */
/**
 * A message envelope as sent (section 5.2).
 * @typedef {{v: number, suite: string, conversation_id: string, epoch: number,
 *   message_id: string, sender_id: string, sender_key_version: number, nonce: string,
 *   ciphertext: string, signature: string}} Envelope
 */

export const PROTOCOL_VERSION = 1;
export const SUITE = "p256-v1";
export const KDF_ITERATIONS = 600000;
export const KDF_SALT_BYTES = 16;
export const NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;
export const EPOCH_KEY_BYTES = 32;
export const P256_PUBLIC_BYTES = 65;
export const P256_SIGNATURE_BYTES = 64;
export const SAFETY_ITERATIONS = 5200;
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const HKDF_INFO_AUTH = "securechat/p256-v1/auth";
const HKDF_INFO_WRAP = "securechat/p256-v1/wrap";
const HKDF_INFO_EPOCH_WRAP = "securechat/p256-v1/epoch-wrap";
const LABEL_KEY_BLOB = "securechat/p256-v1/key-blob";
const LABEL_EPOCH_KEY = "securechat/p256-v1/epoch-key";
const LABEL_MESSAGE = "securechat/p256-v1/message";
// Every symmetric key of the suite (AES-256, HKDF output) is 32 bytes.
const KEY_BYTES = 32;
// Section 4.1: HKDF for auth_key/wrap_key uses an all-zero salt of the hash length.
const HKDF_ZERO_SALT = new Uint8Array(32);
// The members of the key blob's plaintext JSON (section 4.2), in the order we write them.
const BLOB_MEMBERS = ["ecdh_private", "ecdsa_private"];

const ECDH = { name: "ECDH", namedCurve: "P-256" };
const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const ECDSA_SHA256 = { name: "ECDSA", hash: "SHA-256" };

// P-256 (SEC 2 / FIPS 186-4): y^2 = x^3 - 3x + b over GF(p), for a synchronous on-curve check.
const P256_P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const P256_B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

const subtle = () => {
  if (!globalThis.crypto || !globalThis.crypto.subtle) {
    throw new Error("Web Crypto (crypto.subtle) is not available: use a secure context (https)");
  }
  return globalThis.crypto.subtle;
};

/** A verification, decryption or parsing step failed; the data must not be used. */
export class CryptoError extends Error {
  /**
   * @param {string} message
   * @param {ErrorOptions} [options]
   */
  constructor(message, options) {
    super(message, options);
    this.name = "CryptoError";
  }
}

// --------------------------------------------------------------------------- helpers

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Return `value` if it is a Uint8Array of exactly `length` bytes; CryptoError otherwise.
 * @param {unknown} value
 * @param {number} length
 * @param {string} what
 * @returns {Uint8Array}
 */
export function requireBytes(value, length, what) {
  if (!(value instanceof Uint8Array) || value.length !== length) {
    throw new CryptoError(`${what} must be ${length} bytes`);
  }
  return value;
}

/**
 * Decode the base64 member `name` of a JSON object received from outside.
 * @param {object} obj
 * @param {string} name
 * @param {{length?: number, minLength?: number}} [options]
 * @returns {Uint8Array}
 */
export function fieldB64(obj, name, { length, minLength = 0 } = {}) {
  const value = isPlainObject(obj) ? obj[name] : undefined;
  if (typeof value !== "string") throw new CryptoError(`malformed ${name}`);
  let data;
  try {
    data = b64decode(value, { field: name, length });
  } catch {
    throw new CryptoError(`malformed ${name}`);
  }
  if (data.length < minLength) throw new CryptoError(`malformed ${name}`);
  return data;
}

/**
 * Return the string member `name` (well-formed Unicode); CryptoError otherwise.
 * @param {object} obj
 * @param {string} name
 * @returns {string}
 */
export function fieldStr(obj, name) {
  const value = isPlainObject(obj) ? obj[name] : undefined;
  if (typeof value !== "string" || !isWellFormed(value)) throw new CryptoError(`malformed ${name}`);
  return value;
}

/**
 * Return the non-negative integer member `name` (at most 2^53 - 1; a boolean is not one).
 * @param {object} obj
 * @param {string} name
 * @returns {number}
 */
export function fieldInt(obj, name) {
  const value = isPlainObject(obj) ? obj[name] : undefined;
  if (!Number.isSafeInteger(value) || value < 0) throw new CryptoError(`malformed ${name}`);
  return value;
}

function nonceOrRandom(nonce) {
  if (nonce === undefined || nonce === null) return randomBytes(NONCE_BYTES);
  return requireBytes(nonce, NONCE_BYTES, "nonce");
}

async function hkdf(ikm, salt, info) {
  const key = await subtle().importKey("raw", ikm, "HKDF", false, ["deriveBits"]);
  const bits = await subtle().deriveBits(
    { name: "HKDF", hash: "SHA-256", salt, info: utf8(info) },
    key,
    8 * KEY_BYTES,
  );
  return new Uint8Array(bits);
}

// --------------------------------------------------------------------------- key encodings

function onP256(point) {
  let x = 0n;
  let y = 0n;
  for (let i = 1; i <= 32; i += 1) x = (x << 8n) | BigInt(point[i]);
  for (let i = 33; i <= 64; i += 1) y = (y << 8n) | BigInt(point[i]);
  if (x >= P256_P || y >= P256_P) return false;
  const rhs = (((((x * x) % P256_P) * x) % P256_P) - 3n * x + P256_B) % P256_P;
  return ((y * y - rhs) % P256_P + P256_P) % P256_P === 0n;
}

/**
 * Check an uncompressed P-256 point (0x04 || X || Y, on the curve); CryptoError otherwise.
 * @param {unknown} point
 * @returns {Uint8Array} the point
 */
export function checkPublicKey(point) {
  if (!(point instanceof Uint8Array) || point.length !== P256_PUBLIC_BYTES || point[0] !== 0x04) {
    throw new CryptoError("malformed public key");
  }
  if (!onP256(point)) throw new CryptoError("malformed public key");
  return point;
}

async function importPublic(point, algorithm) {
  checkPublicKey(point);
  const usages = algorithm === ECDSA ? ["verify"] : [];
  try {
    return await subtle().importKey("raw", point, algorithm, true, usages);
  } catch {
    throw new CryptoError("malformed public key");
  }
}

async function exportPublic(publicKey) {
  return new Uint8Array(await subtle().exportKey("raw", publicKey));
}

/**
 * Import a PKCS #8 P-256 private key as a key pair (the public half is computed from it, so
 * PKCS #8 with or without the embedded public key loads). Used by openKeyBlob and by tests
 * with fixed keys (the vectors).
 * @param {"ecdh"|"ecdsa"} kind
 * @param {Uint8Array} bytes PKCS #8 DER
 * @returns {Promise<CryptoKeyPair>} extractable private key, public key
 */
export async function importPrivatePkcs8(kind, bytes) {
  if (kind !== "ecdh" && kind !== "ecdsa") throw new TypeError('kind must be "ecdh" or "ecdsa"');
  if (!(bytes instanceof Uint8Array)) throw new CryptoError("malformed private key");
  const algorithm = kind === "ecdh" ? ECDH : ECDSA;
  let privateKey;
  let jwk;
  try {
    privateKey = await subtle().importKey(
      "pkcs8",
      bytes,
      algorithm,
      true,
      kind === "ecdh" ? ["deriveBits"] : ["sign"],
    );
    jwk = await subtle().exportKey("jwk", privateKey);
  } catch {
    throw new CryptoError("malformed private key");
  }
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") throw new CryptoError("key is not on P-256");
  const publicJwk = { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, ext: true };
  let publicKey;
  try {
    publicKey = await subtle().importKey(
      "jwk",
      publicJwk,
      algorithm,
      true,
      kind === "ecdsa" ? ["verify"] : [],
    );
  } catch {
    throw new CryptoError("malformed private key");
  }
  return { privateKey, publicKey };
}

async function exportPkcs8(privateKey) {
  return new Uint8Array(await subtle().exportKey("pkcs8", privateKey));
}

// --------------------------------------------------------------------------- AEAD and JSON

async function aesKey(key, usage) {
  return subtle().importKey("raw", requireBytes(key, KEY_BYTES, "key"), "AES-GCM", false, [usage]);
}

/**
 * AES-256-GCM; the 16-byte tag is appended to the returned ciphertext.
 * @param {Uint8Array} key 32 bytes
 * @param {Uint8Array} nonce 12 bytes
 * @param {Uint8Array} plaintext
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array>}
 */
export async function aesEncrypt(key, nonce, plaintext, aad) {
  requireBytes(nonce, NONCE_BYTES, "nonce");
  const cryptoKey = await aesKey(key, "encrypt");
  const out = await subtle().encrypt(
    { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 },
    cryptoKey,
    plaintext,
  );
  return new Uint8Array(out);
}

/**
 * AES-256-GCM decryption; any authentication failure becomes CryptoError.
 * @param {Uint8Array} key 32 bytes
 * @param {Uint8Array} nonce 12 bytes
 * @param {Uint8Array} ciphertext ciphertext || tag
 * @param {Uint8Array} aad
 * @returns {Promise<Uint8Array>}
 */
export async function aesDecrypt(key, nonce, ciphertext, aad) {
  requireBytes(nonce, NONCE_BYTES, "nonce");
  const cryptoKey = await aesKey(key, "decrypt");
  if (!(ciphertext instanceof Uint8Array) || ciphertext.length < GCM_TAG_BYTES) {
    throw new CryptoError("decryption failed");
  }
  try {
    const out = await subtle().decrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 },
      cryptoKey,
      ciphertext,
    );
    return new Uint8Array(out);
  } catch {
    throw new CryptoError("decryption failed");
  }
}

function jsonReplacer(key, value) {
  // Python's json.dumps(allow_nan=False) refuses what JSON.stringify would quietly change:
  // NaN and Infinity (null in JS), undefined and functions (dropped), unpaired surrogates.
  if (!isWellFormed(key)) throw new CryptoError("content is not JSON-serializable");
  switch (typeof value) {
    case "number":
      if (!Number.isFinite(value)) throw new CryptoError("content is not JSON-serializable");
      return value;
    case "string":
      if (!isWellFormed(value)) throw new CryptoError("content is not JSON-serializable");
      return value;
    case "undefined":
    case "function":
    case "symbol":
    case "bigint":
      throw new CryptoError("content is not JSON-serializable");
    default:
      return value;
  }
}

/**
 * Compact UTF-8 JSON of an object (what JSON.stringify writes); CryptoError for anything
 * JSON cannot represent exactly (NaN, Infinity, undefined, functions, unpaired surrogates).
 * @param {object} value a plain object
 * @returns {Uint8Array}
 */
export function encodeJson(value) {
  if (!isPlainObject(value)) throw new CryptoError("content must be an object");
  let text;
  try {
    text = JSON.stringify(value, jsonReplacer);
  } catch {
    throw new CryptoError("content is not JSON-serializable");
  }
  return utf8(text);
}

/**
 * Parse UTF-8 JSON that must be an object; CryptoError otherwise (invalid UTF-8, a BOM,
 * NaN/Infinity, any other JSON value).
 * @param {Uint8Array} bytes
 * @returns {object}
 */
export function parseJsonObject(bytes) {
  let value;
  try {
    value = JSON.parse(fromUtf8(bytes));
  } catch {
    throw new CryptoError("malformed plaintext");
  }
  if (!isPlainObject(value)) throw new CryptoError("malformed plaintext");
  return value;
}

// --------------------------------------------------------------------------- signatures

/**
 * ECDSA-P256-SHA256 signature of `data` as IEEE P1363 r || s (64 bytes, random nonce).
 * @param {CryptoKey} privateKey an ECDSA P-256 private key
 * @param {Uint8Array} data
 * @returns {Promise<Uint8Array>}
 */
export async function sign(privateKey, data) {
  return new Uint8Array(await subtle().sign(ECDSA_SHA256, privateKey, data));
}

/**
 * Verify a P1363 ECDSA-P256-SHA256 signature; CryptoError unless it is valid.
 * @param {Uint8Array} publicBytes the signer's uncompressed ECDSA public key
 * @param {Uint8Array} signature 64 bytes
 * @param {Uint8Array} data
 * @returns {Promise<void>}
 */
export async function verify(publicBytes, signature, data) {
  if (!(signature instanceof Uint8Array) || signature.length !== P256_SIGNATURE_BYTES) {
    throw new CryptoError("invalid signature");
  }
  const key = await importPublic(publicBytes, ECDSA);
  let valid = false;
  try {
    valid = await subtle().verify(ECDSA_SHA256, key, signature, data);
  } catch {
    valid = false;
  }
  if (!valid) throw new CryptoError("invalid signature");
}

// --------------------------------------------------------------------------- key derivation

/**
 * Derive auth_key and wrap_key from a password (section 4.1): PBKDF2-HMAC-SHA256 over the
 * NFC-normalised UTF-8 password, then HKDF-SHA256. `iterations` comes from the server;
 * fewer than `minIterations` is refused so a server cannot talk the client into a cheap
 * derivation (only tests lower it). Salts shorter than 16 bytes are refused.
 * @param {string} password
 * @param {Uint8Array} salt at least 16 bytes
 * @param {number} iterations
 * @param {{minIterations?: number}} [options]
 * @returns {Promise<{authKey: Uint8Array, wrapKey: Uint8Array}>}
 */
export async function deriveKeys(
  password,
  salt,
  iterations,
  { minIterations = KDF_ITERATIONS } = {},
) {
  if (!Number.isSafeInteger(iterations)) throw new CryptoError("iterations must be an integer");
  if (iterations < Math.max(minIterations, 1)) {
    throw new CryptoError(`refusing ${iterations} KDF iterations (minimum ${minIterations})`);
  }
  if (typeof password !== "string") throw new CryptoError("password must be a string");
  if (!(salt instanceof Uint8Array) || salt.length < KDF_SALT_BYTES) {
    throw new CryptoError(`salt must be at least ${KDF_SALT_BYTES} bytes`);
  }
  let secret;
  try {
    // NFC so that "é" typed as one code point or as e + combining accent gives the same key.
    secret = utf8(password.normalize("NFC"));
  } catch {
    throw new CryptoError("password is not valid Unicode");
  }
  const base = await subtle().importKey("raw", secret, "PBKDF2", false, ["deriveBits"]);
  const master = new Uint8Array(
    await subtle().deriveBits({ name: "PBKDF2", hash: "SHA-256", salt, iterations }, base, 256),
  );
  const [authKey, wrapKey] = await Promise.all([
    hkdf(master, HKDF_ZERO_SALT, HKDF_INFO_AUTH),
    hkdf(master, HKDF_ZERO_SALT, HKDF_INFO_WRAP),
  ]);
  master.fill(0);
  return { authKey, wrapKey };
}

// --------------------------------------------------------------------------- identity keys

/**
 * Two fresh, independent, extractable P-256 key pairs: ECDH (receive wraps), ECDSA (sign).
 * @returns {Promise<Identity>} an Identity
 */
export async function generateIdentity() {
  const [ecdh, ecdsa] = await Promise.all([
    subtle().generateKey(ECDH, true, ["deriveBits"]),
    subtle().generateKey(ECDSA, true, ["sign", "verify"]),
  ]);
  return { ecdh, ecdsa };
}

/**
 * The public half of an Identity, labelled with its owner and key version.
 * @param {Identity} identity
 * @param {string} userId
 * @param {number} keyVersion
 * @returns {Promise<PublicKeys>}
 */
export async function publicKeysOf(identity, userId, keyVersion) {
  const [ecdhPublic, ecdsaPublic] = await Promise.all([
    exportPublic(identity.ecdh.publicKey),
    exportPublic(identity.ecdsa.publicKey),
  ]);
  return { userId, keyVersion, ecdhPublic, ecdsaPublic };
}

/**
 * Read `{suite, ecdh_public, ecdsa_public}` (the key directory's or registration's `keys`)
 * for `userId`/`keyVersion`. Synchronous. Both points are checked to be on P-256. If the
 * object also names a `user_id` or `key_version` (the key-directory answer does), they must
 * be the ones asked for. CryptoError for anything malformed.
 * @param {string} userId
 * @param {number} keyVersion
 * @param {{suite: string, ecdh_public: string, ecdsa_public: string}} keys
 * @returns {PublicKeys}
 */
export function publicKeysFromJson(userId, keyVersion, keys) {
  if (typeof userId !== "string" || !UUID_RE.test(userId)) {
    throw new CryptoError("malformed user_id");
  }
  if (!Number.isSafeInteger(keyVersion) || keyVersion < 1) {
    throw new CryptoError("malformed key_version");
  }
  if (!isPlainObject(keys) || keys.suite !== SUITE) throw new CryptoError("unsupported suite");
  if (Object.hasOwn(keys, "user_id") && keys.user_id !== userId) {
    throw new CryptoError("keys belong to another user");
  }
  if (Object.hasOwn(keys, "key_version") && keys.key_version !== keyVersion) {
    throw new CryptoError("keys belong to another key version");
  }
  const ecdhPublic = fieldB64(keys, "ecdh_public", { length: P256_PUBLIC_BYTES });
  const ecdsaPublic = fieldB64(keys, "ecdsa_public", { length: P256_PUBLIC_BYTES });
  checkPublicKey(ecdhPublic);
  checkPublicKey(ecdsaPublic);
  return { userId, keyVersion, ecdhPublic, ecdsaPublic };
}

/**
 * The `keys` object of registration and the key directory.
 * @param {{ecdhPublic: Uint8Array, ecdsaPublic: Uint8Array}} pk
 * @returns {{suite: string, ecdh_public: string, ecdsa_public: string}}
 */
export function publicKeysToJson(pk) {
  return {
    suite: SUITE,
    ecdh_public: b64encode(pk.ecdhPublic),
    ecdsa_public: b64encode(pk.ecdsaPublic),
  };
}

/**
 * `ecdsa_public || ecdh_public`, the 130-byte identity hashed into safety numbers.
 * @param {{ecdhPublic: Uint8Array, ecdsaPublic: Uint8Array}} pk
 * @returns {Uint8Array}
 */
export function identityBytes(pk) {
  return concat(pk.ecdsaPublic, pk.ecdhPublic);
}

// --------------------------------------------------------------------------- associated data

/**
 * AAD of the key blob (section 4.2).
 * @param {string} userId
 * @param {number} keyVersion
 * @returns {Uint8Array}
 */
export function keyBlobAad(userId, keyVersion) {
  return lp(LABEL_KEY_BLOB, userId, keyVersion);
}

/**
 * AAD of an epoch-key wrap (section 5.1).
 * @param {string} conversationId
 * @param {number} epoch
 * @param {{wrapperId: string, wrapperKeyVersion: number, recipientId: string,
 *   recipientKeyVersion: number}} parties keyword-like, to avoid mix-ups
 * @returns {Uint8Array}
 */
export function epochWrapAad(conversationId, epoch, parties) {
  const { wrapperId, wrapperKeyVersion, recipientId, recipientKeyVersion } = parties;
  return lp(
    LABEL_EPOCH_KEY,
    conversationId,
    epoch,
    wrapperId,
    wrapperKeyVersion,
    recipientId,
    recipientKeyVersion,
  );
}

/**
 * AAD of a message envelope (section 5.2).
 * @param {string} conversationId
 * @param {number} epoch
 * @param {string} messageId
 * @param {string} senderId
 * @param {number} senderKeyVersion
 * @returns {Uint8Array}
 */
export function messageAad(conversationId, epoch, messageId, senderId, senderKeyVersion) {
  return lp(LABEL_MESSAGE, conversationId, epoch, messageId, senderId, senderKeyVersion);
}

/**
 * The bytes a wrapper signs: `LP(aad) || LP(eph.public) || LP(nonce) || LP(ciphertext)`.
 * @param {Uint8Array} aad
 * @param {Uint8Array} ephemeralPublic
 * @param {Uint8Array} nonce
 * @param {Uint8Array} ciphertext
 * @returns {Uint8Array}
 */
export function wrapSignedData(aad, ephemeralPublic, nonce, ciphertext) {
  return lp(aad, ephemeralPublic, nonce, ciphertext);
}

/**
 * The bytes a sender signs: `LP(aad) || LP(nonce) || LP(ciphertext)`.
 * @param {Uint8Array} aad
 * @param {Uint8Array} nonce
 * @param {Uint8Array} ciphertext
 * @returns {Uint8Array}
 */
export function envelopeSignedData(aad, nonce, ciphertext) {
  return lp(aad, nonce, ciphertext);
}

function aadOrError(build) {
  try {
    return build();
  } catch (error) {
    if (error instanceof CryptoError) throw error;
    throw new CryptoError("malformed associated data", { cause: error });
  }
}

// --------------------------------------------------------------------------- key blob

/**
 * The key blob's plaintext as this client writes it: compact JSON, ECDH key first.
 * @param {Identity} identity
 * @returns {Promise<Uint8Array>}
 */
export async function keyBlobPlaintext(identity) {
  const [ecdh, ecdsa] = await Promise.all([
    exportPkcs8(identity.ecdh.privateKey),
    exportPkcs8(identity.ecdsa.privateKey),
  ]);
  return encodeJson({ [BLOB_MEMBERS[0]]: b64encode(ecdh), [BLOB_MEMBERS[1]]: b64encode(ecdsa) });
}

/**
 * Encrypt the private keys under `wrapKey` into `{nonce, ciphertext}` (section 4.2).
 * @param {Uint8Array} wrapKey 32 bytes
 * @param {string} userId
 * @param {number} keyVersion
 * @param {Identity} identity
 * @returns {Promise<{nonce: string, ciphertext: string}>}
 */
export async function sealKeyBlob(wrapKey, userId, keyVersion, identity) {
  return sealKeyBlobWith(wrapKey, userId, keyVersion, identity, {});
}

/**
 * sealKeyBlob with a fixed nonce (test vectors only).
 * @param {Uint8Array} wrapKey
 * @param {string} userId
 * @param {number} keyVersion
 * @param {Identity} identity
 * @param {{nonce?: Uint8Array}} fixed
 * @returns {Promise<{nonce: string, ciphertext: string}>}
 */
export async function sealKeyBlobWith(wrapKey, userId, keyVersion, identity, { nonce } = {}) {
  const key = requireBytes(wrapKey, KEY_BYTES, "wrap_key");
  const iv = nonceOrRandom(nonce);
  const plaintext = await keyBlobPlaintext(identity);
  try {
    const ciphertext = await aesEncrypt(key, iv, plaintext, keyBlobAad(userId, keyVersion));
    return { nonce: b64encode(iv), ciphertext: b64encode(ciphertext) };
  } finally {
    plaintext.fill(0);
  }
}

/**
 * Decrypt a key blob; CryptoError for a wrong password (wrap key), owner, version or bad
 * content. The returned Identity's private keys are extractable (to re-seal the blob).
 * @param {Uint8Array} wrapKey 32 bytes
 * @param {string} userId
 * @param {number} keyVersion
 * @param {{nonce: string, ciphertext: string}} blob
 * @returns {Promise<Identity>}
 */
export async function openKeyBlob(wrapKey, userId, keyVersion, blob) {
  const key = requireBytes(wrapKey, KEY_BYTES, "wrap_key");
  const iv = fieldB64(blob, "nonce", { length: NONCE_BYTES });
  const ciphertext = fieldB64(blob, "ciphertext", { minLength: GCM_TAG_BYTES });
  const aad = aadOrError(() => keyBlobAad(userId, keyVersion));
  const plaintext = await aesDecrypt(key, iv, ciphertext, aad);
  const content = parseJsonObject(plaintext);
  plaintext.fill(0);
  // The object has exactly these two members (section 4.2); anything else is not ours.
  const names = Object.keys(content);
  const complete = BLOB_MEMBERS.every((name) => Object.hasOwn(content, name));
  if (names.length !== BLOB_MEMBERS.length || !complete) {
    throw new CryptoError("malformed key blob");
  }
  const [ecdh, ecdsa] = await Promise.all([
    importPrivatePkcs8("ecdh", fieldB64(content, "ecdh_private")),
    importPrivatePkcs8("ecdsa", fieldB64(content, "ecdsa_private")),
  ]);
  return { ecdh, ecdsa };
}

// --------------------------------------------------------------------------- epoch keys

/**
 * A fresh random 32-byte epoch key.
 * @returns {Uint8Array}
 */
export function newEpochKey() {
  return randomBytes(EPOCH_KEY_BYTES);
}

async function ecdhSharedSecret(privateKey, peerPublic) {
  const peer = await importPublic(peerPublic, ECDH);
  try {
    const bits = await subtle().deriveBits({ name: "ECDH", public: peer }, privateKey, 256);
    return new Uint8Array(bits);
  } catch {
    throw new CryptoError("key agreement failed");
  }
}

/**
 * The key-encryption key of a wrap: HKDF over the ECDH secret, salted with both points.
 * @param {Uint8Array} shared
 * @param {Uint8Array} ephemeralPublic
 * @param {Uint8Array} recipientEcdhPublic
 * @returns {Promise<Uint8Array>}
 */
export async function deriveWrapKek(shared, ephemeralPublic, recipientEcdhPublic) {
  return hkdf(shared, concat(ephemeralPublic, recipientEcdhPublic), HKDF_INFO_EPOCH_WRAP);
}

/**
 * Wrap `epochKey` for `recipient` and sign it as `signer` (section 5.1).
 * @param {Uint8Array} epochKey 32 bytes
 * @param {string} conversationId
 * @param {number} epoch
 * @param {Signer} signer the wrapper
 * @param {{userId: string, keyVersion: number, ecdhPublic: Uint8Array}} recipientPublicKeys
 * @returns {Promise<Wrap>}
 */
export async function wrapEpochKey(epochKey, conversationId, epoch, signer, recipientPublicKeys) {
  return wrapEpochKeyWith(epochKey, conversationId, epoch, signer, recipientPublicKeys, {});
}

/**
 * wrapEpochKey with a fixed ephemeral key (PKCS #8) and nonce (test vectors only).
 * @param {Uint8Array} epochKey
 * @param {string} conversationId
 * @param {number} epoch
 * @param {Signer} signer
 * @param {{userId: string, keyVersion: number, ecdhPublic: Uint8Array}} recipientPublicKeys
 * @param {{ephemeralPkcs8?: Uint8Array, nonce?: Uint8Array}} fixed
 * @returns {Promise<Wrap>}
 */
export async function wrapEpochKeyWith(
  epochKey,
  conversationId,
  epoch,
  signer,
  recipientPublicKeys,
  { ephemeralPkcs8, nonce } = {},
) {
  requireBytes(epochKey, EPOCH_KEY_BYTES, "epoch_key");
  const eph =
    ephemeralPkcs8 === undefined || ephemeralPkcs8 === null
      ? await subtle().generateKey(ECDH, false, ["deriveBits"])
      : await importPrivatePkcs8("ecdh", ephemeralPkcs8);
  const iv = nonceOrRandom(nonce);
  const ephPublic = await exportPublic(eph.publicKey);
  const recipientPublic = recipientPublicKeys.ecdhPublic;
  const shared = await ecdhSharedSecret(eph.privateKey, recipientPublic);
  const kek = await deriveWrapKek(shared, ephPublic, recipientPublic);
  const aad = epochWrapAad(conversationId, epoch, {
    wrapperId: signer.userId,
    wrapperKeyVersion: signer.keyVersion,
    recipientId: recipientPublicKeys.userId,
    recipientKeyVersion: recipientPublicKeys.keyVersion,
  });
  const ciphertext = await aesEncrypt(kek, iv, epochKey, aad);
  const signature = await sign(
    signer.identity.ecdsa.privateKey,
    wrapSignedData(aad, ephPublic, iv, ciphertext),
  );
  shared.fill(0);
  kek.fill(0);
  return {
    recipient_id: recipientPublicKeys.userId,
    recipient_key_version: recipientPublicKeys.keyVersion,
    ephemeral_public: b64encode(ephPublic),
    nonce: b64encode(iv),
    ciphertext: b64encode(ciphertext),
    signature: b64encode(signature),
  };
}

/**
 * Verify and open a wrap addressed to `signer` (me); return the 32-byte epoch key.
 * `wrapperPublicKeys` must be the wrapper's keys of the epoch's `wrapper_key_version`,
 * from the key directory. The signature is checked before any use of the ciphertext.
 * @param {object} wrap
 * @param {string} conversationId
 * @param {number} epoch
 * @param {{userId: string, keyVersion: number, ecdsaPublic: Uint8Array}} wrapperPublicKeys
 * @param {Signer} signer
 * @returns {Promise<Uint8Array>}
 */
export async function unwrapEpochKey(wrap, conversationId, epoch, wrapperPublicKeys, signer) {
  const recipientId = fieldStr(wrap, "recipient_id");
  const recipientKeyVersion = fieldInt(wrap, "recipient_key_version");
  const ephPublic = fieldB64(wrap, "ephemeral_public", { length: P256_PUBLIC_BYTES });
  const iv = fieldB64(wrap, "nonce", { length: NONCE_BYTES });
  const ciphertext = fieldB64(wrap, "ciphertext", { length: EPOCH_KEY_BYTES + GCM_TAG_BYTES });
  const signature = fieldB64(wrap, "signature", { length: P256_SIGNATURE_BYTES });
  const aad = aadOrError(() =>
    epochWrapAad(conversationId, epoch, {
      wrapperId: wrapperPublicKeys.userId,
      wrapperKeyVersion: wrapperPublicKeys.keyVersion,
      recipientId,
      recipientKeyVersion,
    }),
  );
  const signed = wrapSignedData(aad, ephPublic, iv, ciphertext);
  await verify(wrapperPublicKeys.ecdsaPublic, signature, signed);
  if (recipientId !== signer.userId || recipientKeyVersion !== signer.keyVersion) {
    throw new CryptoError("wrap is addressed to someone else");
  }
  const shared = await ecdhSharedSecret(signer.identity.ecdh.privateKey, ephPublic);
  const ownPublic = await exportPublic(signer.identity.ecdh.publicKey);
  const kek = await deriveWrapKek(shared, ephPublic, ownPublic);
  shared.fill(0);
  try {
    return await aesDecrypt(kek, iv, ciphertext, aad);
  } finally {
    kek.fill(0);
  }
}

// --------------------------------------------------------------------------- envelopes

/**
 * Encrypt and sign `content` into a message envelope (section 5.2). `messageId` defaults
 * to a fresh UUID v4; re-sending after a lost ack must reuse the returned envelope
 * unchanged rather than calling this again.
 * @param {object} content a JSON object with a `type`
 * @param {string} conversationId
 * @param {number} epoch
 * @param {Uint8Array} epochKey 32 bytes
 * @param {Signer} signer the sender
 * @param {{messageId?: string}} [options]
 * @returns {Promise<Envelope>}
 */
export async function encryptEnvelope(
  content,
  conversationId,
  epoch,
  epochKey,
  signer,
  { messageId } = {},
) {
  return encryptEnvelopeWith(content, conversationId, epoch, epochKey, signer, { messageId });
}

/**
 * encryptEnvelope with a fixed nonce (test vectors only).
 * @param {object} content
 * @param {string} conversationId
 * @param {number} epoch
 * @param {Uint8Array} epochKey
 * @param {Signer} signer
 * @param {{messageId?: string, nonce?: Uint8Array}} fixed
 * @returns {Promise<Envelope>}
 */
export async function encryptEnvelopeWith(
  content,
  conversationId,
  epoch,
  epochKey,
  signer,
  { messageId, nonce } = {},
) {
  const key = requireBytes(epochKey, EPOCH_KEY_BYTES, "epoch_key");
  const mid = messageId === undefined || messageId === null ? crypto.randomUUID() : messageId;
  const iv = nonceOrRandom(nonce);
  const aad = messageAad(conversationId, epoch, mid, signer.userId, signer.keyVersion);
  const ciphertext = await aesEncrypt(key, iv, encodeJson(content), aad);
  const signed = envelopeSignedData(aad, iv, ciphertext);
  const signature = await sign(signer.identity.ecdsa.privateKey, signed);
  return {
    v: PROTOCOL_VERSION,
    suite: SUITE,
    conversation_id: conversationId,
    epoch,
    message_id: mid,
    sender_id: signer.userId,
    sender_key_version: signer.keyVersion,
    nonce: b64encode(iv),
    ciphertext: b64encode(ciphertext),
    signature: b64encode(signature),
  };
}

/**
 * Verify and decrypt an envelope; return its content object. `senderPublicKeys` must be
 * the keys of the envelope's `sender_id`/`sender_key_version` from the key directory.
 * Members other than the envelope's (`seq`, `server_time`, `files`) are ignored.
 * @param {object} envelope
 * @param {Uint8Array} epochKey 32 bytes
 * @param {{userId: string, keyVersion: number, ecdsaPublic: Uint8Array}} senderPublicKeys
 * @returns {Promise<object>}
 */
export async function decryptEnvelope(envelope, epochKey, senderPublicKeys) {
  const key = requireBytes(epochKey, EPOCH_KEY_BYTES, "epoch_key");
  const conversationId = fieldStr(envelope, "conversation_id");
  const epoch = fieldInt(envelope, "epoch");
  const messageId = fieldStr(envelope, "message_id");
  const senderId = fieldStr(envelope, "sender_id");
  const senderKeyVersion = fieldInt(envelope, "sender_key_version");
  const iv = fieldB64(envelope, "nonce", { length: NONCE_BYTES });
  const ciphertext = fieldB64(envelope, "ciphertext", { minLength: GCM_TAG_BYTES });
  const signature = fieldB64(envelope, "signature", { length: P256_SIGNATURE_BYTES });
  const aad = messageAad(conversationId, epoch, messageId, senderId, senderKeyVersion);
  await verify(senderPublicKeys.ecdsaPublic, signature, envelopeSignedData(aad, iv, ciphertext));
  // The signature proves who signed; these checks make sure it is who the envelope claims.
  if (senderId !== senderPublicKeys.userId || senderKeyVersion !== senderPublicKeys.keyVersion) {
    throw new CryptoError("envelope sender does not match the signing key");
  }
  if (fieldInt(envelope, "v") !== PROTOCOL_VERSION || envelope.suite !== SUITE) {
    throw new CryptoError("unsupported envelope version");
  }
  return parseJsonObject(await aesDecrypt(key, iv, ciphertext, aad));
}

// --------------------------------------------------------------------------- safety numbers

/**
 * One party's 30 digits: libsignal's NumericFingerprintGenerator, version 0 (section 9).
 * `hash = 0x0000 || identity || UTF-8(stableId)`, then `iterations` rounds of
 * `hash = SHA-512(hash || identity)`; six 5-byte chunks, each mod 100000, 5 digits each.
 * @param {Uint8Array} identity
 * @param {string} stableId
 * @param {number} [iterations]
 * @returns {Promise<string>}
 */
export async function fingerprintDigits(identity, stableId, iterations = SAFETY_ITERATIONS) {
  if (!Number.isSafeInteger(iterations) || iterations < 1) {
    throw new RangeError("iterations must be positive");
  }
  let digest = concat(new Uint8Array(2), identity, utf8(stableId));
  const round = new Uint8Array(64 + identity.length);
  round.set(identity, 64);
  for (let i = 0; i < iterations; i += 1) {
    const input = i === 0 ? concat(digest, identity) : round;
    digest = new Uint8Array(await subtle().digest("SHA-512", input));
    round.set(digest, 0);
  }
  let out = "";
  for (let i = 0; i < 6; i += 1) {
    let chunk = 0;
    for (let j = 0; j < 5; j += 1) chunk = chunk * 256 + digest[5 * i + j];
    out += String(chunk % 100000).padStart(5, "0");
  }
  return out;
}

/**
 * The 60-digit safety number of two users' current keys: both parties' digits, the smaller
 * first, so both sides see the same (the argument order is irrelevant).
 * @param {{userId: string, ecdhPublic: Uint8Array, ecdsaPublic: Uint8Array}} publicKeysA
 * @param {{userId: string, ecdhPublic: Uint8Array, ecdsaPublic: Uint8Array}} publicKeysB
 * @returns {Promise<string>}
 */
export async function safetyNumber(publicKeysA, publicKeysB) {
  const [a, b] = await Promise.all([
    fingerprintDigits(identityBytes(publicKeysA), publicKeysA.userId),
    fingerprintDigits(identityBytes(publicKeysB), publicKeysB.userId),
  ]);
  return a <= b ? a + b : b + a;
}

/**
 * Show 60 digits as 12 groups of 5 separated by spaces; RangeError for anything else.
 * @param {string} digits
 * @returns {string}
 */
export function formatSafetyNumber(digits) {
  if (typeof digits !== "string" || !/^[0-9]{60}$/.test(digits)) {
    throw new RangeError("a safety number is 60 digits");
  }
  return digits.match(/[0-9]{5}/g).join(" ");
}
