"""The tamper-evident audit trail: an append-only log whose entries are chained by HMAC.

Each entry's MAC is HMAC-SHA256(key, previous MAC || canonical content); the key comes from
the settings and is never stored in the database. Changing, deleting, inserting or reordering
any entry breaks the chain at that entry; deleting the newest entries is caught by the
`audit_head` row, which holds the last id and MAC.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from securechat.db.models import AuditEntry, AuditHead
from securechat.services import clock

HEAD_ID = 1
GENESIS_MAC = "0" * 64
DETAIL_STRING_MAX = 200
DETAILS_MAX = 2000
DetailValue = str | int | bool | None | list[str]


@dataclass(frozen=True)
class Record:
    """One entry as stored: the fields the MAC covers, and the MAC."""

    id: int
    created_at: str
    event: str
    actor_id: str | None
    target_id: str | None
    ip: str | None
    details: str  # canonical JSON object
    mac: str

    def _covered(self) -> dict[str, Any]:
        """The fields the MAC covers (everything but the MAC)."""
        return {
            "id": self.id,
            "created_at": self.created_at,
            "event": self.event,
            "actor_id": self.actor_id,
            "target_id": self.target_id,
            "ip": self.ip,
            "details": self.details,
        }

    def content(self) -> bytes:
        return canonical_json(self._covered())

    def to_json(self) -> dict[str, Any]:
        return {**self._covered(), "details": json.loads(self.details), "mac": self.mac}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_id: int | None = None
    reason: str = ""


def canonical_json(value: Any) -> bytes:
    # ASCII-only, no whitespace: one byte sequence per value, and no newline or control
    # character can reach an exported line.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def encode_details(details: dict[str, DetailValue]) -> str:
    """Bound and normalize details: no content ever goes here, only sizes, ids and names."""
    clean: dict[str, DetailValue] = {}
    for name, value in details.items():
        if isinstance(value, str):
            clean[name[:64]] = value[:DETAIL_STRING_MAX]
        elif isinstance(value, list):
            clean[name[:64]] = [str(item)[:DETAIL_STRING_MAX] for item in value[:50]]
        else:
            clean[name[:64]] = value
    encoded = canonical_json(clean).decode()
    if len(encoded) > DETAILS_MAX:
        encoded = canonical_json({"truncated": True}).decode()
    return encoded


def chain_mac(key: bytes, previous_mac: str, content: bytes) -> str:
    return hmac.new(key, previous_mac.encode() + b"\n" + content, hashlib.sha256).hexdigest()


def head_seal(key: bytes, last_id: int, last_mac: str) -> str:
    """What `audit_head` stores: keyed, so that deleting the newest entries and pointing the
    head at an earlier one needs the key (or a head value copied when that entry was last)."""
    return hmac.new(key, f"head\n{last_id}\n{last_mac}".encode(), hashlib.sha256).hexdigest()


def verify_records(
    key: bytes, records: Iterable[Record], *, previous_mac: str = GENESIS_MAC, previous_id: int = 0
) -> Verdict:
    """Walk the chain from (previous_id, previous_mac); name the first entry that is wrong."""
    checked = 0
    for record in records:
        if record.id != previous_id + 1:
            return Verdict(False, checked, record.id, f"expected entry {previous_id + 1} next")
        expected = chain_mac(key, previous_mac, record.content())
        if not hmac.compare_digest(expected, record.mac):
            return Verdict(
                False, checked, record.id, "MAC mismatch: changed, inserted or reordered"
            )
        previous_id, previous_mac = record.id, record.mac
        checked += 1
    return Verdict(True, checked, None, "")


def record_of(entry: AuditEntry) -> Record:
    return Record(
        id=entry.id,
        created_at=clock.iso(entry.created_at),
        event=entry.event,
        actor_id=entry.actor_id,
        target_id=entry.target_id,
        ip=entry.ip,
        details=entry.details,
        mac=entry.mac,
    )


class AuditLog:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def append(
        self,
        db: Session,
        event: str,
        *,
        actor_id: str | None = None,
        target_id: str | None = None,
        ip: str | None = None,
        **details: DetailValue,
    ) -> None:
        """Add an entry in the caller's transaction (it commits or rolls back with the action)."""
        head = db.scalar(select(AuditHead).where(AuditHead.id == HEAD_ID).with_for_update())
        if head is None:
            raise RuntimeError("audit_head row missing: run `securechat db upgrade`")
        previous_mac = GENESIS_MAC
        if head.last_id:
            previous_mac = (
                db.scalar(select(AuditEntry.mac).where(AuditEntry.id == head.last_id))
                or GENESIS_MAC
            )
        moment = clock.now()
        record = Record(
            id=head.last_id + 1,
            created_at=clock.iso(moment),
            event=event,
            actor_id=actor_id,
            target_id=target_id,
            ip=ip[:64] if ip else None,
            details=encode_details(details),
            mac="",
        )
        mac = chain_mac(self._key, previous_mac, record.content())
        db.add(
            AuditEntry(
                id=record.id,
                created_at=moment,
                event=event,
                actor_id=actor_id,
                target_id=target_id,
                ip=record.ip,
                details=record.details,
                mac=mac,
            )
        )
        head.last_id, head.last_mac = record.id, head_seal(self._key, record.id, mac)
        db.flush()

    def verify(self, db: Session) -> Verdict:
        verdict = verify_records(self._key, self.records(db))
        if not verdict.ok:
            return verdict
        head = db.get(AuditHead, HEAD_ID)
        last = db.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1))
        if last is None:
            expected = (0, GENESIS_MAC)
        else:
            expected = (last.id, head_seal(self._key, last.id, last.mac))
        if head is None or (head.last_id, head.last_mac) != expected:
            first_missing = (last.id if last else 0) + 1
            return Verdict(False, verdict.checked, first_missing, "entries missing at the end")
        return verdict

    def records(self, db: Session, batch: int = 1000) -> Iterator[Record]:
        after = 0
        while True:
            rows = db.scalars(
                select(AuditEntry).where(AuditEntry.id > after).order_by(AuditEntry.id).limit(batch)
            ).all()
            if not rows:
                return
            records = [record_of(row) for row in rows]
            after = records[-1].id
            # End the read transaction between batches: on SQLite every transaction holds the
            # write lock, and a long walk must not stall the server.
            db.rollback()
            yield from records

    def search(
        self,
        db: Session,
        *,
        event: str | None = None,
        actor_id: str | None = None,
        target_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """Newest first, `limit` at a time; page with `before_id` = the last id seen."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
        if event:
            query = query.where(AuditEntry.event == event)
        if actor_id:
            query = query.where(AuditEntry.actor_id == actor_id)
        if target_id:
            query = query.where(AuditEntry.target_id == target_id)
        if since:
            query = query.where(AuditEntry.created_at >= since)
        if until:
            query = query.where(AuditEntry.created_at < until)
        if before_id:
            query = query.where(AuditEntry.id < before_id)
        rows = db.scalars(query).all()
        return {
            "entries": [record_of(row).to_json() for row in rows[:limit]],
            "has_more": len(rows) > limit,
        }
