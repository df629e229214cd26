// The in-page half of bench/browser_costs.py. browser_costs.py drops these comment lines and
// hands the function below to Playwright's page.evaluate: the server's Content-Security-Policy
// forbids eval and inline scripts, and evaluate (a DevTools call) is not governed by it.
//
// The function loads the browser client's own ES modules from the server (same-origin dynamic
// imports, as index.html loads them) and times their exported calls with performance.now().
// Nothing here re-implements the protocol: key derivation, envelopes, wraps and files are the
// calls chat.js makes. Only the "components" step times building blocks on their own (Web
// Crypto's AES-GCM, sha256.js, Blob reads) to show where a file's time goes.
async ({ step, params }) => {
  const c = await import("/js/crypto.js");
  const files = await import("/js/files.js");
  const { Sha256 } = await import("/js/sha256.js");
  const { randomBytes } = await import("/js/encoding.js");

  const now = () => performance.now();
  // Chromium only (performance.memory); exact with --enable-precise-memory-info.
  const heap = () => (performance.memory ? performance.memory.usedJSHeapSize : null);
  // window.gc exists with --js-flags=--expose-gc: a settled heap before each measurement.
  const collect = () => {
    if (typeof globalThis.gc === "function") globalThis.gc();
  };
  const PASSWORD = "correct horse battery staple, 2026";

  // A signer and its public keys, as the client holds them after login.
  async function party() {
    const identity = await c.generateIdentity();
    const userId = crypto.randomUUID();
    const signer = { userId, keyVersion: 1, identity };
    return { signer, publicKeys: await c.publicKeysOf(identity, userId, 1) };
  }

  // The smallest positive step of performance.now(): Chromium coarsens it (100 µs unless the
  // page is cross-origin isolated), which bounds what single-operation times can resolve.
  function timer() {
    let smallest = Infinity;
    let last = now();
    for (let i = 0; i < 200000; i += 1) {
      const t = now();
      if (t > last && t - last < smallest) smallest = t - last;
      last = t;
    }
    return {
      resolutionMs: smallest,
      userAgent: navigator.userAgent,
      crossOriginIsolated: globalThis.crossOriginIsolated === true,
      hardwareConcurrency: navigator.hardwareConcurrency,
      preciseHeap: heap() !== null,
      gc: typeof globalThis.gc === "function",
    };
  }

  // What login (chat.js) asks the server before deriving: the KDF parameters. An unknown
  // user gets the server's default iterations with a per-name fake salt.
  async function prelogin({ username }) {
    const response = await fetch("/api/v1/auth/prelogin", {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify({ username }),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
    if (!response.ok) throw new Error(`prelogin answered ${response.status}`);
    return (await response.json()).kdf;
  }

  // deriveKeys as login and register call it: PBKDF2-HMAC-SHA256, then two HKDFs.
  async function kdf({ iterations, runs }) {
    await c.deriveKeys(PASSWORD, randomBytes(16), 1000, { minIterations: 1000 }); // warm-up
    const ms = [];
    for (let i = 0; i < runs; i += 1) {
      const salt = randomBytes(16);
      const start = now();
      const keys = await c.deriveKeys(PASSWORD, salt, iterations);
      ms.push(now() - start);
      if (keys.authKey.length !== 32 || keys.wrapKey.length !== 32) throw new Error("bad keys");
    }
    return { ms };
  }

  // encryptEnvelope (sendText) and decryptEnvelope (a received message), one at a time, and
  // the signature alone (sign/verify of the same signed bytes) for comparison.
  async function messages({ count, warmup, text }) {
    const { signer, publicKeys } = await party();
    const epochKey = c.newEpochKey();
    const conversationId = crypto.randomUUID();
    const epoch = 1;
    const content = { type: "text", text };
    for (let i = 0; i < warmup; i += 1) {
      const envelope = await c.encryptEnvelope(content, conversationId, epoch, epochKey, signer);
      await c.decryptEnvelope(envelope, epochKey, publicKeys);
    }
    collect();
    const encrypt = [];
    const envelopes = [];
    let start = now();
    for (let i = 0; i < count; i += 1) {
      const t = now();
      envelopes.push(await c.encryptEnvelope(content, conversationId, epoch, epochKey, signer));
      encrypt.push(now() - t);
    }
    const encryptTotal = now() - start;
    // The client receives envelopes as parsed Socket.IO JSON with seq and server_time added;
    // parsing is the transport's work, so it happens before the clock starts.
    const received = envelopes.map((envelope, i) =>
      JSON.parse(JSON.stringify({ ...envelope, seq: i + 1, server_time: "2026-01-01T00:00:00Z" })),
    );
    collect();
    const decrypt = [];
    start = now();
    for (const envelope of received) {
      const t = now();
      const got = await c.decryptEnvelope(envelope, epochKey, publicKeys);
      decrypt.push(now() - t);
      if (got.text !== text) throw new Error("decrypted text differs");
    }
    const decryptTotal = now() - start;

    const signed = c.envelopeSignedData(new Uint8Array(150), new Uint8Array(12), new Uint8Array(140));
    const sign = [];
    const signatures = [];
    for (let i = 0; i < count; i += 1) {
      const t = now();
      signatures.push(await c.sign(signer.identity.ecdsa.privateKey, signed));
      sign.push(now() - t);
    }
    const verify = [];
    for (const signature of signatures) {
      const t = now();
      await c.verify(publicKeys.ecdsaPublic, signature, signed);
      verify.push(now() - t);
    }
    // verify() first checks the sender's point is on P-256 in JS (BigInt), then imports it.
    const onCurve = [];
    for (let i = 0; i < count; i += 1) {
      const t = now();
      c.checkPublicKey(publicKeys.ecdsaPublic);
      onCurve.push(now() - t);
    }
    return {
      encrypt,
      decrypt,
      sign,
      verify,
      onCurve,
      encryptTotal,
      decryptTotal,
      plaintextBytes: c.encodeJson(content).length,
      envelopeJsonBytes: JSON.stringify(envelopes[0]).length,
    };
  }

  // A history page: the client decrypts a page's messages with Promise.all (chat.js).
  async function history({ pages, pageSize, text }) {
    const { signer, publicKeys } = await party();
    const epochKey = c.newEpochKey();
    const conversationId = crypto.randomUUID();
    const page = [];
    for (let i = 0; i < pageSize; i += 1) {
      const content = { type: "text", text };
      page.push(await c.encryptEnvelope(content, conversationId, 1, epochKey, signer));
    }
    await Promise.all(page.map((e) => c.decryptEnvelope(e, epochKey, publicKeys))); // warm-up
    collect();
    const ms = [];
    for (let p = 0; p < pages; p += 1) {
      const start = now();
      const contents = await Promise.all(
        page.map((e) => c.decryptEnvelope(e, epochKey, publicKeys)),
      );
      ms.push(now() - start);
      if (contents.length !== pageSize) throw new Error("short page");
    }
    return { ms };
  }

  // An epoch key wrapped for one member (a new group or a rotation makes one per member) and
  // unwrapped by that member (once per conversation epoch it reads).
  async function wraps({ count }) {
    const wrapper = await party();
    const member = await party();
    const conversationId = crypto.randomUUID();
    const epochKey = c.newEpochKey();
    for (let i = 0; i < 20; i += 1) {
      const w = await c.wrapEpochKey(epochKey, conversationId, 1, wrapper.signer, member.publicKeys);
      await c.unwrapEpochKey(w, conversationId, 1, wrapper.publicKeys, member.signer);
    }
    collect();
    const wrap = [];
    const made = [];
    for (let i = 0; i < count; i += 1) {
      const t = now();
      made.push(await c.wrapEpochKey(epochKey, conversationId, 1, wrapper.signer, member.publicKeys));
      wrap.push(now() - t);
    }
    const unwrap = [];
    for (const w of made) {
      const t = now();
      const key = await c.unwrapEpochKey(w, conversationId, 1, wrapper.publicKeys, member.signer);
      unwrap.push(now() - t);
      if (key.length !== 32) throw new Error("bad epoch key");
    }
    return { wrap, unwrap };
  }

  // A plaintext Blob of `bytes`: one random MiB repeated (what the bytes are does not change
  // AES-GCM's or SHA-256's cost). crypto.getRandomValues fills at most 64 KiB per call.
  function plaintextBlob(bytes) {
    const pattern = new Uint8Array(1 << 20);
    for (let off = 0; off < pattern.length; off += 65536) {
      crypto.getRandomValues(pattern.subarray(off, off + 65536));
    }
    const parts = [];
    for (let left = bytes; left > 0; left -= pattern.length) {
      parts.push(left >= pattern.length ? pattern : pattern.subarray(0, left));
    }
    return { blob: new Blob(parts), pattern };
  }

  // encryptFile (uploadFile) and decryptStream (downloadFile) of one file, with the JS heap
  // sampled in their onProgress callbacks (chat.js passes one too). decryptStream reads the
  // encrypted Blob's stream here; the client reads the download's Response body.
  async function file({ bytes }) {
    const { blob, pattern } = plaintextBlob(bytes);
    collect();
    const heapBefore = heap();
    let peak = heapBefore;
    let calls = 0;
    // Every 16th progress call (about 1 MiB): reading the heap size is not free.
    const sample = () => {
      calls += 1;
      if (calls % 16 !== 0) return;
      const h = heap();
      if (h !== null && h > peak) peak = h;
    };
    let start = now();
    const encrypted = await files.encryptFile(blob, { onProgress: sample });
    const encryptMs = now() - start;
    const encryptPeak = peak;
    if (encrypted.body.size !== files.encryptedSize(bytes)) throw new Error("bad blob size");
    collect();
    peak = heap();
    const decryptHeapBefore = peak;
    start = now();
    const plain = await files.decryptStream(encrypted.body, encrypted.key, encrypted.sha256, {
      onProgress: sample,
    });
    const decryptMs = now() - start;
    if (plain.size !== bytes) throw new Error("decrypted size differs");
    const head = new Uint8Array(await plain.slice(0, 65536).arrayBuffer());
    if (!head.every((b, i) => b === pattern[i])) throw new Error("decrypted bytes differ");
    collect();
    const heapAfter = heap(); // with both Blobs still referenced: what stays on the JS heap
    return {
      bytes,
      ciphertextBytes: encrypted.body.size,
      records: Math.ceil(bytes / files.CHUNK_BYTES),
      encryptMs,
      decryptMs,
      heapBefore,
      encryptHeapPeak: encryptPeak,
      decryptHeapBefore,
      decryptHeapPeak: peak,
      heapAfter,
    };
  }

  // Where a file's time goes, per 64 KiB record over `bytes`: reading a Blob slice, Web
  // Crypto's AES-256-GCM of one record, and sha256.js's incremental hash of it.
  async function components({ bytes }) {
    const { blob } = plaintextBlob(bytes);
    const chunk = files.CHUNK_BYTES;
    const records = Math.ceil(bytes / chunk);
    const key = await crypto.subtle.importKey("raw", randomBytes(32), "AES-GCM", false, [
      "encrypt",
    ]);
    const data = new Uint8Array(await blob.slice(0, chunk).arrayBuffer());
    const warm = new Sha256();
    for (let i = 0; i < 16; i += 1) {
      warm.update(data);
      await blob.slice(i * chunk, (i + 1) * chunk).arrayBuffer();
      await crypto.subtle.encrypt({ name: "AES-GCM", iv: randomBytes(12) }, key, data);
    }
    collect();
    let start = now();
    for (let i = 0; i < records; i += 1) {
      await blob.slice(i * chunk, Math.min(bytes, (i + 1) * chunk)).arrayBuffer();
    }
    const readMs = now() - start;
    start = now();
    for (let i = 0; i < records; i += 1) {
      const aad = files.chunkAad(i, i === records - 1);
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv: randomBytes(12), additionalData: aad, tagLength: 128 },
        key,
        data,
      );
    }
    const aesMs = now() - start;
    const hash = new Sha256();
    start = now();
    for (let i = 0; i < records; i += 1) hash.update(data);
    hash.hexdigest();
    const sha256Ms = now() - start;
    // Alternatives files.js does not use, for comparison: reading the file as one stream,
    // or in 1 MiB slices, instead of one 64 KiB slice per record; and the cost of keeping
    // each sealed record as its own Blob part (a Blob per record, then one Blob of them all).
    start = now();
    const reader = blob.stream().getReader();
    for (;;) {
      const { done } = await reader.read();
      if (done) break;
    }
    const streamReadMs = now() - start;
    start = now();
    for (let off = 0; off < bytes; off += 1 << 20) {
      await blob.slice(off, Math.min(bytes, off + (1 << 20))).arrayBuffer();
    }
    const mibSliceReadMs = now() - start;
    const nonce = randomBytes(12);
    start = now();
    const parts = [];
    for (let i = 0; i < records; i += 1) parts.push(new Blob([nonce, data]));
    const whole = new Blob(parts);
    await whole.slice(whole.size - 1).arrayBuffer(); // the parts have reached the blob store
    const blobPartsMs = now() - start;
    return {
      bytes: records * chunk,
      readMs,
      aesMs,
      sha256Ms,
      streamReadMs,
      mibSliceReadMs,
      blobPartsMs,
    };
  }

  const steps = { timer, prelogin, kdf, messages, history, wraps, file, components };
  if (!Object.hasOwn(steps, step)) throw new Error(`unknown step ${step}`);
  return steps[step](params);
};
