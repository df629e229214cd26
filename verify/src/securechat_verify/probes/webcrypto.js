// Evaluated in the deployed chat page by securechat-verify: exercises every Web Crypto
// primitive the protocol uses (docs/protocol.md section 3) and times each one.
async () => {
  const subtle = globalThis.crypto && globalThis.crypto.subtle;
  const report = { isSecureContext: globalThis.isSecureContext === true, subtle: !!subtle, timings: {}, errors: {} };
  if (!subtle) return report;
  const enc = new TextEncoder();
  async function probe(name, work) {
    const started = performance.now();
    try {
      await work();
      report.timings[name] = Math.round((performance.now() - started) * 100) / 100;
    } catch (error) {
      report.errors[name] = String(error && error.message || error);
    }
  }
  await probe("ecdh_p256", async () => {
    const a = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const b = await subtle.generateKey({ name: "ECDH", namedCurve: "P-256" }, true, ["deriveBits"]);
    const ab = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: b.publicKey }, a.privateKey, 256));
    const ba = new Uint8Array(await subtle.deriveBits({ name: "ECDH", public: a.publicKey }, b.privateKey, 256));
    if (ab.length !== 32 || ab.some((byte, i) => byte !== ba[i])) throw new Error("ECDH secrets differ");
  });
  await probe("ecdsa_p256", async () => {
    const pair = await subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, true, ["sign", "verify"]);
    const data = enc.encode("securechat-verify");
    const signature = await subtle.sign({ name: "ECDSA", hash: "SHA-256" }, pair.privateKey, data);
    if (new Uint8Array(signature).length !== 64) throw new Error("signature is not 64 bytes (P1363)");
    if (!await subtle.verify({ name: "ECDSA", hash: "SHA-256" }, pair.publicKey, signature, data)) throw new Error("signature does not verify");
  });
  await probe("aes_256_gcm", async () => {
    const key = await subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const aad = enc.encode("aad");
    const sealed = await subtle.encrypt({ name: "AES-GCM", iv, additionalData: aad }, key, enc.encode("hello"));
    const opened = new TextDecoder().decode(await subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, key, sealed));
    if (opened !== "hello") throw new Error("AES-GCM round trip failed");
  });
  await probe("pbkdf2_sha256_600k", async () => {
    const base = await subtle.importKey("raw", enc.encode("password"), "PBKDF2", false, ["deriveBits"]);
    const bits = await subtle.deriveBits({ name: "PBKDF2", hash: "SHA-256", salt: new Uint8Array(16), iterations: 600000 }, base, 256);
    if (new Uint8Array(bits).length !== 32) throw new Error("PBKDF2 output is not 32 bytes");
  });
  await probe("hkdf_sha256", async () => {
    const base = await subtle.importKey("raw", new Uint8Array(32), "HKDF", false, ["deriveBits"]);
    const bits = await subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: enc.encode("securechat/p256-v1/auth") }, base, 256);
    if (new Uint8Array(bits).length !== 32) throw new Error("HKDF output is not 32 bytes");
  });
  return report;
}
