from __future__ import annotations

import sys
import types

import pytest

from fake_checks import make_check
from securechat_verify import registry
from securechat_verify.registry import CHECK_IDS, CheckUnavailable, load_check
from securechat_verify.result import Status
from securechat_verify.target import Target

MODULE = "securechat_verify.checks.realtime"


def fake_module(monkeypatch: pytest.MonkeyPatch, **attributes: object) -> None:
    module = types.ModuleType(MODULE)
    for name, value in attributes.items():
        setattr(module, name, value)
    monkeypatch.setitem(sys.modules, MODULE, module)


def test_ids_and_modules() -> None:
    assert CHECK_IDS == (
        "connectivity",
        "tls",
        "webcrypto",
        "socket",
        "e2e",
        "isolation",
        "firewall",
        "services",
    )
    assert set(registry.CHECK_MODULES) == set(CHECK_IDS)
    assert registry.CHECK_MODULES["socket"] == "realtime"


def test_load_check_takes_the_module_check(monkeypatch: pytest.MonkeyPatch) -> None:
    check = make_check("socket")
    fake_module(monkeypatch, CHECK=check)
    assert load_check("socket") is check


def test_all_checks_in_display_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for check_id, module in registry.CHECK_MODULES.items():
        fake = types.ModuleType(module)
        fake.CHECK = make_check(check_id)  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, f"securechat_verify.checks.{module}", fake)
    assert [check.id for check in registry.all_checks()] == list(CHECK_IDS)


def test_a_module_that_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, MODULE, None)  # import raises ImportError
    with pytest.raises(
        CheckUnavailable, match=r"cannot import securechat_verify\.checks\.realtime"
    ):
        load_check("socket")
    with pytest.raises(CheckUnavailable):
        registry.all_checks()


@pytest.mark.parametrize(
    ("check", "reason"),
    [(None, "no CHECK"), ("a string", "no CHECK"), (make_check("tls"), "has id 'tls'")],
)
def test_a_module_with_a_bad_check(
    monkeypatch: pytest.MonkeyPatch, check: object, reason: str
) -> None:
    fake_module(monkeypatch, CHECK=check)
    with pytest.raises(CheckUnavailable, match=reason):
        load_check("socket")


def test_unknown_id() -> None:
    with pytest.raises(CheckUnavailable, match="unknown check id"):
        load_check("nope")


def test_unavailable_stand_in_reports_an_error() -> None:
    check = registry.unavailable_check("e2e", "ModuleNotFoundError: playwright")
    (finding,) = check.run(Target(url="https://chat.lan"))
    assert finding.status is Status.ERROR
    assert "ModuleNotFoundError: playwright" in finding.summary
    assert finding.hint is not None
    assert "--skip e2e" in finding.hint
