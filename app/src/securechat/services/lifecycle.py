"""Audit entries for the server's own life: starts, settings changes, schema upgrades."""

from __future__ import annotations

import hashlib
import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from securechat import __version__
from securechat.db.models import AuditEntry
from securechat.security.audit import DETAIL_STRING_MAX, AuditLog
from securechat.settings import Settings


def record_startup(db: Session, audit: AuditLog, settings: Settings, schema: str) -> None:
    """Append `server.started`, preceded by `settings.changed` naming what changed."""
    current = settings.public_view()
    digest = hashlib.sha256("\n".join(current).encode()).hexdigest()
    previous_details = db.scalar(
        select(AuditEntry.details)
        .where(AuditEntry.event == "server.started")
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    if previous_details is not None:
        previous = json.loads(previous_details)
        if previous.get("settings_digest") != digest:
            # Stored values are cut to a length; the digest is what decides.
            shown = {line[:DETAIL_STRING_MAX] for line in current}
            before = set(previous.get("settings", []))
            changed = sorted({line.split("=", 1)[0] for line in shown ^ before}) or [
                "(long values)"
            ]
            audit.append(db, "settings.changed", changed=changed)
    audit.append(
        db,
        "server.started",
        version=__version__,
        schema=schema,
        settings=current,
        settings_digest=digest,
    )


def record_schema_upgrade(db: Session, audit: AuditLog, before: str | None, after: str) -> None:
    if before != after:
        audit.append(db, "schema.upgraded", before=before or "empty", after=after)
