// The reference peer: a minimal Node 20 + socket.io 4.8 server doing the work our server does
// on the benchmarked paths, as the original Node.js Secure Chat did it (socket.io + MySQL).
//
// It reads and writes OUR schema in the same MariaDB database (sessions, conversation_members,
// conversations, messages), so both servers see the same accounts, tokens, conversations and
// rows. Configuration comes from the environment (set by bench/run.py):
//   PEER_PORT       port on 127.0.0.1
//   PEER_DATABASE   MariaDB database name (root@127.0.0.1:3306, no password)
//   PEER_STORAGE    "none": relay only (S3); "mysql": one transaction and commit per message,
//                   ack after the commit (S5), as the original design does
//   PEER_DEFLATE    "1": accept per-message deflate on every frame (as uvicorn does), else off
//   PEER_POOL       MySQL connections (default 10)
import { createHash } from "node:crypto";
import { createServer } from "node:http";
import mysql from "mysql2/promise";
import { Server } from "socket.io";

const port = Number(process.env.PEER_PORT || 9000);
const storage = process.env.PEER_STORAGE || "none";
const deflate = process.env.PEER_DEFLATE === "1";
const pool = mysql.createPool({
  host: "127.0.0.1",
  port: 3306,
  user: "root",
  database: process.env.PEER_DATABASE,
  connectionLimit: Number(process.env.PEER_POOL || 10),
  dateStrings: false,
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const B64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const ENVELOPE_KEYS = new Set([
  "v", "suite", "conversation_id", "epoch", "message_id", "sender_id", "sender_key_version",
  "nonce", "ciphertext", "signature", "files",
]);

const members = new Map(); // conversation id -> Promise<{ids: string[], epoch, kind}>
const online = new Map(); // user id -> sockets connected

function fail(code, message, field) {
  const error = { code, message };
  if (field) error.field = field;
  return { ok: false, error };
}

function bytes(value, field, min, max) {
  if (typeof value !== "string" || !B64.test(value)) return [null, field];
  const decoded = Buffer.from(value, "base64");
  if (decoded.length < min || decoded.length > max) return [null, field];
  return [decoded, null];
}

// The same shape checks as our Envelope model: exact members, types, UUIDs, base64 lengths.
function validate(envelope, userId) {
  if (envelope === null || typeof envelope !== "object" || Array.isArray(envelope)) {
    return [null, "body"];
  }
  for (const key of Object.keys(envelope)) if (!ENVELOPE_KEYS.has(key)) return [null, key];
  if (envelope.v !== 1) return [null, "v"];
  if (envelope.suite !== "p256-v1") return [null, "suite"];
  for (const key of ["conversation_id", "message_id", "sender_id"]) {
    if (typeof envelope[key] !== "string" || !UUID.test(envelope[key])) return [null, key];
  }
  for (const key of ["epoch", "sender_key_version"]) {
    if (!Number.isInteger(envelope[key]) || envelope[key] < 1) return [null, key];
  }
  if (envelope.sender_id !== userId) return [null, "sender_id"];
  const [nonce, e1] = bytes(envelope.nonce, "nonce", 12, 12);
  if (e1) return [null, e1];
  const [ciphertext, e2] = bytes(envelope.ciphertext, "ciphertext", 16, 65536);
  if (e2) return [null, e2];
  const [signature, e3] = bytes(envelope.signature, "signature", 64, 64);
  if (e3) return [null, e3];
  return [{ nonce, ciphertext, signature }, null];
}

function conversation(id) {
  let entry = members.get(id);
  if (!entry) {
    entry = (async () => {
      const [rows] = await pool.query(
        "SELECT c.epoch, m.user_id FROM conversations c JOIN conversation_members m" +
          " ON m.conversation_id = c.id WHERE c.id = ?",
        [id],
      );
      return { epoch: rows.length ? rows[0].epoch : 0, ids: rows.map((r) => r.user_id) };
    })();
    members.set(id, entry);
  }
  return entry;
}

async function store(envelope, raw) {
  const db = await pool.getConnection();
  try {
    await db.beginTransaction();
    const [rows] = await db.query(
      "SELECT last_seq FROM conversations WHERE id = ? FOR UPDATE",
      [envelope.conversation_id],
    );
    const seq = Number(rows[0].last_seq) + 1;
    const now = new Date();
    await db.query("UPDATE conversations SET last_seq = ? WHERE id = ?", [
      seq, envelope.conversation_id,
    ]);
    await db.query(
      "INSERT INTO messages (conversation_id, seq, message_id, sender_id, sender_key_version," +
        " epoch, nonce, ciphertext, signature, server_time) VALUES (?,?,?,?,?,?,?,?,?,?)",
      [
        envelope.conversation_id, seq, envelope.message_id, envelope.sender_id,
        envelope.sender_key_version, envelope.epoch, raw.nonce, raw.ciphertext, raw.signature, now,
      ],
    );
    await db.commit();
    return { seq, now };
  } catch (error) {
    await db.rollback().catch(() => {});
    throw error;
  } finally {
    db.release();
  }
}

let relaySeq = 0;

async function send(socket, envelope) {
  const user = socket.data.userId;
  const [raw, field] = validate(envelope, user);
  if (!raw) return fail("validation_error", "invalid envelope", field);
  const conv = await conversation(envelope.conversation_id);
  if (!conv.ids.includes(user)) return fail("not_found", "no such conversation");
  if (envelope.epoch !== conv.epoch) return fail("epoch_stale", "epoch is not current");
  let seq;
  let now;
  if (storage === "mysql") {
    ({ seq, now } = await store(envelope, raw));
  } else {
    seq = ++relaySeq;
    now = new Date();
  }
  const serverTime = now.toISOString();
  const message = { ...envelope, seq, server_time: serverTime };
  delete message.files;
  const rooms = conv.ids.map((id) => `user:${id}`);
  socket.to(rooms).emit("message:new", message);
  return {
    ok: true, conversation_id: envelope.conversation_id, message_id: envelope.message_id, seq,
    server_time: serverTime, duplicate: false,
  };
}

async function contacts(userId) {
  const [rows] = await pool.query(
    "SELECT DISTINCT b.user_id FROM conversation_members a JOIN conversation_members b" +
      " ON a.conversation_id = b.conversation_id WHERE a.user_id = ? AND b.user_id <> ?",
    [userId, userId],
  );
  return rows.map((r) => `user:${r.user_id}`);
}

async function announce(io, userId, event) {
  const rooms = await contacts(userId);
  if (rooms.length) io.to(rooms).emit(event, { user_id: userId });
}

// GET /api/v1/conversations/{id}/messages?limit=N: the newest page, as ours answers it.
async function history(req, res, url) {
  const match = /^\/api\/v1\/conversations\/([0-9a-f-]{36})\/messages$/.exec(url.pathname);
  const header = req.headers.authorization || "";
  const token = header.startsWith("Bearer ") ? header.slice(7) : "";
  const json = (status, body) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const [sessions] = await pool.query(
    "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id" +
      " WHERE s.id = ? AND s.expires_at > UTC_TIMESTAMP(3) AND NOT u.disabled",
    [createHash("sha256").update(token).digest("hex")],
  );
  if (!sessions.length) return json(401, fail("unauthorized", "log in").error);
  const conv = await conversation(match[1]);
  if (!conv.ids.includes(sessions[0].user_id)) return json(404, fail("not_found", "no").error);
  const limit = Math.min(200, Math.max(1, Number(url.searchParams.get("limit") || 50)));
  const [rows] = await pool.query(
    "SELECT conversation_id, seq, message_id, sender_id, sender_key_version, epoch, nonce," +
      " ciphertext, signature, server_time FROM messages WHERE conversation_id = ?" +
      " ORDER BY seq DESC LIMIT ?",
    [match[1], limit + 1],
  );
  const page = rows.slice(0, limit).reverse().map((r) => ({
    v: 1, suite: "p256-v1", conversation_id: r.conversation_id, epoch: r.epoch,
    message_id: r.message_id, sender_id: r.sender_id, sender_key_version: r.sender_key_version,
    nonce: r.nonce.toString("base64"), ciphertext: r.ciphertext.toString("base64"),
    signature: r.signature.toString("base64"), seq: Number(r.seq),
    server_time: new Date(r.server_time).toISOString(),
  }));
  return json(200, { messages: page, has_more: rows.length > limit });
}

const http = createServer((req, res) => {
  const url = new URL(req.url, "http://127.0.0.1");
  if (req.method === "GET" && url.pathname === "/api/v1/health") {
    res.writeHead(200, { "content-type": "application/json" });
    res.end('{"status":"ok"}');
    return;
  }
  if (req.method === "GET" && url.pathname.startsWith("/api/v1/conversations/")) {
    history(req, res, url).catch((error) => {
      console.error(error);
      res.writeHead(500);
      res.end();
    });
    return;
  }
  if (!url.pathname.startsWith("/socket.io/")) {
    res.writeHead(404);
    res.end();
  }
});

const io = new Server(http, {
  perMessageDeflate: deflate ? { threshold: 0 } : false,
  maxHttpBufferSize: 1024 * 1024,
  serveClient: false,
});

// Authentication as ours: the token in the auth payload, its SHA-256 names the session row.
io.use(async (socket, next) => {
  const token = socket.handshake.auth && socket.handshake.auth.token;
  if (typeof token !== "string" || !token || token.length > 256) {
    const error = new Error("connect with auth: {token: <session token>}");
    error.data = { code: "unauthorized", message: error.message };
    return next(error);
  }
  const sessionId = createHash("sha256").update(token).digest("hex");
  try {
    const [rows] = await pool.query(
      "SELECT s.user_id FROM sessions s JOIN users u ON u.id = s.user_id" +
        " WHERE s.id = ? AND s.expires_at > UTC_TIMESTAMP(3) AND NOT u.disabled",
      [sessionId],
    );
    if (!rows.length) {
      const error = new Error("invalid or expired session");
      error.data = { code: "unauthorized", message: error.message };
      return next(error);
    }
    socket.data.userId = rows[0].user_id;
    socket.data.sessionId = sessionId;
    return next();
  } catch (error) {
    return next(error);
  }
});

io.on("connection", (socket) => {
  const userId = socket.data.userId;
  socket.join([`user:${userId}`, `session:${socket.data.sessionId}`]);
  const count = (online.get(userId) || 0) + 1;
  online.set(userId, count);
  if (count === 1) announce(io, userId, "user:online").catch(console.error);

  socket.on("message:send", (envelope, ack) => {
    if (typeof ack !== "function") return;
    send(socket, envelope).then(ack, (error) => {
      console.error(error);
      ack(fail("internal_error", "internal error"));
    });
  });
  socket.on("disconnect", () => {
    const left = (online.get(userId) || 1) - 1;
    if (left) online.set(userId, left);
    else {
      online.delete(userId);
      announce(io, userId, "user:offline").catch(console.error);
    }
  });
});

http.listen(port, "127.0.0.1", () => {
  console.error(`peer: socket.io on http://127.0.0.1:${port}, storage ${storage}`);
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    pool.end().finally(() => process.exit(0));
  });
}
