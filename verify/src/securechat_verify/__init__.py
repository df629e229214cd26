"""securechat-verify: the post-deployment check that ops run after deploying Secure Chat M2M."""

from __future__ import annotations

__version__ = "0.1.0"
