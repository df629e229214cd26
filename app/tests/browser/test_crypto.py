"""docs/protocol-vectors.json reproduced by the browser modules (encoding.js, crypto.js,
files.js, sha256.js) in Chromium, plus their handling of hostile input.

Bytes cross the Python/browser boundary as hex or base64 strings."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from securechat.client.crypto import verify
from securechat.client.encoding import b64decode as py_b64decode
from securechat.client.encoding import lp as py_lp
from securechat.client.files import chunk_aad
from securechat.client.vectors import file_plaintext
from tests.browser.conftest import run_module

if TYPE_CHECKING:
    from playwright.sync_api import Page

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[3] / "docs" / "protocol-vectors.json").read_text()
)
USERS = VECTORS["users"]
ALICE = USERS["alice"]
BOB = USERS["bob"]

Js = Callable[..., Any]

# Signers and public keys built in the page from the vectors' PKCS #8 keys; prepended to
# test bodies that need them. `arg.users` must be VECTORS["users"].
SETUP = """
  const users = {};
  for (const [name, u] of Object.entries(arg.users)) {
    const identity = {
      ecdh: await c.importPrivatePkcs8("ecdh", enc.b64decode(u.ecdh_private_pkcs8_b64)),
      ecdsa: await c.importPrivatePkcs8("ecdsa", enc.b64decode(u.ecdsa_private_pkcs8_b64)),
    };
    users[name] = {
      signer: {userId: u.user_id, keyVersion: u.key_version, identity},
      pub: c.publicKeysFromJson(u.user_id, u.key_version, u.keys),
    };
  }
"""

# Runs a promise-returning body and reports how it failed: "ok" or "<ErrorName>: message".
OUTCOME = """
  const outcome = async (f) => {
    try { await f(); return "ok"; } catch (e) { return `${e.name}: ${e.message}`; }
  };
"""


def ephemeral_pkcs8() -> str:
    """The epoch_wrap vector's ephemeral key as PKCS #8 (the vector gives the scalar)."""
    scalar = int(VECTORS["epoch_wrap"]["ephemeral_private_scalar_hex"], 16)
    key = ec.derive_private_key(scalar, ec.SECP256R1())
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode()


# --------------------------------------------------------------------------- derivation


@pytest.mark.parametrize("section", ["derivation", "derivation_nfc"])
def test_derivation_vectors(js: Js, section: str) -> None:
    vector = VECTORS[section]
    out = js(
        """
        const v = arg;
        const salt = enc.fromHex(v.salt_hex);
        const keys = await c.deriveKeys(v.password, salt, v.iterations);
        const nfc = enc.utf8(v.password.normalize("NFC"));
        const base = await crypto.subtle.importKey("raw", nfc, "PBKDF2", false, ["deriveBits"]);
        const master = await crypto.subtle.deriveBits(
          {name: "PBKDF2", hash: "SHA-256", salt, iterations: v.iterations}, base, 256);
        return {
          nfc: enc.toHex(nfc),
          master: enc.toHex(new Uint8Array(master)),
          auth: enc.toHex(keys.authKey),
          authB64: enc.b64encode(keys.authKey),
          wrap: enc.toHex(keys.wrapKey),
          names: Object.keys(keys).sort(),
        };
        """,
        vector,
    )
    assert out == {
        "nfc": vector["password_nfc_utf8_hex"],
        "master": vector["master_key_hex"],
        "auth": vector["auth_key_hex"],
        "authB64": vector["auth_key_b64"],
        "wrap": vector["wrap_key_hex"],
        "names": ["authKey", "wrapKey"],
    }
    if section == "derivation_nfc":
        # The password is given decomposed: NFC changes it, and the keys follow NFC.
        assert vector["password_nfc_utf8_hex"] != vector["password"].encode().hex()


def test_derivation_refuses_weak_parameters(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const salt = new Uint8Array(16);
        return {
          few: await outcome(() => c.deriveKeys("pw", salt, 599999)),
          zero: await outcome(() => c.deriveKeys("pw", salt, 0, {minIterations: 0})),
          float: await outcome(() => c.deriveKeys("pw", salt, 600000.5)),
          bool: await outcome(() => c.deriveKeys("pw", salt, true)),
          string: await outcome(() => c.deriveKeys("pw", salt, "600000")),
          salt: await outcome(() => c.deriveKeys("pw", new Uint8Array(15), 600000)),
          saltType: await outcome(() => c.deriveKeys("pw", [0, 1, 2], 600000)),
          password: await outcome(() => c.deriveKeys(null, salt, 600000)),
          surrogate: await outcome(() => c.deriveKeys("a\\ud800", salt, 600000)),
          lowered: await outcome(() => c.deriveKeys("pw", salt, 1000, {minIterations: 1000})),
        };
        """
    )
    assert out["few"] == "CryptoError: refusing 599999 KDF iterations (minimum 600000)"
    assert out["zero"].startswith("CryptoError: refusing 0")
    for name in ("float", "bool", "string"):
        assert out[name] == "CryptoError: iterations must be an integer"
    assert out["salt"] == out["saltType"] == "CryptoError: salt must be at least 16 bytes"
    assert out["password"] == "CryptoError: password must be a string"
    assert out["surrogate"].startswith("CryptoError")
    assert out["lowered"] == "ok"


# --------------------------------------------------------------------------- encodings


def test_aad_vectors(js: Js) -> None:
    aad = VECTORS["aad"]
    out = js(
        """
        const a = arg;
        return {
          keyBlob: enc.toHex(c.keyBlobAad(a.key_blob.user_id, a.key_blob.key_version)),
          epochKey: enc.toHex(c.epochWrapAad(a.epoch_key.conversation_id, a.epoch_key.epoch, {
            wrapperId: a.epoch_key.wrapper_id,
            wrapperKeyVersion: a.epoch_key.wrapper_key_version,
            recipientId: a.epoch_key.recipient_id,
            recipientKeyVersion: a.epoch_key.recipient_key_version,
          })),
          message: enc.toHex(c.messageAad(a.message.conversation_id, a.message.epoch,
            a.message.message_id, a.message.sender_id, a.message.sender_key_version)),
          chunks: [files.chunkAad(0, false), files.chunkAad(1, true)].map(enc.toHex),
        };
        """,
        aad,
    )
    assert out == {
        "keyBlob": aad["key_blob"]["hex"],
        "epochKey": aad["epoch_key"]["hex"],
        "message": aad["message"]["hex"],
        "chunks": VECTORS["file"]["aad_hex"],
    }


def test_lp_encoding(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const ok = {
          seven: enc.toHex(enc.lp("7")),
          int: enc.toHex(enc.lp(7)),
          zero: enc.toHex(enc.lp(0)),
          big: enc.toHex(enc.lp(Number.MAX_SAFE_INTEGER)),
          bigint: enc.toHex(enc.lp(12345678901234567890n)),
          empty: enc.toHex(enc.lp()),
          emptyParts: enc.toHex(enc.lp("", new Uint8Array(0))),
          unicode: enc.toHex(enc.lp("Ünïcödé 👋")),
          bytes: enc.toHex(enc.lp(new Uint8Array([0, 255, 7]), "x", 42)),
        };
        const bad = {};
        for (const [name, value] of Object.entries({
          negative: -1, float: 1.5, nan: NaN, unsafe: 2 ** 53, bool: true, nil: null,
          list: [1], buffer: new ArrayBuffer(2), surrogate: "\\ud800", negbig: -1n,
        })) bad[name] = await outcome(() => enc.lp(value));
        return {ok, bad};
        """
    )
    assert out["ok"] == {
        "seven": py_lp("7").hex(),
        "int": py_lp(7).hex(),
        "zero": py_lp(0).hex(),
        "big": py_lp(2**53 - 1).hex(),
        "bigint": py_lp(12345678901234567890).hex(),
        "empty": "",
        "emptyParts": "0000000000000000",
        "unicode": py_lp("Ünïcödé 👋").hex(),
        "bytes": py_lp(b"\x00\xff\x07", "x", 42).hex(),
    }
    assert out["ok"]["int"] == "0000000137"
    for name in ("negative", "negbig", "surrogate"):
        assert out["bad"][name].startswith("RangeError"), name
    for name in ("float", "nan", "unsafe", "bool", "nil", "list", "buffer"):
        assert out["bad"][name].startswith("TypeError"), name


B64_HOSTILE = [
    "A",
    "AA",
    "AAA",
    "AA=",
    "AA==A",
    "AB==",  # non-canonical: unused bits set
    "AAB=",
    "AA==AA==",  # padding in the middle
    "=AAA",
    "A===",
    "====",
    "AA-_",  # URL-safe alphabet
    "AA_A",
    "AAAA ",
    " AAAA",
    "AA\nAA",
    "AA\tA",
    "AAAA\u00e9AAA",
    "AAA\u0000",
    "QUJD\u200b",
    "QUJDRA",  # missing padding
    "QUJDRA=",
    "QUJDRA===",
]


def test_b64decode_refuses_hostile_input(js: Js) -> None:
    for text in B64_HOSTILE:
        with pytest.raises(ValueError):
            py_b64decode(text)
    out = js(
        OUTCOME
        + """
        const results = {};
        for (const text of arg) {
          results[text] = await outcome(() => enc.b64decode(text, {field: "nonce"}));
        }
        results["<number>"] = await outcome(() => enc.b64decode(42, {field: "nonce"}));
        results["<null>"] = await outcome(() => enc.b64decode(null));
        results["<length>"] = await outcome(() => enc.b64decode("AAAA", {field: "key", length: 4}));
        return results;
        """,
        B64_HOSTILE,
    )
    for text in B64_HOSTILE:
        assert out[text].startswith("RangeError: nonce: "), (text, out[text])
    assert out["AB=="] == "RangeError: nonce: non-canonical base64"
    assert out["<number>"] == "TypeError: nonce: expected a base64 string"
    assert out["<null>"] == "TypeError: value: expected a base64 string"
    assert out["<length>"] == "RangeError: key: expected 4 bytes, got 3"


def test_modules_load_under_the_page_csp(page: Page) -> None:
    """Same-origin dynamic imports work under the server's script-src 'self' (the page
    fixture checks the policy and fails on any CSP violation)."""
    assert run_module(page, "/js/encoding.js", "return m.toHex(m.lp('7'));") == "0000000137"
    assert run_module(page, "/js/files.js", "return m.CHUNK_BYTES;") == 65536
    assert run_module(page, "/js/sha256.js", "return m.sha256Hex(new Uint8Array(0));") == (
        hashlib.sha256(b"").hexdigest()
    )


def test_b64_round_trips_like_python(js: Js) -> None:
    samples = [os.urandom(n) for n in (*range(10), 31, 32, 33, 64, 65, 1000)]
    encoded = [base64.b64encode(s).decode() for s in samples]
    out = js(
        """
        return arg.map((text) => {
          const bytes = enc.b64decode(text);
          return [enc.toHex(bytes), enc.b64encode(bytes)];
        });
        """,
        encoded,
    )
    assert out == [[s.hex(), e] for s, e in zip(samples, encoded, strict=True)]
    assert js("return enc.toHex(enc.b64decode('', {length: 0}));") == ""


def test_byte_helpers(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const a = new Uint8Array([1, 2, 3]);
        return {
          concat: enc.toHex(enc.concat(a, new Uint8Array(0), new Uint8Array([255]))),
          equal: [enc.equalBytes(a, new Uint8Array([1, 2, 3])),
                  enc.equalBytes(a, new Uint8Array([1, 2, 4])),
                  enc.equalBytes(a, new Uint8Array([1, 2]))],
          random: [enc.randomBytes(0).length, enc.randomBytes(100000).length,
                   enc.equalBytes(enc.randomBytes(16), enc.randomBytes(16))],
          utf8: enc.toHex(enc.utf8("é👋")),
          fromUtf8: enc.fromUtf8(enc.fromHex("c3a9f09f918b")),
          bom: enc.fromUtf8(enc.fromHex("efbbbf41")).length,
          invalid: await outcome(() => enc.fromUtf8(enc.fromHex("c3"))),
          surrogate: await outcome(() => enc.utf8("\\udc00")),
          hex: enc.toHex(enc.fromHex("00ABff")),
        };
        """
    )
    assert out == {
        "concat": "010203ff",
        "equal": [True, False, False],
        "random": [0, 100000, False],
        "utf8": "c3a9f09f918b",
        "fromUtf8": "é👋",
        "bom": 2,
        "invalid": out["invalid"],
        "surrogate": "RangeError: string has unpaired surrogates",
        "hex": "00abff",
    }
    assert out["invalid"].startswith("TypeError")


# --------------------------------------------------------------------------- key blob


def test_key_blob_vector(js: Js) -> None:
    vector = VECTORS["key_blob"]
    out = js(
        SETUP
        + """
        const v = arg.vector;
        const alice = users.alice.signer;
        const wrapKey = enc.fromHex(v.wrap_key_hex);
        const plaintext = enc.fromUtf8(await c.keyBlobPlaintext(alice.identity));
        const sealed = await c.sealKeyBlobWith(wrapKey, v.user_id, v.key_version,
          alice.identity, {nonce: enc.fromHex(v.nonce_hex)});
        const opened = await c.openKeyBlob(wrapKey, v.user_id, v.key_version, v.blob);
        const pub = await c.publicKeysOf(opened, v.user_id, v.key_version);
        const random = await c.sealKeyBlob(wrapKey, v.user_id, v.key_version, alice.identity);
        return {
          plaintext, sealed, pub: c.publicKeysToJson(pub), userId: pub.userId,
          keyVersion: pub.keyVersion, randomNonce: random.nonce !== sealed.nonce,
          extractable: [opened.ecdh.privateKey.extractable, opened.ecdsa.privateKey.extractable],
        };
        """,
        {"users": USERS, "vector": vector},
    )
    # Chromium's PKCS #8 encoding of these keys is byte-identical to the reference client's,
    # so even the sealed blob is the vector's (section 4.2 allows it to differ).
    assert out["plaintext"] == vector["plaintext"]
    assert out["sealed"] == vector["blob"]
    assert out["pub"] == ALICE["keys"]
    assert (out["userId"], out["keyVersion"]) == (vector["user_id"], vector["key_version"])
    assert out["randomNonce"]
    assert out["extractable"] == [True, True]


def test_key_blob_refuses_wrong_context(js: Js) -> None:
    vector = VECTORS["key_blob"]
    out = js(
        OUTCOME
        + """
        const v = arg;
        const key = enc.fromHex(v.wrap_key_hex);
        const wrong = new Uint8Array(32);
        const bob = "a966cb41-6e74-437c-bb6a-e21eb88c7089";
        return {
          key: await outcome(() => c.openKeyBlob(wrong, v.user_id, 1, v.blob)),
          user: await outcome(() => c.openKeyBlob(key, bob, 1, v.blob)),
          version: await outcome(() => c.openKeyBlob(key, v.user_id, 2, v.blob)),
          nonce: await outcome(() => c.openKeyBlob(key, v.user_id, 1, {...v.blob, nonce: "AAAA"})),
          short: await outcome(() =>
            c.openKeyBlob(key, v.user_id, 1, {...v.blob, ciphertext: "AAAA"})),
          missing: await outcome(() => c.openKeyBlob(key, v.user_id, 1, {nonce: v.blob.nonce})),
          keyType: await outcome(() => c.openKeyBlob("k", v.user_id, 1, v.blob)),
        };
        """,
        vector,
    )
    assert out == {
        "key": "CryptoError: decryption failed",
        "user": "CryptoError: decryption failed",
        "version": "CryptoError: decryption failed",
        "nonce": "CryptoError: malformed nonce",
        "short": "CryptoError: malformed ciphertext",
        "missing": "CryptoError: malformed ciphertext",
        "keyType": "CryptoError: wrap_key must be 32 bytes",
    }


def test_key_blob_content_rules(js: Js) -> None:
    """Blobs that decrypt but do not hold exactly the two private keys are refused."""
    ecdh, ecdsa = ALICE["ecdh_private_pkcs8_b64"], ALICE["ecdsa_private_pkcs8_b64"]
    plaintexts = {
        "extra": json.dumps({"ecdh_private": ecdh, "ecdsa_private": ecdsa, "x": 1}),
        "one": json.dumps({"ecdh_private": ecdh}),
        "array": json.dumps([ecdh, ecdsa]),
        "nan": '{"ecdh_private": NaN, "ecdsa_private": 1}',
        "garbage_key": json.dumps({"ecdh_private": "AAAA", "ecdsa_private": ecdsa}),
        "not_b64": json.dumps({"ecdh_private": ecdh + " ", "ecdsa_private": ecdsa}),
        "bom": "\ufeff" + json.dumps({"ecdh_private": ecdh, "ecdsa_private": ecdsa}),
        # Readers accept any member order and whitespace.
        "spaced": json.dumps({"ecdsa_private": ecdsa, "ecdh_private": ecdh}, indent=2),
    }
    out = js(
        OUTCOME
        + """
        const userId = "396434e8-b6bc-4167-8568-73288b662063";
        const key = enc.randomBytes(32);
        const aesKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
        const results = {};
        for (const [name, text] of Object.entries(arg)) {
          const nonce = enc.randomBytes(12);
          const ct = await crypto.subtle.encrypt(
            {name: "AES-GCM", iv: nonce, additionalData: c.keyBlobAad(userId, 1)},
            aesKey, enc.utf8(text));
          const blob = {nonce: enc.b64encode(nonce), ciphertext: enc.b64encode(new Uint8Array(ct))};
          results[name] = await outcome(() => c.openKeyBlob(key, userId, 1, blob));
        }
        return results;
        """,
        plaintexts,
    )
    assert out == {
        "extra": "CryptoError: malformed key blob",
        "one": "CryptoError: malformed key blob",
        "array": "CryptoError: malformed plaintext",
        "nan": "CryptoError: malformed plaintext",
        "garbage_key": "CryptoError: malformed private key",
        "not_b64": "CryptoError: malformed ecdh_private",
        "bom": "CryptoError: malformed plaintext",
        "spaced": "ok",
    }


# --------------------------------------------------------------------------- epoch wrap


def test_epoch_wrap_vector(js: Js) -> None:
    vector = VECTORS["epoch_wrap"]
    out = js(
        SETUP
        + """
        const v = arg.vector;
        const alice = users.alice, bob = users.bob;
        const eph = await c.importPrivatePkcs8("ecdh", enc.b64decode(arg.ephemeral));
        const ephPublic = new Uint8Array(await crypto.subtle.exportKey("raw", eph.publicKey));
        const peer = await crypto.subtle.importKey("raw", bob.pub.ecdhPublic,
          {name: "ECDH", namedCurve: "P-256"}, false, []);
        const shared = new Uint8Array(await crypto.subtle.deriveBits(
          {name: "ECDH", public: peer}, eph.privateKey, 256));
        const kek = await c.deriveWrapKek(shared, ephPublic, bob.pub.ecdhPublic);
        const wrap = await c.wrapEpochKeyWith(enc.fromHex(v.epoch_key_hex), v.conversation_id,
          v.epoch, alice.signer, bob.pub,
          {ephemeralPkcs8: enc.b64decode(arg.ephemeral), nonce: enc.fromHex(v.nonce_hex)});
        const aad = c.epochWrapAad(v.conversation_id, v.epoch, {
          wrapperId: v.wrapper_id, wrapperKeyVersion: v.wrapper_key_version,
          recipientId: bob.pub.userId, recipientKeyVersion: bob.pub.keyVersion});
        const signed = c.wrapSignedData(aad, ephPublic, enc.fromHex(v.nonce_hex),
          enc.fromHex(v.ciphertext_hex));
        // The stored (RFC 6979) signature verifies, and so does the browser's own.
        await c.verify(alice.pub.ecdsaPublic, enc.b64decode(v.wrap.signature), signed);
        const fromVector = await c.unwrapEpochKey(v.wrap, v.conversation_id, v.epoch,
          alice.pub, bob.signer);
        const fromOwn = await c.unwrapEpochKey(wrap, v.conversation_id, v.epoch,
          alice.pub, bob.signer);
        return {
          ephPublic: enc.toHex(ephPublic), shared: enc.toHex(shared), kek: enc.toHex(kek),
          aad: enc.toHex(aad), signed: enc.toHex(signed), wrap,
          fromVector: enc.toHex(fromVector), fromOwn: enc.toHex(fromOwn),
        };
        """,
        {"users": USERS, "vector": vector, "ephemeral": ephemeral_pkcs8()},
    )
    assert out["ephPublic"] == vector["ephemeral_public_hex"]
    assert out["shared"] == vector["shared_hex"]
    assert out["kek"] == vector["kek_hex"]
    assert out["aad"] == vector["aad_hex"]
    assert out["signed"] == vector["signed_data_hex"]
    wrap = out["wrap"]
    signature = wrap.pop("signature")
    expected = dict(vector["wrap"])
    expected.pop("signature")
    assert wrap == expected  # every deterministic member
    # Web Crypto signs with random nonces: any valid signature is acceptable.
    verify(
        py_b64decode(ALICE["keys"]["ecdsa_public"]),
        py_b64decode(signature),
        bytes.fromhex(vector["signed_data_hex"]),
    )
    assert out["fromVector"] == out["fromOwn"] == vector["epoch_key_hex"]


WRAP_TAMPERING = {
    "recipient_id": "6c31819a-003a-4ead-a995-78abf65862fe",
    "recipient_key_version": 2,
    "ephemeral_public": "flip",
    "nonce": "flip",
    "ciphertext": "flip",
    "signature": "flip",
}


def test_epoch_wrap_tampering(js: Js) -> None:
    vector = VECTORS["epoch_wrap"]
    out = js(
        SETUP
        + OUTCOME
        + """
        const v = arg.vector;
        const alice = users.alice, bob = users.bob;
        const flip = (text) => {
          const bytes = enc.b64decode(text);
          bytes[bytes.length - 1] ^= 1;
          return enc.b64encode(bytes);
        };
        const unwrap = (wrap, opts = {}) => c.unwrapEpochKey(wrap, opts.cid ?? v.conversation_id,
          opts.epoch ?? v.epoch, opts.wrapper ?? alice.pub, opts.me ?? bob.signer);
        const results = {};
        for (const [name, value] of Object.entries(arg.tampering)) {
          const wrap = {...v.wrap, [name]: value === "flip" ? flip(v.wrap[name]) : value};
          results[name] = await outcome(() => unwrap(wrap));
        }
        results.conversation = await outcome(() =>
          unwrap(v.wrap, {cid: "6c31819a-003a-4ead-a995-78abf65862fe"}));
        results.epoch = await outcome(() => unwrap(v.wrap, {epoch: 4}));
        results.wrapper = await outcome(() => unwrap(v.wrap, {wrapper: bob.pub}));
        results.wrapperVersion = await outcome(() =>
          unwrap(v.wrap, {wrapper: {...alice.pub, keyVersion: 2}}));
        // Validly signed, but for bob: alice cannot use it.
        results.notMine = await outcome(() => unwrap(v.wrap, {me: alice.signer}));
        results.missing = await outcome(() => unwrap({...v.wrap, nonce: undefined}));
        results.stringVersion = await outcome(() =>
          unwrap({...v.wrap, recipient_key_version: "1"}));
        results.ok = await outcome(() => unwrap(v.wrap));
        return results;
        """,
        {"users": USERS, "vector": vector, "tampering": WRAP_TAMPERING},
    )
    assert out.pop("ok") == "ok"
    assert out.pop("notMine") == "CryptoError: wrap is addressed to someone else"
    assert out.pop("missing") == "CryptoError: malformed nonce"
    assert out.pop("stringVersion") == "CryptoError: malformed recipient_key_version"
    # The ephemeral key's last byte flipped makes it an invalid point or another key.
    assert out.pop("ephemeral_public") in (
        "CryptoError: invalid signature",
        "CryptoError: malformed public key",
    )
    for name, result in out.items():
        assert result == "CryptoError: invalid signature", name


# --------------------------------------------------------------------------- envelope


def test_envelope_vector(js: Js) -> None:
    vector = VECTORS["envelope"]
    out = js(
        SETUP
        + """
        const v = arg.vector;
        const e = v.envelope;
        const alice = users.alice;
        const key = enc.fromHex(v.epoch_key_hex);
        const envelope = await c.encryptEnvelopeWith(v.content, e.conversation_id, e.epoch, key,
          alice.signer, {messageId: e.message_id, nonce: enc.fromHex(v.nonce_hex)});
        const aad = c.messageAad(e.conversation_id, e.epoch, e.message_id, e.sender_id,
          e.sender_key_version);
        const signed = c.envelopeSignedData(aad, enc.b64decode(e.nonce),
          enc.b64decode(e.ciphertext));
        await c.verify(alice.pub.ecdsaPublic, enc.b64decode(e.signature), signed);
        const decrypted = await c.decryptEnvelope(e, key, alice.pub);
        const own = await c.decryptEnvelope(envelope, key, alice.pub);
        // A fresh envelope: random nonce and message id.
        const fresh = await c.encryptEnvelope(v.content, e.conversation_id, e.epoch, key,
          alice.signer);
        // Extra members of a stored message are ignored.
        const stored = await c.decryptEnvelope(
          {...e, seq: 7, server_time: "2026-11-25T16:48:31.123Z", files: []}, key, alice.pub);
        return {
          plaintext: enc.toHex(c.encodeJson(v.content)), aad: enc.toHex(aad),
          signed: enc.toHex(signed), envelope, decrypted, own, stored,
          freshId: fresh.message_id, freshNonce: fresh.nonce,
          freshContent: await c.decryptEnvelope(fresh, key, alice.pub),
        };
        """,
        {"users": USERS, "vector": vector},
    )
    assert out["plaintext"] == vector["plaintext_hex"]
    assert out["aad"] == vector["aad_hex"]
    assert out["signed"] == vector["signed_data_hex"]
    envelope = out["envelope"]
    signature = envelope.pop("signature")
    expected = dict(vector["envelope"])
    expected.pop("signature")
    assert envelope == expected
    own_signed = py_lp(
        bytes.fromhex(vector["aad_hex"]),
        bytes.fromhex(vector["nonce_hex"]),
        py_b64decode(vector["envelope"]["ciphertext"]),
    )
    verify(py_b64decode(ALICE["keys"]["ecdsa_public"]), py_b64decode(signature), own_signed)
    assert out["decrypted"] == out["own"] == out["stored"] == vector["content"]
    assert out["freshContent"] == vector["content"]
    assert out["freshId"] != vector["envelope"]["message_id"]
    assert len(py_b64decode(out["freshNonce"])) == 12


ENVELOPE_TAMPERING: dict[str, Any] = {
    "conversation_id": "6c31819a-003a-4ead-a995-78abf65862fe",
    "epoch": 4,
    "message_id": "5dbbe420-217b-42de-a946-989b588d55dc",
    "sender_id": "a966cb41-6e74-437c-bb6a-e21eb88c7089",
    "sender_key_version": 2,
    "nonce": "flip",
    "ciphertext": "flip",
    "signature": "flip",
    "v": 2,
    "suite": "p384-v1",
}


def test_envelope_tampering(js: Js) -> None:
    """Every member of the envelope matters: changing any one makes decryption throw."""
    vector = VECTORS["envelope"]
    out = js(
        SETUP
        + OUTCOME
        + """
        const v = arg.vector;
        const e = v.envelope;
        const key = enc.fromHex(v.epoch_key_hex);
        const alice = users.alice, bob = users.bob;
        const flip = (text) => {
          const bytes = enc.b64decode(text);
          bytes[0] ^= 0x80;
          return enc.b64encode(bytes);
        };
        const results = {};
        for (const [name, value] of Object.entries(arg.tampering)) {
          const envelope = {...e, [name]: value === "flip" ? flip(e[name]) : value};
          results[name] = await outcome(() => c.decryptEnvelope(envelope, key, alice.pub));
        }
        const missing = {};
        for (const name of Object.keys(e)) {
          const envelope = {...e};
          delete envelope[name];
          missing[name] = await outcome(() => c.decryptEnvelope(envelope, key, alice.pub));
        }
        const wrongKey = new Uint8Array(key);
        wrongKey[0] ^= 1;
        // Alice's envelope re-signed by bob under his own id still needs the epoch key...
        const forged = await c.encryptEnvelope({type: "text", text: "hi"}, e.conversation_id,
          e.epoch, key, bob.signer);
        return {
          results, missing,
          wrongKey: await outcome(() => c.decryptEnvelope(e, wrongKey, alice.pub)),
          otherSender: await outcome(() => c.decryptEnvelope(e, key, bob.pub)),
          claimsAlice: await outcome(() =>
            c.decryptEnvelope({...forged, sender_id: e.sender_id}, key, alice.pub)),
          labelledWrong: await outcome(() =>
            c.decryptEnvelope(forged, key, {...bob.pub, userId: e.sender_id})),
          shortKey: await outcome(() => c.decryptEnvelope(e, key.subarray(1), alice.pub)),
          boolEpoch: await outcome(() => c.decryptEnvelope({...e, epoch: true}, key, alice.pub)),
          floatEpoch: await outcome(() => c.decryptEnvelope({...e, epoch: 3.5}, key, alice.pub)),
          notObject: await outcome(() => c.decryptEnvelope(null, key, alice.pub)),
        };
        """,
        {"users": USERS, "vector": vector, "tampering": ENVELOPE_TAMPERING},
    )
    results = out["results"]
    assert results.pop("v") == "CryptoError: unsupported envelope version"
    assert results.pop("suite") == "CryptoError: unsupported envelope version"
    for name, result in results.items():
        assert result == "CryptoError: invalid signature", name
    for name, result in out["missing"].items():
        assert result.startswith("CryptoError: "), name
    assert out["missing"]["suite"] == "CryptoError: unsupported envelope version"
    assert out["missing"]["nonce"] == "CryptoError: malformed nonce"
    assert out["wrongKey"] == "CryptoError: decryption failed"
    assert out["otherSender"] == "CryptoError: invalid signature"
    assert out["claimsAlice"] == "CryptoError: invalid signature"
    assert out["labelledWrong"] == "CryptoError: envelope sender does not match the signing key"
    assert out["shortKey"] == "CryptoError: epoch_key must be 32 bytes"
    assert out["boolEpoch"] == out["floatEpoch"] == "CryptoError: malformed epoch"
    assert out["notObject"] == "CryptoError: malformed conversation_id"


def test_content_json_rules(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const parse = (text) => outcome(() => c.parseJsonObject(enc.utf8(text)));
        return {
          compact: enc.fromUtf8(c.encodeJson(
            {type: "text", text: "é \\n\\u0001 \\u2028 \\"", n: [1, null, true]})),
          nan: await outcome(() => c.encodeJson({type: "x", n: NaN})),
          inf: await outcome(() => c.encodeJson({type: "x", n: [Infinity]})),
          undef: await outcome(() => c.encodeJson({type: "x", n: undefined})),
          fn: await outcome(() => c.encodeJson({type: "x", n: () => 1})),
          big: await outcome(() => c.encodeJson({type: "x", n: 1n})),
          surrogate: await outcome(() => c.encodeJson({type: "x", text: "\\ud83d"})),
          surrogateKey: await outcome(() => c.encodeJson({["\\udc00"]: 1})),
          array: await outcome(() => c.encodeJson([1])),
          parsedArray: await parse("[1]"),
          parsedString: await parse('"x"'),
          parsedNull: await parse("null"),
          parsedNaN: await parse('{"a": NaN}'),
          parsedInfinity: await parse('{"a": -Infinity}'),
          parsedTrailing: await parse('{"a": 1},'),
          parsedBom: await parse('\\ufeff{"a": 1}'),
          parsedInvalid: await outcome(() => c.parseJsonObject(enc.fromHex("7b22613a2022ff227d"))),
          parsedOk: c.parseJsonObject(enc.utf8(' {"a" :\\t[1, 2.5e3, "\\\\u00e9"]}\\n')),
        };
        """
    )
    expected = json.dumps(
        {"type": "text", "text": 'é \n\u0001 \u2028 "', "n": [1, None, True]},
        separators=(",", ":"),
        ensure_ascii=False,
    )
    assert out.pop("compact") == expected
    assert out.pop("parsedOk") == {"a": [1, 2500, "é"]}
    for name, result in out.items():
        assert result.startswith("CryptoError: "), (name, result)


# --------------------------------------------------------------------------- public keys


def test_public_keys_from_json(js: Js) -> None:
    keys = ALICE["keys"]
    point = bytearray(py_b64decode(keys["ecdh_public"]))
    off_curve = bytearray(point)
    off_curve[-1] ^= 1
    compressed = bytes([2 + (point[-1] & 1)]) + bytes(point[1:33])
    cases: dict[str, Any] = {
        "off_curve": {**keys, "ecdh_public": base64.b64encode(off_curve).decode()},
        "compressed": {**keys, "ecdsa_public": base64.b64encode(compressed).decode()},
        "hybrid": {**keys, "ecdh_public": base64.b64encode(b"\x06" + point[1:]).decode()},
        "infinity_ish": {**keys, "ecdh_public": base64.b64encode(b"\x04" + bytes(64)).decode()},
        "x_too_big": {
            **keys,
            "ecdh_public": base64.b64encode(b"\x04" + b"\xff" * 32 + bytes(point[33:])).decode(),
        },
        "suite": {**keys, "suite": "p384-v1"},
        "no_suite": {k: v for k, v in keys.items() if k != "suite"},
        "missing": {k: v for k, v in keys.items() if k != "ecdsa_public"},
        "other_user": {**keys, "user_id": BOB["user_id"]},
        "other_version": {**keys, "key_version": 2},
        "not_b64": {**keys, "ecdh_public": keys["ecdh_public"].rstrip("=")},
    }
    out = js(
        OUTCOME
        + """
        const results = {};
        for (const [name, keys] of Object.entries(arg.cases)) {
          results[name] = await outcome(() => c.publicKeysFromJson(arg.userId, 1, keys));
        }
        results.badUser = await outcome(() => c.publicKeysFromJson("ALICE", 1, arg.keys));
        results.badVersion = await outcome(() => c.publicKeysFromJson(arg.userId, 0, arg.keys));
        results.notObject = await outcome(() => c.publicKeysFromJson(arg.userId, 1, null));
        // Synchronous, and the directory's answer (with user_id and key_version) is fine.
        const pk = c.publicKeysFromJson(arg.userId, 1, {...arg.keys, user_id: arg.userId,
          key_version: 1});
        return {results, sync: !(pk instanceof Promise), json: c.publicKeysToJson(pk),
                identity: enc.toHex(c.identityBytes(pk))};
        """,
        {"cases": cases, "keys": keys, "userId": ALICE["user_id"]},
    )
    results = out["results"]
    assert results.pop("badUser") == "CryptoError: malformed user_id"
    assert results.pop("badVersion") == "CryptoError: malformed key_version"
    assert results.pop("notObject") == "CryptoError: unsupported suite"
    assert results.pop("suite") == results.pop("no_suite") == "CryptoError: unsupported suite"
    assert results.pop("other_user") == "CryptoError: keys belong to another user"
    assert results.pop("other_version") == "CryptoError: keys belong to another key version"
    assert results.pop("missing") == "CryptoError: malformed ecdsa_public"
    # 33 bytes, not 65: refused before any curve arithmetic.
    assert results.pop("compressed") == "CryptoError: malformed ecdsa_public"
    assert results.pop("not_b64") == "CryptoError: malformed ecdh_public"
    for name, result in results.items():
        assert result == "CryptoError: malformed public key", name
    assert out["sync"]
    assert out["json"] == keys
    assert out["identity"] == ALICE["identity_hex"]


def test_generated_identity(js: Js) -> None:
    out = js(
        """
        const id = await c.generateIdentity();
        const pk = await c.publicKeysOf(id, "396434e8-b6bc-4167-8568-73288b662063", 3);
        return {
          ecdh: [id.ecdh.privateKey.algorithm.name, id.ecdh.privateKey.extractable,
                 id.ecdh.privateKey.usages, id.ecdh.privateKey.algorithm.namedCurve],
          ecdsa: [id.ecdsa.privateKey.algorithm.name, id.ecdsa.privateKey.extractable,
                  id.ecdsa.privateKey.usages, id.ecdsa.privateKey.algorithm.namedCurve],
          lengths: [pk.ecdhPublic.length, pk.ecdsaPublic.length, pk.ecdhPublic[0]],
          differ: !enc.equalBytes(pk.ecdhPublic, pk.ecdsaPublic),
          version: pk.keyVersion,
          epochKey: c.newEpochKey().length,
        };
        """
    )
    assert out == {
        "ecdh": ["ECDH", True, ["deriveBits"], "P-256"],
        "ecdsa": ["ECDSA", True, ["sign"], "P-256"],
        "lengths": [65, 65, 4],
        "differ": True,
        "version": 3,
        "epochKey": 32,
    }


def test_pkcs8_without_public_key_loads(js: Js) -> None:
    """PKCS #8 differs between libraries (section 4.2): without the embedded public key too."""
    scalar = bytes.fromhex(ALICE["ecdsa_private_scalar_hex"])
    # PrivateKeyInfo{0, {id-ecPublicKey, prime256v1}, OCTET STRING ECPrivateKey{1, d}}.
    ec_private_key = bytes.fromhex("30250201010420") + scalar
    algorithm = bytes.fromhex("301306072a8648ce3d020106082a8648ce3d030107")
    body = bytes.fromhex("020100") + algorithm + b"\x04" + bytes([len(ec_private_key)])
    body += ec_private_key
    der = b"\x30" + bytes([len(body)]) + body
    # The reference client loads it as well.
    loaded = serialization.load_der_private_key(der, password=None)
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    out = js(
        """
        const pair = await c.importPrivatePkcs8("ecdsa", enc.fromHex(arg));
        const pub = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
        const sig = await c.sign(pair.privateKey, enc.utf8("x"));
        await c.verify(pub, sig, enc.utf8("x"));
        return enc.b64encode(pub);
        """,
        der.hex(),
    )
    assert out == ALICE["keys"]["ecdsa_public"]


def test_private_key_refusals(js: Js) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1()).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out = js(
        OUTCOME
        + """
        return {
          p384: await outcome(() => c.importPrivatePkcs8("ecdh", enc.fromHex(arg))),
          garbage: await outcome(() => c.importPrivatePkcs8("ecdsa", new Uint8Array(10))),
          kind: await outcome(() => c.importPrivatePkcs8("rsa", new Uint8Array(10))),
        };
        """,
        p384.hex(),
    )
    assert out == {
        "p384": "CryptoError: malformed private key",
        "garbage": "CryptoError: malformed private key",
        "kind": 'TypeError: kind must be "ecdh" or "ecdsa"',
    }


# --------------------------------------------------------------------------- safety numbers


def test_safety_number_vector(js: Js) -> None:
    vector = VECTORS["safety_number"]
    out = js(
        SETUP
        + """
        const {alice, bob} = users;
        return {
          ab: await c.safetyNumber(alice.pub, bob.pub),
          ba: await c.safetyNumber(bob.pub, alice.pub),
          alice: await c.fingerprintDigits(c.identityBytes(alice.pub), alice.pub.userId),
          bob: await c.fingerprintDigits(c.identityBytes(bob.pub), bob.pub.userId),
          formatted: c.formatSafetyNumber(await c.safetyNumber(alice.pub, bob.pub)),
        };
        """,
        {"users": USERS},
    )
    assert out == {
        "ab": vector["digits"],
        "ba": vector["digits"],
        "alice": ALICE["fingerprint_digits"],
        "bob": BOB["fingerprint_digits"],
        "formatted": vector["formatted"],
    }


def test_safety_number_libsignal_vector(js: Js) -> None:
    """Section 9: the algorithm is libsignal's; its published vector (other inputs)."""
    out = js(
        OUTCOME
        + """
        const a = await c.fingerprintDigits(
          enc.fromHex("0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868"),
          "+14152222222");
        const b = await c.fingerprintDigits(
          enc.fromHex("05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b"),
          "+14153333333");
        const bad = {};
        for (const [name, digits] of Object.entries({
          short: "1".repeat(59), long: "1".repeat(61), letters: "a".repeat(60),
          arabic: "\\u0661".repeat(60), spaced: " ".repeat(60), number: 1,
        })) bad[name] = await outcome(() => c.formatSafetyNumber(digits));
        return {number: a <= b ? a + b : b + a, bad,
                zero: await outcome(() => c.fingerprintDigits(new Uint8Array(1), "x", 0))};
        """
    )
    assert out["number"] == "300354477692869396892869876765458257569162576843440918079131"
    for name, result in out["bad"].items():
        assert result == "RangeError: a safety number is 60 digits", name
    assert out["zero"] == "RangeError: iterations must be positive"


# --------------------------------------------------------------------------- files


def test_file_vector(js: Js) -> None:
    vector = VECTORS["file"]
    plaintext = file_plaintext(
        bytes.fromhex(vector["plaintext_pattern_hex"]), vector["plaintext_size"]
    )
    assert hashlib.sha256(plaintext).hexdigest() == vector["plaintext_sha256_hex"]
    out = js(
        """
        const v = arg.vector;
        const plain = enc.b64decode(arg.plaintext);
        const progress = [];
        const result = await files.encryptFileWith(new Blob([plain]), {
          key: enc.fromHex(v.file_key_hex), nonces: v.nonces_hex.map(enc.fromHex),
          onProgress: (done, total) => progress.push([done, total]),
        });
        const blob = new Uint8Array(await result.body.arrayBuffer());
        const back = await files.decryptStream(result.body.stream(), result.key, v.blob_sha256_hex);
        const backBytes = new Uint8Array(await back.arrayBuffer());
        const content = files.fileContent({fileId: v.content.file_id, name: v.content.name,
          mime: v.content.mime, size: result.size, ciphertextSize: result.ciphertextSize,
          sha256: result.sha256, key: result.key, caption: v.content.text});
        const ref = files.parseFileContent(v.content);
        return {
          sha256: result.sha256, blobSha256: sha.sha256Hex(blob), size: result.size,
          ciphertextSize: result.ciphertextSize, blobSize: blob.length,
          bodyType: result.body instanceof Blob, keyHex: enc.toHex(result.key),
          head: enc.toHex(blob.subarray(0, 64)), tail: enc.toHex(blob.subarray(blob.length - 64)),
          back: enc.toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", backBytes))),
          backSize: backBytes.length, progress, content,
          ref: {...ref, key: enc.b64encode(ref.key)},
          encryptedSize: files.encryptedSize(v.plaintext_size),
        };
        """,
        {"vector": vector, "plaintext": base64.b64encode(plaintext).decode()},
    )
    assert out["sha256"] == out["blobSha256"] == vector["blob_sha256_hex"]
    assert out["size"] == out["backSize"] == vector["plaintext_size"]
    assert out["ciphertextSize"] == out["blobSize"] == out["encryptedSize"] == vector["blob_size"]
    assert out["bodyType"]
    assert out["keyHex"] == vector["file_key_hex"]
    assert out["head"] == vector["blob_head_hex"]
    assert out["tail"] == vector["blob_tail_hex"]
    assert out["back"] == vector["plaintext_sha256_hex"]
    assert out["progress"] == [[65536, 65546], [65546, 65546]]
    assert out["content"] == vector["content"]
    content = vector["content"]
    assert out["ref"] == {
        "fileId": content["file_id"],
        "name": content["name"],
        "mime": content["mime"],
        "size": content["size"],
        "ciphertextSize": content["ciphertext_size"],
        "sha256": content["sha256"],
        "key": content["key"],
        "chunkBytes": 65536,
        "text": content["text"],
    }


def test_file_records_and_sizes(js: Js) -> None:
    # 16 and 33 records: a whole Blob part of records and one more after two.
    sizes = [0, 1, 65535, 65536, 65537, 3 * 65536, 3 * 65536 + 5, 16 * 65536, 32 * 65536 + 7]
    out = js(
        """
        const results = [];
        for (const size of arg) {
          const plain = enc.randomBytes(size);
          const r = await files.encryptFile(new Blob([plain]));
          const blob = new Uint8Array(await r.body.arrayBuffer());
          const decrypted = await files.decryptStream(r.body, r.key, r.sha256);
          const back = new Uint8Array(await decrypted.arrayBuffer());
          results.push([size, r.size, r.ciphertextSize, blob.length, files.encryptedSize(size),
                        enc.equalBytes(back, plain), r.sha256 === sha.sha256Hex(blob)]);
        }
        return results;
        """,
        sizes,
    )
    for size, row in zip(sizes, out, strict=True):
        records = max(1, -(-size // 65536))
        expected_size = size + 28 * records
        assert row == [size, size, expected_size, expected_size, expected_size, True, True]
    assert chunk_aad(0, True) == bytes.fromhex(
        "0000001d736563757265636861742f703235362d76312f66696c652d6368756e6b00000001300000000131"
    )


def test_decrypt_stream_refuses_hostile_blobs(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const plain = enc.randomBytes(3 * 65536 + 100);
        const r = await files.encryptFile(new Blob([plain]));
        const blob = new Uint8Array(await r.body.arrayBuffer());
        const R = files.RECORD_BYTES;
        const rec = (i) => blob.subarray(i * R, Math.min(blob.length, (i + 1) * R));
        const stream = (bytes, size = 4096) => new ReadableStream({
          start(controller) {
            for (let i = 0; i < bytes.length; i += size) {
              controller.enqueue(bytes.slice(i, i + size));
            }
            controller.close();
          },
        });
        const open = (bytes, sha = null, key = r.key) =>
          outcome(() => files.decryptStream(stream(bytes), key, sha));
        const flipped = new Uint8Array(blob); flipped[R + 20] ^= 1;
        const wrongKey = new Uint8Array(r.key); wrongKey[0] ^= 1;
        // A re-encryption of a non-empty file that ends with an extra empty record.
        const key = r.key;
        const aes = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
        const seal = async (i, chunk, last) => {
          const nonce = enc.randomBytes(12);
          const ct = await crypto.subtle.encrypt(
            {name: "AES-GCM", iv: nonce, additionalData: files.chunkAad(i, last)}, aes, chunk);
          return enc.concat(nonce, new Uint8Array(ct));
        };
        const full = plain.subarray(0, 65536);
        const none = new Uint8Array(0);
        const nonCanonical = enc.concat(await seal(0, full, false), await seal(1, none, true));
        const splitLast = enc.concat(await seal(0, full, false), await seal(1, none, false));
        // Many piece sizes, including a piece per byte near record boundaries.
        const pieces = {};
        for (const size of [1, 7, 1000, R - 1, R, R + 1, blob.length]) {
          const back = await files.decryptStream(stream(blob, size), r.key, r.sha256);
          pieces[size] = enc.equalBytes(new Uint8Array(await back.arrayBuffer()), plain);
        }
        return {
          pieces,
          ok: await open(blob, r.sha256),
          noHash: await open(blob, null),
          empty: await open(new Uint8Array(0)),
          tiny: await open(blob.subarray(0, 27)),
          truncatedRecord: await open(blob.subarray(0, 2 * R)),
          truncatedMiddle: await open(blob.subarray(0, 2 * R + 50)),
          truncatedTail: await open(blob.subarray(0, blob.length - 1)),
          reordered: await open(enc.concat(rec(1), rec(0), rec(2), rec(3))),
          dropped: await open(enc.concat(rec(0), rec(2), rec(3))),
          duplicated: await open(enc.concat(rec(0), rec(0), rec(1), rec(2), rec(3))),
          appended: await open(enc.concat(blob, new Uint8Array([0]))),
          appendedRecord: await open(enc.concat(blob, rec(3))),
          flipped: await open(flipped),
          wrongKey: await open(blob, null, wrongKey),
          wrongHash: await open(blob, "0".repeat(64)),
          upperHash: await open(blob, r.sha256.toUpperCase()),
          badHash: await outcome(() => files.decryptStream(stream(blob), r.key, "abc")),
          badKey: await outcome(() => files.decryptStream(stream(blob), r.key.subarray(1), null)),
          nonCanonical: await outcome(() => files.decryptStream(stream(nonCanonical), key, null)),
          splitLast: await outcome(() => files.decryptStream(stream(splitLast), key, null)),
        };
        """
    )
    assert all(out.pop("pieces").values())
    assert out.pop("ok") == out.pop("noHash") == "ok"
    assert out.pop("empty") == out.pop("tiny") == "CryptoError: empty or truncated file"
    assert out.pop("wrongHash") == "CryptoError: file hash mismatch"
    assert out.pop("upperHash") == out.pop("badHash") == "CryptoError: malformed sha256"
    assert out.pop("badKey") == "CryptoError: file_key must be 32 bytes"
    assert out.pop("nonCanonical") == "CryptoError: non-canonical file"
    for name, result in out.items():
        assert result == "CryptoError: decryption failed", name


def test_encrypt_file_reads_one_stream(js: Js) -> None:
    """encryptFile reads the Blob as one stream, never slices it or reads it whole, and
    re-frames pieces of any size into the same records as whole-Blob reading."""
    out = js(
        OUTCOME
        + """
        const size = 33 * 65536 + 3;
        const records = 34;
        const plain = enc.randomBytes(size);
        const key = enc.randomBytes(32);
        const nonces = Array.from({length: records}, () => enc.randomBytes(12));
        // A Blob whose stream() delivers the bytes in pieces of the given sizes, in turn.
        const piecewise = (bytes, sizes, {error = null} = {}) => {
          const blob = new Blob([plain]);
          const cancelled = [];
          blob.stream = () => {
            let offset = 0;
            let turn = 0;
            return new ReadableStream({
              pull(controller) {
                if (offset >= bytes.length) {
                  if (error) controller.error(new Error(error));
                  else controller.close();
                  return;
                }
                const n = sizes[turn % sizes.length];
                turn += 1;
                controller.enqueue(bytes.slice(offset, offset + n));
                offset += n;
              },
              cancel() { cancelled.push(1); },
            });
          };
          return {blob, cancelled};
        };
        const slices = [];
        const wholeReads = [];
        const originalSlice = Blob.prototype.slice;
        const originalArrayBuffer = Blob.prototype.arrayBuffer;
        const blob = new Blob([plain]);
        Blob.prototype.slice = function (...args) {
          slices.push(args);
          return originalSlice.apply(this, args);
        };
        blob.arrayBuffer = function () {
          wholeReads.push(1);
          return originalArrayBuffer.call(this);
        };
        let reference;
        const progress = [];
        try {
          reference = await files.encryptFileWith(blob, {
            key, nonces, onProgress: (done, total) => progress.push([done, total]),
          });
        } finally {
          Blob.prototype.slice = originalSlice;
        }
        const referenceBytes = new Uint8Array(await reference.body.arrayBuffer());
        const same = {};
        for (const sizes of [[1, 4093], [7, 65535], [65536], [65537, 3], [1 << 20], [size]]) {
          const r = await files.encryptFileWith(piecewise(plain, sizes).blob, {key, nonces});
          same[sizes.join(",")] = r.sha256 === reference.sha256 &&
            enc.equalBytes(new Uint8Array(await r.body.arrayBuffer()), referenceBytes);
        }
        const shorter = piecewise(plain.subarray(0, size - 1), [65536]);
        // Grown by several pieces, so the stream is still open when the growth is seen.
        const longer = piecewise(enc.concat(plain, new Uint8Array(4 * 65536)), [65536]);
        const failing = piecewise(plain.subarray(0, 65536), [65536], {error: "disk gone"});
        return {
          slices, wholeReads: wholeReads.length, progress, same,
          size: reference.size, ct: reference.ciphertextSize, blobSize: referenceBytes.length,
          sha256: reference.sha256 === sha.sha256Hex(referenceBytes),
          back: enc.equalBytes(new Uint8Array(await (await files.decryptStream(
            reference.body, key, reference.sha256)).arrayBuffer()), plain),
          shorter: await outcome(() => files.encryptFile(shorter.blob)),
          longer: await outcome(() => files.encryptFile(longer.blob)),
          failing: await outcome(() => files.encryptFile(failing.blob)),
          cancelled: longer.cancelled.length,
        };
        """
    )
    size = 33 * 65536 + 3
    assert out["slices"] == []
    assert out["wholeReads"] == 0
    assert out["progress"] == [[min((i + 1) * 65536, size), size] for i in range(34)]
    assert all(out["same"].values()), out["same"]
    assert out["size"] == size
    assert out["ct"] == out["blobSize"] == size + 34 * 28
    assert out["sha256"]
    assert out["back"]
    assert out["shorter"] == out["longer"] == "Error: the file changed while it was read"
    assert out["failing"] == "Error: disk gone"
    # Cancelled, so a File's reader does not stay open after the failure.
    assert out["cancelled"] == 1


# --------------------------------------------------------------------------- SHA-256


@pytest.mark.parametrize("size", [0, 1, 55, 56, 63, 64, 65, 1000, 70000])
def test_streaming_sha256(js: Js, size: int) -> None:
    data = os.urandom(size)
    out = js(
        """
        const data = enc.b64decode(arg);
        const whole = new sha.Sha256().update(data).hexdigest();
        const results = {whole, oneShot: sha.sha256Hex(data)};
        for (const step of [1, 3, 63, 64, 65, 4096]) {
          if (step === 1 && data.length > 5000) continue;
          const h = new sha.Sha256();
          for (let i = 0; i < data.length; i += step) h.update(data.subarray(i, i + step));
          results["step" + step] = h.hexdigest();
        }
        // Uneven pieces, empty ones included.
        const h = new sha.Sha256();
        let i = 0, n = 0;
        while (i < data.length) {
          const k = (n * 37) % 101;
          h.update(data.subarray(i, i + k));
          i += k;
          n += 1;
        }
        results.uneven = h.hexdigest();
        results.subtle = enc.toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", data)));
        return results;
        """,
        base64.b64encode(data).decode(),
    )
    expected = hashlib.sha256(data).hexdigest()
    assert out == dict.fromkeys(out, expected)
    assert len(out) >= 8


def test_sha256_digest_once(js: Js) -> None:
    out = js(
        OUTCOME
        + """
        const h = new sha.Sha256().update(enc.utf8("abc"));
        const first = h.hexdigest();
        return {first, again: await outcome(() => h.digest()),
                update: await outcome(() => h.update(new Uint8Array(1))),
                type: await outcome(() => new sha.Sha256().update([1, 2]))};
        """
    )
    assert out["first"] == hashlib.sha256(b"abc").hexdigest()
    assert out["again"].startswith("Error: ")
    assert out["update"].startswith("Error: ")
    assert out["type"].startswith("TypeError: ")
