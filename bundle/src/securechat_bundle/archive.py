"""Deterministic tarballs: sorted entries, fixed mtimes and owners, gzip without a timestamp."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
from pathlib import Path


class UnsafeArchiveError(ValueError):
    pass


def write_tarball(source: Path, output: Path, mtime: int) -> None:
    """Pack directory `source` (as its own name) into `output` (.tar.gz), reproducibly."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for path in [source, *sorted(source.rglob("*"))]:
            info = tar.gettarinfo(
                str(path), arcname=str(Path(source.name) / path.relative_to(source))
            )
            info.mtime = mtime
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            executable = bool(info.mode & stat.S_IXUSR)
            info.mode = 0o755 if path.is_dir() or executable else 0o644
            if path.is_file():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    os.replace(partial, output)


def safe_extract(archive: Path, destination: Path) -> Path:
    """Extract regular files and directories only, refusing anything that could escape;
    return the single top-level directory."""
    tops: set[str] = set()
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if member.name.startswith("/") or ".." in parts or not parts:
                raise UnsafeArchiveError(f"unsafe path in the bundle: {member.name!r}")
            if not (member.isfile() or member.isdir()):
                raise UnsafeArchiveError(f"not a regular file in the bundle: {member.name!r}")
            tops.add(parts[0])
        if len(tops) != 1:
            raise UnsafeArchiveError("the bundle must hold exactly one top-level directory")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(destination, filter="data")
        else:  # Python before 3.11.4 (Debian 12 ships 3.11.2): members were checked above
            tar.extractall(destination)  # noqa: S202
    return destination / tops.pop()
