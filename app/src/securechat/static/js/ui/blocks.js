// The users I blocked (GET /blocks), kept for the views; the store does not hold them.
const blocked = new Map();
const listeners = new Set();

function changed() {
  for (const listener of listeners) listener();
}

export async function loadBlocks(chat) {
  const list = await chat.blocks();
  blocked.clear();
  for (const entry of Array.isArray(list) ? list : (list && list.blocks) || []) blocked.set(entry.user_id, entry);
  changed();
}

export function isBlocked(userId) {
  return blocked.has(userId);
}

export async function setBlocked(chat, userId, on) {
  if (on) await chat.block(userId);
  else await chat.unblock(userId);
  if (on) blocked.set(userId, { user_id: userId });
  else blocked.delete(userId);
  changed();
}

export function onBlocksChanged(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function resetBlocks() {
  blocked.clear();
}
