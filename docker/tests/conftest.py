"""The Docker deployment end to end, as a site would do it (docs/docker.md).

A private Docker Engine (its own socket, data and exec roots, no iptables, no IP forwarding, no
default bridge: the host firewall stays as it is), a bundle built with `--with-docker-images`
(or the one SECURECHAT_DOCKER_TEST_BUNDLE names), its images removed from the engine and then
`docker load`ed from the bundle's archive, the site made with init-secrets.sh and init-tls.sh,
and `compose up -d`. Everything is removed at the end, and the engine stopped by its PID.
Needs root, Debian's docker.io and docker-compose; the bundle build needs PyPI and a Debian
mirror, like bundle/tests/test_build.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCKERD = "/usr/sbin/dockerd"
# Options that leave the host's firewall and sysctls alone: no iptables rules and no NAT, IP
# forwarding not switched on, no docker0. Published ports then go through docker-proxy.
DOCKERD_OPTIONS = (
    "--iptables=false",
    "--ip6tables=false",
    "--ip-masq=false",
    "--ip-forward=false",
    "--bridge=none",
)
PLUGINS_DIR = Path("/run/docker/plugins")


@dataclass(frozen=True)
class Engine:
    host: str  # DOCKER_HOST
    pid: int
    env: dict[str, str]
    host_state: dict[str, str]  # what the host looked like before dockerd started

    def docker(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        return run(["docker", *args], env=self.env, check=check, timeout=timeout)


@dataclass(frozen=True)
class Site:
    engine: Engine
    directory: Path
    project: str
    url: str
    ca: Path
    compose: tuple[str, ...]

    def compose_run(self, *args: str, timeout: float = 300) -> str:
        return run(
            [*self.compose, "--project-name", self.project, *args],
            env=self.engine.env,
            cwd=self.directory,
            timeout=timeout,
        )

    def container(self, service: str) -> str:
        """The service's container, by compose's labels (1.29 and the plugin name them apart)."""
        found = self.engine.docker(
            "container",
            "ls",
            "--all",
            "--quiet",
            "--filter",
            f"label=com.docker.compose.project={self.project}",
            "--filter",
            f"label=com.docker.compose.service={service}",
        ).split()
        assert len(found) == 1, f"{service}: containers {found}"
        return found[0]

    def inspect(self, service: str) -> dict[str, object]:
        data = json.loads(self.engine.docker("container", "inspect", self.container(service)))
        return dict(data[0])

    def wait_healthy(self, service: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.engine.docker(
                "inspect", "--format", "{{.State.Health.Status}}", self.container(service)
            ).strip()
            if status == "healthy":
                return
            time.sleep(1)
        logs = self.engine.docker("logs", "--tail", "40", self.container(service), check=False)
        raise AssertionError(f"{service} is {status} after {timeout:.0f} s:\n{logs}")


def run(
    command: list[str],
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    timeout: float = 300,
) -> str:
    result = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout + (result.stderr if not check else "")


def host_state() -> dict[str, str]:
    """What dockerd would change if it were let: sysctls and the FORWARD policy."""
    state = {}
    for name in (
        "net/ipv4/ip_forward",
        "net/bridge/bridge-nf-call-iptables",
        "net/bridge/bridge-nf-call-ip6tables",
    ):
        path = Path("/proc/sys") / name
        state[name] = path.read_text().strip() if path.exists() else "absent"
    rules = run(["iptables-save"], check=False) if shutil.which("iptables-save") else ""
    state["FORWARD policy"] = next(
        (line for line in rules.splitlines() if line.startswith(":FORWARD")), ""
    ).split(" [")[0]
    return state


def firewall_rules() -> str:
    text = ""
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool):
            text += run([tool], check=False)
    if shutil.which("nft"):
        text += run(["nft", "list", "ruleset"], check=False)
    return text


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("needs root to run a Docker Engine")
    missing = [tool for tool in (DOCKERD, "docker", "docker-compose") if not shutil.which(tool)]
    if missing:
        pytest.skip(f"needs {', '.join(missing)}: apt-get install docker.io docker-compose")
    # Short paths: containerd's socket lives under the exec root (unix sockets: 108 bytes).
    state = Path(tempfile.mkdtemp(prefix="scdk-", dir="/tmp"))
    sock = state / "docker.sock"
    before = host_state()
    # dockerd makes /run/docker/plugins (a fixed path) whatever its exec root: removed at the
    # end when this run made it and it is still empty.
    plugins_dir_existed = PLUGINS_DIR.exists()
    # Its own configuration file: none of /etc/docker/daemon.json, and the trust key (which
    # dockerd 20.10 writes to /etc/docker/key.json by default) kept in the state directory.
    config = state / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(state / "key.json")}))
    log = (state / "dockerd.log").open("w")
    process = subprocess.Popen(
        [
            DOCKERD,
            f"--config-file={config}",
            f"--host=unix://{sock}",
            f"--data-root={state / 'data'}",
            f"--exec-root={state / 'exec'}",
            f"--pidfile={state / 'dockerd.pid'}",
            *DOCKERD_OPTIONS,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {**os.environ, "DOCKER_HOST": f"unix://{sock}"}
    env.pop("DOCKER_CONTEXT", None)
    found = Engine(f"unix://{sock}", process.pid, env, before)
    try:
        deadline = time.monotonic() + 60
        while run(["docker", "version"], env=env, check=False).find("Server") < 0:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    "dockerd did not start:\n" + (state / "dockerd.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield found
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()
        shutil.rmtree(state, ignore_errors=True)
        if not plugins_dir_existed:
            for directory in (PLUGINS_DIR, PLUGINS_DIR.parent):
                with contextlib.suppress(OSError):
                    directory.rmdir()  # only when empty


@pytest.fixture(scope="session")
def bundle(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get("SECURECHAT_DOCKER_TEST_BUNDLE")
    if given:
        return Path(given).resolve()
    out = tmp_path_factory.mktemp("dist")
    gnupg = Path(tempfile.mkdtemp(prefix="scdk-gpg-", dir="/tmp"))  # gpg-agent socket: short
    try:
        run(
            [
                str(REPO / "offline-bundle.sh"),
                "build",
                "--with-docker-images",
                "--out",
                str(out),
                "--gpg-home",
                str(gnupg),
            ],
            env=engine.env,
            timeout=1200,
        )
    finally:
        run(["gpgconf", "--homedir", str(gnupg), "--kill", "all"], check=False)
        shutil.rmtree(gnupg, ignore_errors=True)
    (tarball,) = out.glob("securechat-m2m-*.tar.gz")
    return tarball


def compose_command(engine: Engine) -> tuple[str, ...]:
    """The compose plugin when the CLI has it, else Debian's docker-compose 1.29."""
    if "Docker Compose" in run(["docker", "compose", "version"], env=engine.env, check=False):
        return ("docker", "compose")
    return ("docker-compose",)


def free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="session")
def site(engine: Engine, bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from securechat_bundle.archive import safe_extract

    https = int(os.environ.get("SECURECHAT_DOCKER_TEST_HTTPS_PORT", "443"))
    http = int(os.environ.get("SECURECHAT_DOCKER_TEST_HTTP_PORT", "80"))
    busy = [port for port in (https, http) if not free(port)]
    assert not busy, (
        f"127.0.0.1 port(s) {busy} are in use: set SECURECHAT_DOCKER_TEST_HTTPS_PORT and "
        "SECURECHAT_DOCKER_TEST_HTTP_PORT"
    )
    tree = safe_extract(bundle, tmp_path_factory.mktemp("bundle"))
    manifest = json.loads((tree / "manifest.json").read_text())
    # The images must come from the bundle: drop what the build left in the engine.
    for image in manifest["docker_images"]:
        engine.docker("image", "rm", "--force", f"{image['name']}:{image['tag']}", check=False)
    for leftover in engine.docker("image", "ls", "--quiet").split():
        engine.docker("image", "rm", "--force", leftover, check=False)
    archive = tree / manifest["docker_images"][0]["archive"]
    engine.docker("load", "--input", str(archive), timeout=600)

    directory = tmp_path_factory.mktemp("site") / "docker"
    shutil.copytree(tree / "docker", directory, ignore=shutil.ignore_patterns("images"))
    run([str(directory / "init-secrets.sh")])
    run([str(directory / "init-tls.sh"), "localhost", "127.0.0.1"])
    with (directory / ".env").open("a") as env_file:
        env_file.write(
            "SECURECHAT_BIND_ADDRESS=127.0.0.1\n"
            f"SECURECHAT_HTTPS_PORT={https}\nSECURECHAT_HTTP_PORT={http}\n"
        )
    url = "https://localhost" + ("" if https == 443 else f":{https}")
    made = Site(
        engine,
        directory,
        f"sctest{secrets.token_hex(3)}",
        url,
        directory / "pki" / "ca.crt",
        compose_command(engine),
    )
    try:
        try:
            made.compose_run("up", "--detach", timeout=600)
            made.wait_healthy("front")
        except AssertionError as error:
            logs = run(
                [*made.compose, "--project-name", made.project, "logs", "--tail", "30"],
                env=engine.env,
                cwd=directory,
                check=False,
            )
            raise AssertionError(f"{error}\n--- compose logs ---\n{logs[-6000:]}") from None
        yield made
    finally:
        made.compose_run("down", "--volumes", "--rmi", "all", "--timeout", "60", timeout=600)
        assert_nothing_left(engine)


def assert_nothing_left(engine: Engine) -> None:
    """`compose down --volumes --rmi all` leaves no container, image, volume or network."""
    left = {
        "containers": engine.docker("container", "ls", "--all", "--quiet").split(),
        "images": engine.docker("image", "ls", "--all", "--quiet").split(),
        "volumes": engine.docker("volume", "ls", "--quiet").split(),
        # host and none are the engine's own (no bridge: --bridge=none).
        "networks": sorted(
            set(engine.docker("network", "ls", "--format", "{{.Name}}").split()) - {"host", "none"}
        ),
    }
    assert not any(left.values()), f"left behind: {left}"
