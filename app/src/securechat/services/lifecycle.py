"""Audit entries for the server's own life: starts, settings changes, schema upgrades."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from securechat import __version__
from securechat.db.models import AuditEntry
from securechat.security.audit import AuditLog
from securechat.settings import Settings


def record_startup(db: Session, audit: AuditLog, settings: Settings, schema: str) -> None:
    """Append `server.started`, preceded by `settings.changed` naming what changed."""
    current = settings.public_view()
    previous_details = db.scalar(
        select(AuditEntry.details)
        .where(AuditEntry.event == "server.started")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if previous_details is not None:
        before = set(json.loads(previous_details).get("settings", []))
        changed = sorted({line.split("=", 1)[0] for line in set(current) ^ before})
        if changed:
            audit.append(db, "settings.changed", changed=changed)
    audit.append(db, "server.started", version=__version__, schema=schema, settings=current)


def record_schema_upgrade(db: Session, audit: AuditLog, before: str | None, after: str) -> None:
    if before != after:
        audit.append(db, "schema.upgraded", before=before or "empty", after=after)
