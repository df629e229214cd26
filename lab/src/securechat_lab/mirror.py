"""The Debian mirror of this machine's own apt sources.

Read the way securechat_bundle.debian.host_mirror reads it (same rule: the first http(s) URI
ending in /debian, deb822 or one-line format), not imported, so that the lab depends on the
standard library and PyYAML only. No mirror host name is written in the code.
"""

from __future__ import annotations

import re
from pathlib import Path

from securechat_lab.commands import LabError

_DEBIAN_URI = re.compile(r"(https?://\S+/debian)/?(\s|$)")


def host_mirror(sources: Path = Path("/etc/apt")) -> str:
    candidates = sorted(sources.glob("sources.list.d/*.sources"))
    candidates += [sources / "sources.list", *sorted(sources.glob("sources.list.d/*.list"))]
    for path in candidates:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            match = _DEBIAN_URI.search(line)
            if match and not line.lstrip().startswith("#"):
                return match.group(1)
    raise LabError(f"no Debian mirror in {sources}: the base image is built on a Debian machine")
