"""Constants of the wire protocol (docs/protocol.md), shared by server and reference client.

Nothing here does I/O; both sides import these names so that a label or a limit
is written exactly once.
"""

from __future__ import annotations

import re
from typing import Final

PROTOCOL_VERSION: Final = 1
SUITE: Final = "p256-v1"

# Key derivation (section "Accounts and key derivation").
KDF_NAME: Final = "pbkdf2-sha256"
KDF_ITERATIONS: Final = 600_000
KDF_SALT_BYTES: Final = 16
MASTER_KEY_BYTES: Final = 32
HKDF_INFO_AUTH: Final = b"securechat/p256-v1/auth"
HKDF_INFO_WRAP: Final = b"securechat/p256-v1/wrap"
HKDF_INFO_EPOCH_WRAP: Final = b"securechat/p256-v1/epoch-wrap"

# Labels that open every associated-data string (section "Associated data").
LABEL_KEY_BLOB: Final = "securechat/p256-v1/key-blob"
LABEL_EPOCH_KEY: Final = "securechat/p256-v1/epoch-key"
LABEL_MESSAGE: Final = "securechat/p256-v1/message"

# Sizes, in bytes.
NONCE_BYTES: Final = 12
GCM_TAG_BYTES: Final = 16
EPOCH_KEY_BYTES: Final = 32
P256_PUBLIC_BYTES: Final = 65  # uncompressed SEC1 point, 0x04 || X || Y
P256_SIGNATURE_BYTES: Final = 64  # IEEE P1363, r || s
AUTH_KEY_BYTES: Final = 32

# Safety numbers (Signal's numeric fingerprint).
SAFETY_ITERATIONS: Final = 5200
SAFETY_VERSION: Final = 0

# Identifiers and names.
USERNAME_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{2,31}$")
UUID_RE: Final = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
)
TITLE_MAX_CHARS: Final = 100
GROUP_MAX_MEMBERS: Final = 1000
