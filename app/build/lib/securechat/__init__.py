"""Secure Chat M2M: an end-to-end encrypted chat server for air-gapped LANs."""

from __future__ import annotations

__version__ = "0.1.0"
