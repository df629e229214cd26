"""The lab layouts: which hosts exist and which collection groups each belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FRONT: Final = "securechat_front"
APP: Final = "securechat_app"
DB: Final = "securechat_db"
REDIS: Final = "securechat_redis"
GROUPS: Final = (FRONT, APP, DB, REDIS)


@dataclass(frozen=True)
class HostSpec:
    name: str
    groups: tuple[str, ...]


LAYOUTS: Final[dict[str, tuple[HostSpec, ...]]] = {
    "single": (HostSpec("chat1", (FRONT, APP, DB)),),
    "distributed": (HostSpec("app1", (FRONT, APP)), HostSpec("db1", (DB,))),
    "ha": (
        HostSpec("front1", (FRONT,)),
        HostSpec("app1", (APP,)),
        HostSpec("app2", (APP,)),
        HostSpec("db1", (DB, REDIS)),
    ),
}


class LayoutError(ValueError):
    pass


def layout(name: str) -> tuple[HostSpec, ...]:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(f"unknown layout {name!r}: one of {', '.join(LAYOUTS)}") from None
