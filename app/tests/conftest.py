"""Fixtures: a fresh database per backend (SQLite file, real MariaDB), the app in process
(Starlette TestClient) and a real uvicorn server in a subprocess for Socket.IO tests."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pymysql
import pytest
import redis
from starlette.testclient import TestClient

from securechat.db.migrate import upgrade
from securechat.main import create_app
from securechat.settings import Settings

MARIADB = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}
REDIS_URL = "redis://127.0.0.1:6379/0"
# Tests lower the password-stretching costs; one test runs the real 600,000 iterations.
TEST_KDF_ITERATIONS = 1000
BACKENDS = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def mariadb_url(database: str) -> str:
    return f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4"


@pytest.fixture(scope="module", params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database, fresh for each test module and backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'securechat.db'}"
        return
    name = f"securechat_test_{secrets.token_hex(6)}"
    connection = pymysql.connect(**MARIADB)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        yield mariadb_url(name)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


@pytest.fixture(scope="module")
def redis_prefix() -> Iterator[str]:
    """A key prefix (and pub/sub channel) of its own in the real Redis, emptied afterwards.

    Redis is required, never skipped: CI starts it (.ci/run)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as error:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({error}); start it with: redis-server "
            '--daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no',
            pytrace=False,
        )
    prefix = f"sctest-{secrets.token_hex(6)}"
    try:
        yield prefix
    finally:
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)
        client.close()


def server_environment(database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        "SECURECHAT_DATABASE_URL": database_url,
        "SECURECHAT_SECRET_KEY": "test-secret-key-" + "x" * 32,
        "SECURECHAT_KDF_ITERATIONS": str(TEST_KDF_ITERATIONS),
        "SECURECHAT_ARGON2_TIME_COST": "1",
        "SECURECHAT_ARGON2_MEMORY_KIB": "1024",
        "SECURECHAT_ARGON2_PARALLELISM": "1",
        "SECURECHAT_SESSION_SWEEP_SECONDS": "0.3",
        "SECURECHAT_RATE_AUTH_PER_IP": "100000",
        "SECURECHAT_UPLOAD_DIR": str(Path(tempfile.gettempdir()) / "securechat-test-uploads"),
    }
    env.update(overrides)
    return env


@pytest.fixture(scope="module")
def migrated_url(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def make_client(migrated_url: str, tmp_path: Path) -> Iterator[object]:
    """Build an in-process app with setting overrides; TestClient runs its lifespan."""
    clients: list[TestClient] = []

    def build(**overrides: str) -> TestClient:
        overrides.setdefault("SECURECHAT_UPLOAD_DIR", str(tmp_path / "uploads"))
        settings = Settings.from_env(server_environment(migrated_url, **overrides))
        client = TestClient(create_app(settings), base_url="http://localhost")
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def api(make_client: object) -> TestClient:
    return make_client()  # type: ignore[operator, no-any-return]


@dataclass(frozen=True)
class RunningServer:
    url: str
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(env: dict[str, str], log_path: Path) -> RunningServer:
    port = free_port()
    full_env = {**os.environ, **env, "SECURECHAT_PORT": str(port), "SECURECHAT_LOG_LEVEL": "debug"}
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "securechat.cli", "serve"],
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log_path.read_text()}")
        try:
            if httpx.get(url + "/api/v1/health", timeout=1).status_code == 200:
                return RunningServer(url, log_path, env, process)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log_path.read_text()}")


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(scope="module")
def server(migrated_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A real uvicorn process serving the app on a free loopback port."""
    directory = tmp_path_factory.mktemp("server")
    env = server_environment(migrated_url, SECURECHAT_UPLOAD_DIR=str(directory / "uploads"))
    running = start_server(env, directory / "server.log")
    try:
        yield running
    finally:
        stop_server(running)
