"""The audit chain: every changed byte, deleted, inserted or swapped entry is detected."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, select, update

from securechat.cli import main
from securechat.db.engine import make_engine, make_session_factory
from securechat.db.models import AuditEntry, AuditHead
from securechat.security.audit import (
    GENESIS_MAC,
    AuditLog,
    Record,
    chain_mac,
    encode_details,
    head_seal,
    verify_records,
)
from tests.conftest import server_environment

KEY = b"k" * 32
ENTRIES = 1000


def build_chain(count: int) -> list[Record]:
    records: list[Record] = []
    previous = GENESIS_MAC
    for index in range(1, count + 1):
        record = Record(
            id=index,
            created_at=f"2026-11-25T10:{index // 60 % 60:02d}:{index % 60:02d}.000Z",
            event=("login.succeeded", "block.added", "file.uploaded")[index % 3],
            actor_id=f"00000000-0000-4000-8000-{index:012d}",
            target_id=None if index % 2 else f"10000000-0000-4000-8000-{index:012d}",
            ip="10.0.0.7" if index % 5 else None,
            details=encode_details({"size": index * 10, "note": "x"}),
            mac="",
        )
        mac = chain_mac(KEY, previous, record.content())
        records.append(dataclasses.replace(record, mac=mac))
        previous = mac
    return records


STORED_FIELDS = ("created_at", "event", "actor_id", "target_id", "ip", "details", "mac")


def test_intact_chain_verifies() -> None:
    chain = build_chain(ENTRIES)
    assert verify_records(KEY, chain) == verify_records(KEY, chain)
    assert verify_records(KEY, chain).ok
    assert verify_records(KEY, chain).checked == ENTRIES
    assert not verify_records(b"another key" * 3, chain).ok


def test_every_flipped_byte_is_detected_at_its_entry() -> None:
    """Flip each byte of each stored field of every entry, one at a time.

    The verifier is a fold over the entries, so entries before the flipped one verify exactly
    as in the intact chain; it is run from there (with the intact state) to keep this fast.
    """
    chain = build_chain(ENTRIES)
    flips = 0
    for position, record in enumerate(chain):
        previous_mac = chain[position - 1].mac if position else GENESIS_MAC
        for field in STORED_FIELDS:
            value = getattr(record, field)
            if value is None:
                continue
            raw = value.encode()
            for index in range(len(raw)):
                mutated = bytearray(raw)
                mutated[index] ^= 0x01
                tampered = dataclasses.replace(record, **{field: mutated.decode("latin-1")})
                verdict = verify_records(
                    KEY,
                    [tampered, *chain[position + 1 : position + 2]],
                    previous_mac=previous_mac,
                    previous_id=record.id - 1,
                )
                assert not verdict.ok, (record.id, field, index)
                assert verdict.bad_id == record.id
                flips += 1
        # ids are stored too: any other id breaks the sequence or the MAC.
        for wrong in (record.id - 1, record.id + 1, record.id ^ 0x100):
            tampered = dataclasses.replace(record, id=wrong)
            verdict = verify_records(
                KEY, [tampered], previous_mac=previous_mac, previous_id=record.id - 1
            )
            assert not verdict.ok
    assert flips > ENTRIES * 150  # every byte of every entry, about 185 per entry


def test_deleted_inserted_and_swapped_entries_are_detected() -> None:
    chain = build_chain(50)
    deleted = chain[:20] + chain[21:]
    assert verify_records(KEY, deleted).bad_id == 22
    swapped = [*chain[:10], chain[11], chain[10], *chain[12:]]
    assert verify_records(KEY, swapped).bad_id == 12
    # Renumbering after a deletion does not help: the MACs no longer chain.
    renumbered = chain[:20] + [dataclasses.replace(r, id=r.id - 1) for r in chain[21:]]
    assert verify_records(KEY, renumbered).bad_id == 21
    forged = dataclasses.replace(chain[5], details=encode_details({"size": 1}))
    assert verify_records(KEY, [*chain[:5], forged, *chain[6:]]).bad_id == 6


def test_details_cannot_forge_a_log_line() -> None:
    encoded = encode_details({"reason": "ok\n2026-01-01 admin.granted \u202e\x00", "n": 1})
    assert "\n" not in encoded
    assert "\x00" not in encoded
    assert encoded.isascii()
    assert json.loads(encoded)["reason"].startswith("ok\n")


def _append(database_url: str, count: int) -> None:
    engine = make_engine(database_url)
    audit = AuditLog(KEY)
    with make_session_factory(engine)() as db:
        for index in range(count):
            audit.append(db, "test.event", actor_id=None, index=index)
        db.commit()
    engine.dispose()


def _verify(database_url: str) -> Any:
    engine = make_engine(database_url)
    with make_session_factory(engine)() as db:
        verdict = AuditLog(KEY).verify(db)
    engine.dispose()
    return verdict


def test_tampering_in_the_database_is_detected(database_url: str) -> None:
    from securechat.db.migrate import upgrade

    upgrade(database_url)
    _append(database_url, 30)
    assert _verify(database_url).ok
    engine = make_engine(database_url)
    with engine.begin() as connection:
        ids = list(connection.scalars(select(AuditEntry.id).order_by(AuditEntry.id)))
        last = ids[-1]
        connection.execute(delete(AuditEntry).where(AuditEntry.id == last))
    verdict = _verify(database_url)
    assert not verdict.ok
    assert verdict.bad_id == last  # the tail deletion is caught by the head row
    # Pointing the head at the new last entry needs the key: the head is sealed.
    with engine.begin() as connection:
        previous = connection.execute(
            select(AuditEntry.id, AuditEntry.mac).where(AuditEntry.id == ids[-2])
        ).one()
        connection.execute(update(AuditHead).values(last_id=previous.id, last_mac=previous.mac))
    assert not _verify(database_url).ok
    with engine.begin() as connection:
        connection.execute(
            update(AuditHead).values(
                last_id=previous.id, last_mac=head_seal(KEY, previous.id, previous.mac)
            )
        )
    assert _verify(database_url).ok  # (only someone holding the key can do this)
    with engine.begin() as connection:
        connection.execute(
            update(AuditEntry).where(AuditEntry.id == ids[3]).values(details='{"index":99}')
        )
    assert _verify(database_url).bad_id == ids[3]
    engine.dispose()


def test_cli_verify_and_export(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'audit.db'}"
    env = server_environment(database_url, SECURECHAT_AUDIT_KEY="a" * 40)
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(main, ["admin", "create", "audited-admin"], env=env).exit_code == 0
    result = runner.invoke(main, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "intact" in result.output
    exported = json.loads(runner.invoke(main, ["audit", "export", "--json"], env=env).output)
    events = [entry["event"] for entry in exported]
    assert "schema.upgraded" in events
    assert "account.registered" in events
    assert "admin.granted" in events
    # No secret reaches the trail.
    text = json.dumps(exported)
    assert "audited-admin" not in text or "password" not in text
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.execute(update(AuditEntry).where(AuditEntry.id == 1).values(ip="6.6.6.6"))
    engine.dispose()
    result = runner.invoke(main, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert "entry 1" in result.output
    wrong_key = server_environment(database_url, SECURECHAT_AUDIT_KEY="b" * 40)
    assert runner.invoke(main, ["audit", "verify"], env=wrong_key).exit_code == 1


@pytest.mark.parametrize("count", [0, 1])
def test_small_chains(count: int) -> None:
    assert verify_records(KEY, build_chain(count)).ok


def test_settings_changes_are_recorded(tmp_path: Path) -> None:
    from securechat.services.lifecycle import record_startup
    from securechat.settings import Settings

    database_url = f"sqlite:///{tmp_path / 'settings.db'}"
    from securechat.db.migrate import upgrade

    upgrade(database_url)
    engine = make_engine(database_url)
    audit = AuditLog(KEY)
    for overrides in (
        {},
        {},
        {"SECURECHAT_MAX_UPLOAD_BYTES": "2048", "SECURECHAT_UPLOAD_DIR": "/x" * 150},
    ):
        settings = Settings.from_env(server_environment(database_url, **overrides))
        with make_session_factory(engine)() as db:
            record_startup(db, audit, settings, "0002")
            db.commit()
    with make_session_factory(engine)() as db:
        events = [(r.event, json.loads(r.details)) for r in audit.records(db)]
        assert audit.verify(db).ok
    engine.dispose()
    names = [event for event, _ in events]
    assert names == ["server.started", "server.started", "settings.changed", "server.started"]
    assert events[2][1]["changed"] == ["MAX_UPLOAD_BYTES", "UPLOAD_DIR"]
