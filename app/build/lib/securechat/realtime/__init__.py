"""Socket.IO: the hub that fans events out, presence, and the thin event handlers."""
