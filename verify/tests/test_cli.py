from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fake_checks import PEM_CERT, Recorder, install, make_check, raising_check
from securechat_verify import __version__, cli
from securechat_verify.exit_codes import EXIT_COULD_NOT_RUN, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from securechat_verify.registry import CHECK_IDS
from securechat_verify.remote import LocalRunner, SshRunner
from securechat_verify.result import Severity, errored, failed, passed, skipped, warned

URL = "https://chat.example.lan"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECURECHAT_VERIFY_URL", raising=False)
    monkeypatch.delenv("SECURECHAT_VERIFY_CA", raising=False)
    monkeypatch.setenv("COLUMNS", "200")


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.main, list(args), env=env)


def run_all(*args: str, env: dict[str, str] | None = None) -> Result:
    return invoke("all", *args, env=env)


def usage_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == EXIT_USAGE, result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def config_error(result: Result, *fragments: str) -> None:
    usage_error(result, *fragments)
    assert result.stderr.startswith("securechat-verify: error: ")
    assert " — " in result.stderr


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    (site / "group_vars").mkdir(parents=True)
    (site / "hosts.yml").write_text(
        "securechat_app:\n  hosts:\n    app1: {ansible_host: 10.0.0.20, ansible_user: ops}\n"
    )
    (site / "group_vars/all.yml").write_text(
        "securechat_public_url: https://inventory.lan\nsecurechat_ca_cert: ca.crt\n"
    )
    (site / "ca.crt").write_text(PEM_CERT)
    return site


# --- exit codes ---------------------------------------------------------------------------


def test_all_passed_with_warnings_exits_0(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        make_check("tls", warned("HSTS max-age is short", "raise max-age")),
        make_check("socket", failed("slow upgrade", "check the proxy"), severity=Severity.WARNING),
        make_check("isolation", skipped("no host to inspect")),
    )
    result = run_all("--url", URL)
    assert result.exit_code == EXIT_OK, result.output
    assert "HSTS max-age is short" in result.stdout
    assert "hint: raise max-age" in result.stdout
    assert "hint: check the proxy" in result.stdout
    assert "8 checks: 5 pass, 2 warn, 1 skip" in result.stdout


def test_a_failure_exits_1_even_with_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        make_check("tls", failed("certificate expired", "renew it")),
        make_check("e2e", errored("could not log in", "create the account")),
    )
    result = run_all("--url", URL)
    assert result.exit_code == EXIT_FAILED
    assert "certificate expired" in result.stdout
    assert "hint: renew it" in result.stdout


def test_an_error_without_failure_exits_3(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, make_check("e2e", errored("could not log in", "create the account")))
    assert run_all("--url", URL).exit_code == EXIT_COULD_NOT_RUN


def test_a_crashing_check_exits_3_and_the_others_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = Recorder()
    install(monkeypatch, raising_check("tls", ZeroDivisionError("oops")), recorder=recorder)
    result = run_all("--url", URL)
    assert result.exit_code == EXIT_COULD_NOT_RUN
    assert "this is a bug in securechat-verify" in result.stdout
    assert "ZeroDivisionError: oops" in result.stdout
    assert sorted(recorder.ran) == sorted(set(CHECK_IDS) - {"tls"})


def test_a_check_that_cannot_be_loaded_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, unavailable=("webcrypto",))
    result = run_all("--url", URL, "--json")
    assert result.exit_code == EXIT_COULD_NOT_RUN
    webcrypto = json.loads(result.stdout)["checks"][2]
    assert webcrypto["id"] == "webcrypto"
    assert webcrypto["status"] == "error"
    assert "No module named 'nothing'" in webcrypto["findings"][0]["summary"]
    assert "--skip webcrypto" in webcrypto["findings"][0]["hint"]


# --- usage and configuration errors (exit 2) -----------------------------------------------


def test_neither_url_nor_inventory() -> None:
    usage_error(run_all(), "--url", "-i")


@pytest.mark.parametrize("option", ["--only", "--skip"])
def test_unknown_check_ids(option: str) -> None:
    result = run_all("--url", URL, option, "tls,nope", option, "also-bad")
    usage_error(result, option, "'also-bad', 'nope'", "valid checks: " + ", ".join(CHECK_IDS))


@pytest.mark.parametrize(
    "args",
    [
        ("--only", "tls", "--skip", "tls"),
        ("--only", ""),
        ("--only", " , "),
        ("--skip", ",".join(CHECK_IDS)),
    ],
)
def test_nothing_selected(args: tuple[str, ...]) -> None:
    usage_error(run_all("--url", URL, *args), "nothing selected")


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://chat.lan", "scheme 'ftp'"),
        ("chat.example.lan", "scheme ''"),
        ("https://", "no host"),
    ],
)
def test_bad_url(url: str, fragment: str) -> None:
    config_error(run_all("--url", url), fragment, "https://chat.example.lan")


def test_missing_ca_file(tmp_path: Path) -> None:
    result = run_all("--url", URL, "--ca", str(tmp_path / "ca.crt"))
    config_error(result, f"the CA file {tmp_path / 'ca.crt'} does not exist", "--ca")


def test_ca_that_is_a_key(tmp_path: Path) -> None:
    key = tmp_path / "ca.key"
    key.write_text("-----BEGIN PRIVATE KEY-----\n")
    config_error(run_all("--url", URL, "--ca", str(key)), "contains a private key")


def test_inventory_errors(inventory: Path) -> None:
    config_error(run_all("-i", str(inventory / "missing")), "does not exist", "-i inventory/")
    (inventory / "hosts.yml").write_text("securechat_app: {hosts: {app1: {ansible_port: x}}}\n")
    config_error(run_all("-i", str(inventory)), str(inventory / "hosts.yml"), "ansible_port")


def test_local_with_inventory(inventory: Path) -> None:
    usage_error(run_all("-i", str(inventory), "--local"), "--local", "ansible_connection")


@pytest.mark.parametrize(
    "args",
    [
        ("--timeout", "0"),
        ("--timeout", "soon"),
        ("--concurrency", "0"),
        ("--min-kdf-iterations", "0"),
        ("--chromium", "/nonexistent/chromium"),
        ("--bogus",),
    ],
)
def test_bad_options(args: tuple[str, ...]) -> None:
    usage_error(run_all("--url", URL, *args))


def test_junit_directory_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch)
    result = run_all("--url", URL, "--junit", str(tmp_path / "no" / "report.xml"))
    config_error(result, "JUnit", "is not a directory")


# --- output --------------------------------------------------------------------------------


def mixed(monkeypatch: pytest.MonkeyPatch) -> None:
    install(
        monkeypatch,
        make_check(
            "connectivity", passed("chat.example.lan resolves", "chat.example.lan", addresses=2)
        ),
        make_check("tls", passed("chain verifies"), failed("expired", "renew it", "front1:443")),
        make_check("webcrypto", warned("inline styles", "drop unsafe-inline")),
        make_check("e2e", errored("no account", "create one")),
        make_check("isolation", skipped("no host to inspect")),
    )


def test_json_has_the_same_findings_as_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    mixed(monkeypatch)
    table = run_all("--url", URL)
    as_json = run_all("--url", URL, "--json")
    assert table.exit_code == as_json.exit_code == EXIT_FAILED
    data = json.loads(as_json.stdout)
    assert data["url"] == URL
    assert data["version"] == __version__
    assert data["exit_code"] == EXIT_FAILED
    assert [check["id"] for check in data["checks"]] == list(CHECK_IDS)
    assert data["summary"] == {"checks": 8, "pass": 4, "warn": 1, "fail": 1, "error": 1, "skip": 1}
    for check in data["checks"]:
        assert check["id"] in table.stdout
        for finding in check["findings"]:
            assert finding["summary"] in table.stdout
            assert finding["status"] in table.stdout
            if finding["status"] in ("warn", "fail", "error"):
                assert f"hint: {finding['hint']}" in table.stdout
            if finding["target"]:
                assert finding["target"] in table.stdout
    assert data["checks"][0]["findings"][0]["metrics"] == {"addresses": 2}
    assert "│" not in as_json.stdout


def test_junit_report(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    mixed(monkeypatch)
    report = tmp_path / "junit.xml"
    result = run_all("--url", URL, "--junit", str(report), "--json")
    assert result.exit_code == EXIT_FAILED
    json.loads(result.stdout)  # --junit is in addition to the normal output
    suite = ET.parse(report).getroot()
    assert suite.get("name") == "securechat-verify"
    cases = {case.get("classname"): case for case in suite.iter("testcase")}
    assert list(cases) == [f"securechat_verify.{check_id}" for check_id in CHECK_IDS]
    failure = cases["securechat_verify.tls"].find("failure")
    assert failure is not None
    assert (failure.get("message"), failure.text) == ("expired", "renew it")
    error = cases["securechat_verify.e2e"].find("error")
    assert error is not None
    assert error.get("message") == "no account"
    assert cases["securechat_verify.isolation"].find("skipped") is not None
    webcrypto = cases["securechat_verify.webcrypto"]
    assert webcrypto.find("failure") is None
    assert "inline styles" in (webcrypto.findtext("system-out") or "")


def test_progress_goes_to_stderr_and_results_to_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, make_check("tls", failed("expired", "renew it")))
    result = run_all("--url", URL, "--only", "tls,socket")
    assert "running tls…" in result.stderr
    assert "tls: fail (" in result.stderr
    assert "socket: pass (" in result.stderr
    assert "running" not in result.stdout
    assert "expired" in result.stdout
    assert "expired" not in result.stderr
    json_result = run_all("--url", URL, "--only", "tls", "--json")
    json.loads(json_result.stdout)
    assert "running tls…" in json_result.stderr


# --- selection and target -------------------------------------------------------------------


def test_only_and_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    recorder = Recorder()
    install(monkeypatch, recorder=recorder)
    result = run_all("--url", URL, "--only", "tls, socket", "--only", "e2e,", "--skip", "socket")
    assert result.exit_code == EXIT_OK
    assert sorted(recorder.ran) == ["e2e", "tls"]
    ids = [
        check["id"]
        for check in json.loads(
            run_all("--url", URL, "--only", "tls,e2e,connectivity", "--json").stdout
        )["checks"]
    ]
    assert ids == ["connectivity", "tls", "e2e"]  # display order, not command-line order

    recorder.ran.clear()
    assert run_all("--url", URL, "--skip", "isolation,firewall").exit_code == EXIT_OK
    assert sorted(recorder.ran) == sorted(set(CHECK_IDS) - {"isolation", "firewall"})


def test_url_target_and_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recorder = Recorder()
    install(monkeypatch, recorder=recorder)
    ca = tmp_path / "ca.crt"
    ca.write_text(PEM_CERT)
    chromium = tmp_path / "chromium"
    chromium.write_text("")
    args = ["--url", URL, "--ca", str(ca), "--local", "--name", "chat", "--name", "10.0.0.1"]
    args += ["--timeout", "2.5", "--min-kdf-iterations", "1000", "--chromium", str(chromium)]
    result = run_all(*args, "--only", "tls", "--concurrency", "1")
    assert result.exit_code == EXIT_OK, result.output
    (target,) = recorder.targets
    assert target.url == URL
    assert target.ca_file == ca
    assert target.names == ("chat.example.lan", "chat", "10.0.0.1")
    assert (target.timeout, target.min_kdf_iterations, target.chromium) == (2.5, 1000, chromium)
    assert isinstance(target.hosts[0].runner, LocalRunner)


def test_url_and_ca_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recorder = Recorder()
    install(monkeypatch, recorder=recorder)
    ca = tmp_path / "ca.crt"
    ca.write_text(PEM_CERT)
    env = {"SECURECHAT_VERIFY_URL": "https://env.lan", "SECURECHAT_VERIFY_CA": str(ca)}
    result = run_all("--only", "tls", env=env)
    assert result.exit_code == EXIT_OK, result.output
    assert (recorder.targets[0].url, recorder.targets[0].ca_file) == ("https://env.lan", ca)
    assert recorder.targets[0].hosts[0].runner is None  # no --local: nothing inspected


def test_inventory_target(monkeypatch: pytest.MonkeyPatch, inventory: Path, tmp_path: Path) -> None:
    recorder = Recorder()
    install(monkeypatch, recorder=recorder)
    # The environment does not override the inventory ...
    env = {"SECURECHAT_VERIFY_URL": "https://elsewhere.lan", "SECURECHAT_VERIFY_CA": "/nope"}
    result = run_all("-i", str(inventory), "--only", "tls", env=env)
    assert result.exit_code == EXIT_OK, result.output
    target = recorder.targets[-1]
    assert target.url == "https://inventory.lan"
    assert target.ca_file == inventory / "ca.crt"
    assert target.hosts[0].runner == SshRunner("ops@10.0.0.20")
    # ... options on the command line do.
    other_ca = tmp_path / "other.crt"
    other_ca.write_text(PEM_CERT)
    result = run_all(
        "-i",
        str(inventory),
        "--url",
        "https://override.lan",
        "--ca",
        str(other_ca),
        "--only",
        "tls",
    )
    assert result.exit_code == EXIT_OK, result.output
    assert (recorder.targets[-1].url, recorder.targets[-1].ca_file) == (
        "https://override.lan",
        other_ca,
    )


# --- other commands -------------------------------------------------------------------------


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == EXIT_OK
    assert result.stdout == f"securechat-verify {__version__}\n"


def test_list(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, make_check("tls", severity=Severity.WARNING), unavailable=("e2e",))
    result = invoke("list")
    assert result.exit_code == EXIT_OK
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == [c for c in CHECK_IDS if c != "e2e"]
    assert lines[1].split()[:2] == ["tls", "warning"]
    assert lines[1].endswith("The tls check")
    assert "e2e: unavailable: ModuleNotFoundError" in result.stderr
