"""The lab layouts: which hosts exist and which collection groups each belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

FRONT: Final = "securechat_front"
APP: Final = "securechat_app"
DB: Final = "securechat_db"
REDIS: Final = "securechat_redis"
# The Docker deployment's group (playbooks/docker.yml): its hosts may run containers.
DOCKER: Final = "docker_hosts"
GROUPS: Final = (FRONT, APP, DB, REDIS, DOCKER)
# Groups whose host serves the chat's https front (and so names the site's public URL).
FRONTS: Final = (FRONT, DOCKER)


@dataclass(frozen=True)
class HostSpec:
    name: str
    groups: tuple[str, ...]


def runs_containers(groups: tuple[str, ...] | list[str]) -> bool:
    """Whether a host of these groups must be able to run Docker containers."""
    return DOCKER in groups


LAYOUTS: Final[dict[str, tuple[HostSpec, ...]]] = {
    "single": (HostSpec("chat1", (FRONT, APP, DB)),),
    "distributed": (HostSpec("app1", (FRONT, APP)), HostSpec("db1", (DB,))),
    "ha": (
        HostSpec("front1", (FRONT,)),
        HostSpec("app1", (APP,)),
        HostSpec("app2", (APP,)),
        HostSpec("db1", (DB, REDIS)),
    ),
    "docker": (HostSpec("docker1", (DOCKER,)),),
}


class LayoutError(ValueError):
    pass


def layout(name: str) -> tuple[HostSpec, ...]:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise LayoutError(f"unknown layout {name!r}: one of {', '.join(LAYOUTS)}") from None
