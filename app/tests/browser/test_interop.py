"""The browser modules against the Python reference client (securechat.client): what one side
seals, wraps, encrypts or derives, the other opens, and both apply the same validation rules.

State that must survive between two page.evaluate calls (the browser's own identity) is kept
on globalThis of the test's page."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from securechat.client.crypto import (
    CryptoError,
    IdentityKeys,
    PublicKeys,
    Signer,
    decrypt_envelope,
    derive_keys,
    encrypt_envelope,
    new_epoch_key,
    open_key_blob,
    private_key_pkcs8,
    seal_key_blob,
    unwrap_epoch_key,
    wrap_epoch_key,
)
from securechat.client.encoding import b64decode, b64encode
from securechat.client.files import (
    FileEncryptor,
    decrypt_stream,
    file_content,
    parse_file_content,
    safe_name,
)
from securechat.client.reactions import aggregate_reactions, parse_reaction_content
from securechat.client.safety import safety_number

Js = Callable[..., Any]

OUTCOME = """
  const outcome = async (f) => {
    try { return {ok: await f()}; } catch (e) { return {error: e.name, message: e.message}; }
  };
"""

# Makes the browser's identity (bob) and publishes its public keys; kept on globalThis.
BROWSER_USER = """
  const identity = await c.generateIdentity();
  globalThis.bob = {userId: arg, keyVersion: 1, identity};
  globalThis.bobPub = await c.publicKeysOf(identity, arg, 1);
  return c.publicKeysToJson(globalThis.bobPub);
"""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def python_user() -> Signer:
    return Signer(user_id=str(uuid.uuid4()), key_version=1, identity=IdentityKeys.generate())


def browser_user(js: Js) -> PublicKeys:
    """A fresh identity made in the page (globalThis.bob); its public keys as Python sees them."""
    user_id = str(uuid.uuid4())
    return PublicKeys.from_json(user_id, 1, js(BROWSER_USER, user_id))


@pytest.fixture
def alice() -> Signer:
    return python_user()


@pytest.fixture
def bob(js: Js) -> PublicKeys:
    return browser_user(js)


# --------------------------------------------------------------------------- derivation


PASSWORDS = [
    "correct horse battery staple",
    "",
    "Cre\u0300me bru\u0302le\u0301e",  # decomposed: NFC matters
    "\u00c5ngstr\u00f6m \u212b",  # the Angstrom sign normalises to U+00C5
    "パスワード🔑",
    "a" * 200,
]


@pytest.mark.parametrize("password", PASSWORDS)
def test_derive_keys_agree(js: Js, password: str) -> None:
    salt = os.urandom(16)
    expected = derive_keys(password, salt, 1000, min_iterations=1000)
    out = js(
        """
        const k = await c.deriveKeys(arg.password, enc.b64decode(arg.salt), 1000,
          {minIterations: 1000});
        return [enc.b64encode(k.authKey), enc.b64encode(k.wrapKey)];
        """,
        {"password": password, "salt": b64(salt)},
    )
    assert out == [b64encode(expected.auth_key), b64encode(expected.wrap_key)]


# --------------------------------------------------------------------------- key blob


def test_key_blob_sealed_in_browser_opens_in_python(js: Js, bob: PublicKeys) -> None:
    wrap_key = os.urandom(32)
    blob = js(
        "return await c.sealKeyBlob(enc.b64decode(arg), bob.userId, 1, bob.identity);",
        b64(wrap_key),
    )
    identity = open_key_blob(wrap_key, bob.user_id, 1, blob)
    assert identity.public(bob.user_id, 1) == bob
    with pytest.raises(CryptoError):
        open_key_blob(wrap_key, bob.user_id, 2, blob)


def test_key_blob_sealed_in_python_opens_in_browser(js: Js, alice: Signer) -> None:
    keys = derive_keys("pässword", os.urandom(16), 1000, min_iterations=1000)
    blob = seal_key_blob(keys.wrap_key, alice.user_id, 1, alice.identity)
    out = js(
        OUTCOME
        + """
        const key = enc.b64decode(arg.wrapKey);
        const identity = await c.openKeyBlob(key, arg.userId, 1, arg.blob);
        const pub = await c.publicKeysOf(identity, arg.userId, 1);
        // The opened keys work: sign, and re-seal (they are extractable).
        const sig = await c.sign(identity.ecdsa.privateKey, enc.utf8("x"));
        await c.verify(pub.ecdsaPublic, sig, enc.utf8("x"));
        const resealed = await c.sealKeyBlob(key, arg.userId, 1, identity);
        return {
          keys: c.publicKeysToJson(pub), resealed,
          wrongUser: await outcome(() => c.openKeyBlob(key, arg.otherId, 1, arg.blob)),
        };
        """,
        {
            "wrapKey": b64(keys.wrap_key),
            "userId": alice.user_id,
            "otherId": str(uuid.uuid4()),
            "blob": blob,
        },
    )
    assert out["keys"] == alice.public.to_json()
    assert out["wrongUser"] == {"error": "CryptoError", "message": "decryption failed"}
    reopened = open_key_blob(keys.wrap_key, alice.user_id, 1, out["resealed"])
    assert reopened.public(alice.user_id, 1) == alice.public


# --------------------------------------------------------------------------- epoch keys


def test_epoch_key_wrapped_in_python_unwraps_in_browser(
    js: Js, alice: Signer, bob: PublicKeys
) -> None:
    conversation_id = str(uuid.uuid4())
    epoch_key = new_epoch_key()
    wrap = wrap_epoch_key(epoch_key, conversation_id, 5, alice, bob)
    out = js(
        OUTCOME
        + """
        const alice = c.publicKeysFromJson(arg.aliceId, 1, arg.aliceKeys);
        const key = await c.unwrapEpochKey(arg.wrap, arg.cid, 5, alice, bob);
        return {
          key: enc.b64encode(key),
          wrongEpoch: await outcome(() => c.unwrapEpochKey(arg.wrap, arg.cid, 6, alice, bob)),
        };
        """,
        {
            "aliceId": alice.user_id,
            "aliceKeys": alice.public.to_json(),
            "wrap": wrap,
            "cid": conversation_id,
        },
    )
    assert out["key"] == b64encode(epoch_key)
    assert out["wrongEpoch"] == {"error": "CryptoError", "message": "invalid signature"}


def test_epoch_key_wrapped_in_browser_unwraps_in_python(
    js: Js, alice: Signer, bob: PublicKeys
) -> None:
    conversation_id = str(uuid.uuid4())
    out = js(
        """
        const alice = c.publicKeysFromJson(arg.aliceId, 1, arg.aliceKeys);
        const key = c.newEpochKey();
        return {
          key: enc.b64encode(key),
          forAlice: await c.wrapEpochKey(key, arg.cid, 2, bob, alice),
          forBob: await c.wrapEpochKey(key, arg.cid, 2, bob, bobPub),
        };
        """,
        {"aliceId": alice.user_id, "aliceKeys": alice.public.to_json(), "cid": conversation_id},
    )
    wrap = out["forAlice"]
    assert wrap["recipient_id"] == alice.user_id
    assert wrap["recipient_key_version"] == 1
    assert unwrap_epoch_key(wrap, conversation_id, 2, bob, alice) == b64decode(out["key"])
    # The browser's wrap for itself is addressed to bob: alice must refuse it.
    with pytest.raises(CryptoError, match="someone else"):
        unwrap_epoch_key(out["forBob"], conversation_id, 2, bob, alice)


# --------------------------------------------------------------------------- envelopes


CONTENTS: list[dict[str, Any]] = [
    {"type": "text", "text": 'Hi! Ünïcödé, emoji 👋🏽 and "quotes" \\ / </script>'},
    {"type": "text", "text": "controls \n\t\r\b\f \u0001 \u001f \u007f \u2028 \u2029 \ufeff"},
    {"type": "text", "text": ""},
    {"type": "reaction", "target": str(uuid.uuid4()), "emoji": "👨‍👩‍👧‍👦", "op": "add"},
    {"type": "future", "nested": {"list": [1, -2, 3.5, True, False, None, "x"]}, "n": 2**53 - 1},
]


@pytest.mark.parametrize("index", range(len(CONTENTS)))
def test_envelopes_cross(js: Js, alice: Signer, bob: PublicKeys, index: int) -> None:
    content = CONTENTS[index]
    conversation_id = str(uuid.uuid4())
    epoch_key = new_epoch_key()
    from_python = encrypt_envelope(content, conversation_id, 3, epoch_key, alice)
    out = js(
        OUTCOME
        + """
        const alice = c.publicKeysFromJson(arg.aliceId, 1, arg.aliceKeys);
        const key = enc.b64decode(arg.key);
        return {
          decrypted: await c.decryptEnvelope(arg.fromPython, key, alice),
          fromBrowser: await c.encryptEnvelope(arg.content, arg.cid, 3, key, bob),
          asBob: await outcome(() => c.decryptEnvelope(arg.fromPython, key, bobPub)),
        };
        """,
        {
            "aliceId": alice.user_id,
            "aliceKeys": alice.public.to_json(),
            "key": b64(epoch_key),
            "fromPython": from_python,
            "content": content,
            "cid": conversation_id,
        },
    )
    assert out["decrypted"] == content
    assert out["asBob"] == {"error": "CryptoError", "message": "invalid signature"}
    envelope = out["fromBrowser"]
    assert envelope["sender_id"] == bob.user_id
    assert uuid.UUID(envelope["message_id"]).version == 4
    assert decrypt_envelope(envelope, epoch_key, bob) == content
    with pytest.raises(CryptoError, match="invalid signature"):
        decrypt_envelope(envelope, epoch_key, alice.public)


def test_envelope_plaintext_is_byte_identical(js: Js) -> None:
    """Same key, nonce, ids and content: the browser's ciphertext equals Python's, so the
    compact JSON both write is the same bytes (section 5.2's SHOULD)."""
    signer = python_user()
    conversation_id = str(uuid.uuid4())
    message_id = str(uuid.uuid4())
    nonce = os.urandom(12)
    epoch_key = new_epoch_key()
    pkcs8 = js(
        """
        const id = await c.generateIdentity();
        const ecdsa = new Uint8Array(await crypto.subtle.exportKey("pkcs8", id.ecdsa.privateKey));
        const ecdh = new Uint8Array(await crypto.subtle.exportKey("pkcs8", id.ecdh.privateKey));
        globalThis.me = {userId: arg, keyVersion: 1, identity: id};
        return [enc.b64encode(ecdh), enc.b64encode(ecdsa)];
        """,
        signer.user_id,
    )
    # The browser's private keys, loaded by the reference client (PKCS #8 from Web Crypto).
    wrap_key = os.urandom(32)
    blob = js(
        "return await c.sealKeyBlob(enc.b64decode(arg), me.userId, 1, me.identity);",
        b64(wrap_key),
    )
    identity = open_key_blob(wrap_key, signer.user_id, 1, blob)
    same = Signer(signer.user_id, 1, identity)
    assert [
        b64encode(private_key_pkcs8(identity.ecdh_private)),
        b64encode(private_key_pkcs8(identity.ecdsa_private)),
    ] == pkcs8
    for content in CONTENTS:
        python = encrypt_envelope(
            content, conversation_id, 9, epoch_key, same, message_id=message_id, nonce=nonce
        )
        browser = js(
            """
            return await c.encryptEnvelopeWith(arg.content, arg.cid, 9, enc.b64decode(arg.key),
              me, {messageId: arg.mid, nonce: enc.b64decode(arg.nonce)});
            """,
            {
                "content": content,
                "cid": conversation_id,
                "key": b64(epoch_key),
                "mid": message_id,
                "nonce": b64(nonce),
            },
        )
        assert {k: v for k, v in browser.items() if k != "signature"} == {
            k: v for k, v in python.items() if k != "signature"
        }
        assert decrypt_envelope(browser, epoch_key, same.public) == content


# --------------------------------------------------------------------------- files


FILE_SIZES = [200 * 1024, 0, 65536, 65537]


@pytest.mark.parametrize("size", FILE_SIZES)
def test_file_encrypted_in_browser_decrypts_in_python(js: Js, size: int) -> None:
    plaintext = os.urandom(size)
    out = js(
        """
        const r = await files.encryptFile(new Blob([enc.b64decode(arg.plain)]));
        const content = files.fileContent({fileId: arg.fileId, name: "report.bin",
          mime: "application/octet-stream", size: r.size, ciphertextSize: r.ciphertextSize,
          sha256: r.sha256, key: r.key});
        return {body: enc.b64encode(new Uint8Array(await r.body.arrayBuffer())), content};
        """,
        {"plain": b64(plaintext), "fileId": str(uuid.uuid4())},
    )
    body = base64.b64decode(out["body"])
    ref = parse_file_content(out["content"])
    assert ref.size == size
    assert ref.ciphertext_size == len(body)
    assert ref.sha256 == hashlib.sha256(body).hexdigest()
    # Python re-frames pieces of any size, like a download would deliver them.
    pieces = [body[i : i + 10_000] for i in range(0, len(body), 10_000)]
    assert b"".join(decrypt_stream(pieces, ref.key, ref.sha256)) == plaintext


@pytest.mark.parametrize("size", FILE_SIZES)
def test_file_encrypted_in_python_decrypts_in_browser(js: Js, size: int) -> None:
    plaintext = os.urandom(size)
    encryptor = FileEncryptor()
    blob = b"".join(encryptor.encrypt_stream([plaintext]))
    content = file_content(
        str(uuid.uuid4()), "photo.png", "image/png", encryptor, caption="a caption"
    )
    out = js(
        OUTCOME
        + """
        const ref = files.parseFileContent(arg.content);
        const blob = new Blob([enc.b64decode(arg.blob)]);
        const plain = await files.decryptStream(blob.stream(), ref.key, ref.sha256);
        const tampered = enc.b64decode(arg.blob);
        tampered[tampered.length - 1] ^= 1;
        return {
          plain: enc.b64encode(new Uint8Array(await plain.arrayBuffer())),
          size: ref.size, ciphertextSize: ref.ciphertextSize, text: ref.text,
          tampered: await outcome(() => files.decryptStream(new Blob([tampered]).stream(),
            ref.key, null)),
          hash: await outcome(() => files.decryptStream(blob.stream(), ref.key, "f".repeat(64))),
        };
        """,
        {"content": content, "blob": b64(blob)},
    )
    assert base64.b64decode(out["plain"]) == plaintext
    assert out["size"] == size
    assert out["ciphertextSize"] == len(blob)
    assert out["text"] == "a caption"
    assert out["tampered"] == {"error": "CryptoError", "message": "decryption failed"}
    assert out["hash"] == {"error": "CryptoError", "message": "file hash mismatch"}


def _valid_file_content() -> dict[str, Any]:
    encryptor = FileEncryptor()
    for _ in encryptor.encrypt_stream([b"x" * 70000]):
        pass
    return file_content(str(uuid.uuid4()), "report.pdf", "application/pdf", encryptor)


def _file_content_variants() -> dict[str, dict[str, Any]]:
    base = _valid_file_content()
    variants: dict[str, dict[str, Any]] = {"valid": base}
    changes: dict[str, tuple[str, Any]] = {
        "type": ("type", "text"),
        "file_id_upper": ("file_id", base["file_id"].upper()),
        "file_id_v1": ("file_id", "6ba7b810-9dad-11d1-80b4-00c04fd430c8"),
        "file_id_number": ("file_id", 7),
        "name_empty": ("name", ""),
        "name_dot": ("name", "."),
        "name_dotdot": ("name", ".."),
        "name_slash": ("name", "a/b"),
        "name_backslash": ("name", "a\\b"),
        "name_nul": ("name", "a\x00b"),
        "name_del": ("name", "a\x7fb"),
        "name_c1": ("name", "a\x85b"),
        "name_bidi": ("name", "evil\u202etxt.exe"),
        "name_isolate": ("name", "x\u2067y"),
        "name_alm": ("name", "x\u061cy"),
        "name_zwsp_ok": ("name", "x\u200by"),
        "name_spaces_ok": ("name", "  x  "),
        "name_255_ok": ("name", "é" * 127 + "a"),
        "name_256": ("name", "é" * 128),
        "name_emoji_ok": ("name", "👋" * 63),
        "name_emoji_long": ("name", "👋" * 64),
        "mime_params": ("mime", "text/plain; charset=utf-8"),
        "mime_no_subtype": ("mime", "text"),
        "mime_three": ("mime", "a/b/c"),
        "mime_ok": ("mime", "application/vnd.api+json"),
        "mime_long": ("mime", "a" * 128 + "/b"),
        "mime_long_ok": ("mime", "a" * 127 + "/b"),
        "size_negative": ("size", -1),
        "size_bool": ("size", True),
        "size_string": ("size", "70000"),
        "size_float": ("size", 70000.5),
        "size_huge": ("size", 2**53),
        "ciphertext_size_off": ("ciphertext_size", base["ciphertext_size"] + 1),
        "sha256_upper": ("sha256", base["sha256"].upper()),
        "sha256_short": ("sha256", base["sha256"][:-1]),
        "key_short": ("key", b64encode(os.urandom(31))),
        "key_urlsafe": ("key", "-" * 43 + "="),
        "key_noncanonical": ("key", base["key"][:-2] + "B="),
        "chunk_bytes": ("chunk_bytes", 4096),
        "chunk_bytes_string": ("chunk_bytes", "65536"),
        "text_ok": ("text", "caption 👋"),
        "text_null_ok": ("text", None),
        "text_number": ("text", 5),
        "text_max_ok": ("text", "👋" * 16000),
        "text_long": ("text", "a" * 16001),
        "unknown_member_ok": ("future", {"x": 1}),
    }
    for name, (member, value) in changes.items():
        variants[name] = {**base, member: value}
    missing = {k: v for k, v in base.items() if k != "name"}
    variants["name_missing"] = missing
    # The largest blob a JS number holds exactly: n full records and a last one of r bytes.
    big = 2**53 - 1
    full, rest = divmod(big - 28, 65564)
    variants["size_max_ok"] = {**base, "size": full * 65536 + rest, "ciphertext_size": big}
    return variants


def _python_parse_file(content: dict[str, Any]) -> dict[str, Any]:
    try:
        ref = parse_file_content(content)
    except CryptoError as exc:
        return {"error": "CryptoError", "message": str(exc)}
    return {
        "ok": {
            "fileId": ref.file_id,
            "name": ref.name,
            "mime": ref.mime,
            "size": ref.size,
            "ciphertextSize": ref.ciphertext_size,
            "sha256": ref.sha256,
            "key": b64encode(ref.key),
            "chunkBytes": ref.chunk_bytes,
            "text": ref.text,
        }
    }


def test_parse_file_content_agrees(js: Js) -> None:
    variants = _file_content_variants()
    out = js(
        OUTCOME
        + """
        const results = {};
        for (const [name, content] of Object.entries(arg)) {
          results[name] = await outcome(() => {
            const ref = files.parseFileContent(content);
            return {...ref, key: enc.b64encode(ref.key)};
          });
        }
        return results;
        """,
        variants,
    )
    for name, content in variants.items():
        assert out[name] == _python_parse_file(content), name
    assert "ok" in out["size_max_ok"]
    accepted = {name for name, result in out.items() if "ok" in result}
    assert accepted == {name for name in variants if name == "valid" or name.endswith("_ok")}


def test_sizes_beyond_53_bits(js: Js) -> None:
    """The one known difference: a plaintext of 2^53 - 1 bytes has a blob size above 2^53 - 1,
    which Python's integers hold and JSON numbers in JavaScript do not (section 2 keeps every
    integer within 53 bits), so the browser refuses such a content."""
    size = 2**53 - 1
    content = {**_valid_file_content(), "size": size, "ciphertext_size": size + 28 * 2**37}
    assert parse_file_content(content).size == size
    out = js(
        OUTCOME + "return await outcome(() => files.parseFileContent(arg));",
        content,
    )
    assert out == {"error": "CryptoError", "message": "malformed ciphertext_size"}


def test_file_content_builder_agrees(js: Js) -> None:
    base = _valid_file_content()
    arguments = {
        "fileId": base["file_id"],
        "name": "report.pdf",
        "mime": "application/pdf",
        "size": base["size"],
        "ciphertextSize": base["ciphertext_size"],
        "sha256": base["sha256"],
        "key": base["key"],
    }
    out = js(
        OUTCOME
        + """
        const make = (extra) => outcome(() =>
          files.fileContent({...arg, key: enc.b64decode(arg.key), ...extra}));
        return {
          plain: await make({}),
          caption: await make({caption: "hello"}),
          nullCaption: await make({caption: null}),
          badName: await make({name: "../x"}),
          badSize: await make({ciphertextSize: arg.ciphertextSize - 1}),
          badKey: await outcome(() => files.fileContent({...arg})),
        };
        """,
        arguments,
    )
    assert out["plain"] == {"ok": base}
    assert out["caption"] == {"ok": {**base, "text": "hello"}}
    assert out["nullCaption"] == {"ok": base}
    assert out["badName"] == {"error": "RangeError", "message": "malformed name"}
    assert out["badSize"] == {"error": "RangeError", "message": "malformed ciphertext_size"}
    assert out["badKey"] == {"error": "RangeError", "message": "malformed key"}


SAFE_NAME_CASES = [
    "report.pdf",
    "../../etc/passwd",
    "C:\\Users\\x\\evil.exe",
    "dir/",
    "/",
    "",
    ".",
    "..",
    "a/..",
    "evil\u202etxt.exe",
    "  spaced name.txt  ",
    "\u3000wide\u3000",
    "\u00a0nbsp\u00a0",
    "\ufeffbom\ufeff",
    "\u200bzero-width\u200b",
    "\x00\x01name\x7f\x9f",
    "\x85next\u2028line\u2029",
    "tab\tname\nnew\rline",
    "\x1c\x1d\x1e\x1fseparators",
    "x" * 300,
    "é" * 200,
    "👋" * 70,
    "a" * 254 + "é",
    "a" * 253 + "👋",
    "a" * 254 + " b",
    " " * 10,
    "\u202e",
    "ok/\u202e../",
]


def test_safe_name_agrees(js: Js) -> None:
    out = js("return arg.map((name) => files.safeName(name));", SAFE_NAME_CASES)
    assert out == [safe_name(name) for name in SAFE_NAME_CASES]
    # Unpaired surrogates can only be made on the browser side (they do not cross JSON).
    lone = js(
        r"return [files.safeName('a\ud800b'), files.safeName('\udc00'), "
        r"files.safeName('x\ud83d\udc4b')];"
    )
    assert lone == ["ab", "file", "x👋"]


# --------------------------------------------------------------------------- reactions


REACTION_CASES: list[tuple[Any, Any, Any]] = [
    (str(uuid.uuid4()), "👍", "add"),
    (str(uuid.uuid4()), "👍🏽", "remove"),
    (str(uuid.uuid4()), "👨‍👩‍👧‍👦", "add"),
    (str(uuid.uuid4()), "x" * 16, "add"),
    (str(uuid.uuid4()), "x" * 17, "add"),
    (str(uuid.uuid4()), "👋" * 16, "add"),
    (str(uuid.uuid4()), "👋" * 17, "add"),
    (str(uuid.uuid4()), "", "add"),
    (str(uuid.uuid4()), "a\x00", "add"),
    (str(uuid.uuid4()), "\x7f", "add"),
    (str(uuid.uuid4()), "\u200d", "add"),
    (str(uuid.uuid4()), 5, "add"),
    (str(uuid.uuid4()), "👍", "toggle"),
    (str(uuid.uuid4()), "👍", None),
    (str(uuid.uuid4()).upper(), "👍", "add"),
    ("not-a-uuid", "👍", "add"),
    (None, "👍", "add"),
]


def test_reaction_contents_agree(js: Js) -> None:
    expected = []
    for target, emoji, op in REACTION_CASES:
        content = {"type": "reaction", "target": target, "emoji": emoji, "op": op}
        try:
            parsed = parse_reaction_content(content)
            expected.append({"ok": [parsed.target, parsed.emoji, parsed.op]})
        except CryptoError as exc:
            expected.append({"error": "CryptoError", "message": str(exc)})
    out = js(
        OUTCOME
        + """
        const results = [];
        for (const [target, emoji, op] of arg) {
          const content = {type: "reaction", target, emoji, op};
          results.push(await outcome(() => {
            const r = files.parseReactionContent(content);
            return [r.target, r.emoji, r.op];
          }));
        }
        const made = await outcome(() => files.reactionContent(arg[0][0], "👍"));
        const bad = await outcome(() => files.reactionContent(arg[0][0], "", "add"));
        const lone = await outcome(() => files.parseReactionContent(
          {type: "reaction", target: arg[0][0], emoji: "\\ud83d", op: "add"}));
        return {results, made, bad, lone};
        """,
        REACTION_CASES,
    )
    assert out["results"] == expected
    target = REACTION_CASES[0][0]
    assert out["made"] == {"ok": {"type": "reaction", "target": target, "emoji": "👍", "op": "add"}}
    assert out["bad"] == {"error": "RangeError", "message": "malformed emoji"}
    assert out["lone"] == {"error": "CryptoError", "message": "malformed emoji"}


def _random_events(rng: random.Random, count: int) -> list[list[Any]]:
    users = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(3)]
    targets = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(2)]
    emoji = ["👍", "👍🏽", "\uff01", "😀"]  # U+FF01 sorts differently in UTF-16
    seqs = rng.sample(range(1, 10 * count), count)
    events: list[list[Any]] = []
    for seq in seqs:
        roll = rng.random()
        content: Any
        if roll < 0.08:
            content = {"type": "text", "text": "not a reaction"}
        elif roll < 0.12:
            content = {"type": "reaction", "target": "bad", "emoji": "👍", "op": "add"}
        else:
            content = {
                "type": "reaction",
                "target": rng.choice(targets),
                "emoji": rng.choice(emoji),
                "op": rng.choice(["add", "add", "remove"]),
            }
        events.append([seq, rng.choice(users), content])
    # Malformed events are skipped.
    events.append([True, users[0], {"type": "reaction", "target": targets[0], "emoji": "👍"}])
    events.append(["7", users[0], {"type": "reaction", "target": targets[0], "emoji": "👍"}])
    events.append([3, "", {"type": "reaction", "target": targets[0], "emoji": "👍", "op": "add"}])
    events.append([4, users[1], None])
    # Ties on seq (never from a server) are broken by the other fields, as in Python.
    events.append([seqs[0], users[2], {**events[0][2], "op": "add"}])
    events.append([seqs[0], users[2], {**events[0][2], "op": "remove"}])
    rng.shuffle(events)
    return events


def _normalise(state: dict[str, dict[str, set[str]]]) -> dict[str, dict[str, list[str]]]:
    return {t: {e: sorted(users) for e, users in emojis.items()} for t, emojis in state.items()}


@pytest.mark.parametrize("seed", range(6))
def test_aggregate_reactions_agrees(js: Js, seed: int) -> None:
    rng = random.Random(seed)
    events = _random_events(rng, 60)
    expected = _normalise(aggregate_reactions([tuple(e) for e in events]))
    out = js(
        """
        const plain = (state) => Object.fromEntries([...state].map(([target, emojis]) =>
          [target, Object.fromEntries([...emojis].map(([e, users]) => [e, [...users].sort()]))]));
        const asObjects = arg.map(([seq, senderId, content]) => ({seq, senderId, content}));
        const tuples = files.aggregateReactions(arg);
        return {
          tuples: plain(tuples), objects: plain(files.aggregateReactions(asObjects)),
          reversed: plain(files.aggregateReactions([...arg].reverse())),
          isMap: tuples instanceof Map,
        };
        """,
        events,
    )
    assert out["tuples"] == out["objects"] == out["reversed"] == expected
    assert out["isMap"]


# --------------------------------------------------------------------------- safety numbers


def test_safety_numbers_agree(js: Js) -> None:
    a, b = python_user().public, python_user().public
    out = js(
        """
        const a = c.publicKeysFromJson(arg.a[0], 1, arg.a[1]);
        const b = c.publicKeysFromJson(arg.b[0], 1, arg.b[1]);
        return [await c.safetyNumber(a, b), await c.safetyNumber(b, a)];
        """,
        {"a": [a.user_id, a.to_json()], "b": [b.user_id, b.to_json()]},
    )
    assert out == [safety_number(a, b)] * 2


def test_safety_number_with_browser_identity(js: Js, bob: PublicKeys) -> None:
    alice = python_user().public
    out = js(
        """
        const alice = c.publicKeysFromJson(arg[0], 1, arg[1]);
        return [await c.safetyNumber(bobPub, alice), c.formatSafetyNumber(
          await c.safetyNumber(alice, bobPub))];
        """,
        [alice.user_id, alice.to_json()],
    )
    number = safety_number(alice, bob)
    assert out[0] == number
    assert out[1].replace(" ", "") == number


# --------------------------------------------------------------------------- base64


def test_b64decode_agrees_on_random_strings(js: Js) -> None:
    rng = random.Random(1)
    alphabet = "AAAABQgw+/=-_ \n\u00e9"
    samples = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 13))) for _ in range(3000)
    ]
    samples += [base64.b64encode(os.urandom(n)).decode() for n in range(20)]
    expected: list[str | None] = []
    for text in samples:
        try:
            expected.append(b64decode(text).hex())
        except ValueError:
            expected.append(None)
    out = js(
        """
        return arg.map((text) => {
          try { return enc.toHex(enc.b64decode(text)); } catch (e) { return null; }
        });
        """,
        samples,
    )
    assert out == expected
    assert sum(r is not None for r in expected) > 100
