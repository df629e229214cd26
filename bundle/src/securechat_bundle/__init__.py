"""Build and verify the signed offline bundle of Secure Chat M2M.

Standard library only, so that `offline-bundle.sh verify` runs on an ops laptop that has
nothing but Python 3.11 and gpg.
"""

from __future__ import annotations

__version__ = "0.1.0"
