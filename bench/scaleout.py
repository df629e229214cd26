"""Relay throughput with one and with two server processes sharing a database and Redis.

N client pairs exchange messages through real `securechat serve` processes. With two
processes, every pair's sender is on one process and its receiver on the other, so every
message crosses Redis. Reported per setup: messages delivered per second, and the latency from
send to delivery (p50, p99); then the ratio of the two-process rate to the one-process rate.

Run from the repository root, with Redis on 127.0.0.1:6379 (see bench/README.md):

    .venv/bin/python bench/scaleout.py --pairs 20 --messages 200
    .venv/bin/python bench/scaleout.py --db mariadb      # MariaDB on 127.0.0.1:3306, root

It is a measurement, not a test: the numbers depend on the machine. Clients, servers, Redis and
the database share its CPUs, so the ratio only shows what scale-out gives when the machine has
cores to spare for the second process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pymysql
from securechat.client.chat import ChatClient
from securechat.client.events import EventInbox
from securechat.db.migrate import upgrade
from servers import wait_healthy

KDF_ITERATIONS = 1000  # cheap accounts: the bench measures relaying, not logins
PASSWORD = "bench password, not secret"  # noqa: S105 (throwaway accounts)
MARIADB_ROOT = "mysql+pymysql://root@127.0.0.1:3306"
WARMUP_MESSAGES = 5


@dataclass(frozen=True)
class Setup:
    name: str
    processes: int
    redis: bool


SETUPS = (
    Setup("1 process, no Redis", 1, False),
    Setup("1 process + Redis", 1, True),
    Setup("2 processes + Redis", 2, True),
)


@dataclass(frozen=True)
class Load:
    messages: int  # per sender
    window: int  # unacknowledged sends per sender


@dataclass(frozen=True)
class WorkerResult:
    delivered: int
    expected: int
    started: float
    finished: float
    latencies: list[float]


@dataclass(frozen=True)
class Result:
    setup: str
    delivered: int
    expected: int
    seconds: float
    per_second: float
    p50_ms: float
    p99_ms: float


class TimedInbox(EventInbox):
    """Notes when each message arrives; keeps nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    async def put(self, name: str, data: Any) -> None:
        if name == "message:new":
            self.arrived[data["message_id"]] = time.monotonic()
            if len(self.arrived) >= self.expected:
                self.done.set()


# -- the servers ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(
    database_url: str, redis_url: str | None, prefix: str, uploads: Path
) -> dict[str, str]:
    env = {
        **os.environ,
        "SECURECHAT_DATABASE_URL": database_url,
        "SECURECHAT_SECRET_KEY": secrets.token_urlsafe(48),
        "SECURECHAT_KDF_ITERATIONS": str(KDF_ITERATIONS),
        "SECURECHAT_ARGON2_TIME_COST": "1",
        "SECURECHAT_ARGON2_MEMORY_KIB": "1024",
        "SECURECHAT_ARGON2_PARALLELISM": "1",
        "SECURECHAT_RATE_AUTH_PER_IP": "1000000",
        "SECURECHAT_UPLOAD_DIR": str(uploads),
        "SECURECHAT_LOG_LEVEL": "warning",
    }
    if redis_url:
        env["SECURECHAT_REDIS_URL"] = redis_url
        env["SECURECHAT_REDIS_PREFIX"] = prefix
    return env


@contextmanager
def servers(count: int, env: dict[str, str], logs: Path) -> Iterator[list[str]]:
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for index in range(count):
            port = free_port()
            with (logs / f"server-{index}.log").open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
                    [sys.executable, "-m", "securechat.cli", "serve", "--port", str(port)],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            url = f"http://127.0.0.1:{port}"
            started.append((process, url))
            wait_healthy(process, url, logs / f"server-{index}.log")
        yield [url for _, url in started]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def database(kind: str, directory: Path) -> Iterator[str]:
    if kind == "sqlite":
        url = f"sqlite:///{directory / 'bench.db'}"
        upgrade(url)
        yield url
        return
    name = f"securechat_bench_{secrets.token_hex(4)}"
    connection = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        url = f"{MARIADB_ROOT}/{name}?charset=utf8mb4"
        upgrade(url)
        yield url
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


# -- the clients ---------------------------------------------------------------------------


async def account(url: str, name: str) -> ChatClient:
    client = ChatClient(url, min_kdf_iterations=KDF_ITERATIONS)
    await client.register(name, PASSWORD)
    await client.login(name, PASSWORD)
    return client


async def run_pairs(urls: list[str], pairs: range, load: Load, barrier: Barrier) -> WorkerResult:
    messages, window = load.messages, load.window
    senders: list[ChatClient] = []
    receivers: list[ChatClient] = []
    for index in pairs:
        tag = secrets.token_hex(3)
        sender = await account(urls[index % len(urls)], f"s{index}x{tag}")
        receiver = await account(urls[(index + 1) % len(urls)], f"r{index}x{tag}")
        receiver.events = TimedInbox()
        await asyncio.gather(sender.connect(), receiver.connect())
        senders.append(sender)
        receivers.append(receiver)
    conversations = [
        (await sender.create_direct(receiver.user_id))["id"]
        for sender, receiver in zip(senders, receivers, strict=True)
    ]
    # Encrypt before the clock starts: the bench measures the servers, not the client's crypto.
    envelopes = [
        [await sender.encrypt_text(cid, f"m{n}") for n in range(WARMUP_MESSAGES + messages)]
        for sender, cid in zip(senders, conversations, strict=True)
    ]
    sent_at: dict[str, float] = {}

    async def send(sender: ChatClient, batch: list[dict[str, object]]) -> None:
        slots = asyncio.Semaphore(window)

        async def one(envelope: dict[str, object]) -> None:
            async with slots:
                sent_at[str(envelope["message_id"])] = time.monotonic()
                ack = await sender.send_envelope(envelope)
                if not ack.get("ok"):
                    raise RuntimeError(f"refused: {ack}")

        await asyncio.gather(*(one(envelope) for envelope in batch))

    def inbox(receiver: ChatClient) -> TimedInbox:
        assert isinstance(receiver.events, TimedInbox)
        return receiver.events

    for receiver in receivers:
        inbox(receiver).expected = WARMUP_MESSAGES
    await asyncio.gather(
        *(send(s, e[:WARMUP_MESSAGES]) for s, e in zip(senders, envelopes, strict=True))
    )
    await asyncio.gather(*(asyncio.wait_for(inbox(r).done.wait(), 30) for r in receivers))
    for receiver in receivers:
        inbox(receiver).arrived.clear()
        inbox(receiver).done.clear()
        inbox(receiver).expected = messages

    await asyncio.to_thread(barrier.wait)  # every worker starts sending at the same moment
    started = time.time()
    clock = time.monotonic()
    await asyncio.gather(
        *(send(s, e[WARMUP_MESSAGES:]) for s, e in zip(senders, envelopes, strict=True))
    )
    with contextlib.suppress(TimeoutError):  # what did not arrive is counted as missing
        await asyncio.wait_for(
            asyncio.gather(*(inbox(r).done.wait() for r in receivers)), timeout=60
        )
    arrived = {mid: at for r in receivers for mid, at in inbox(r).arrived.items()}
    last = max(arrived.values(), default=clock)
    latencies = [at - sent_at[mid] for mid, at in arrived.items()]
    await asyncio.gather(*(client.close() for client in senders + receivers))
    return WorkerResult(
        delivered=len(arrived),
        expected=messages * len(pairs),
        started=started,
        finished=started + (last - clock),
        latencies=latencies,
    )


def worker(urls: list[str], pairs: range, load: Load, barrier: Barrier, results: Any) -> None:
    """One load-generating process (the GIL would make one process the bottleneck)."""
    result = asyncio.run(run_pairs(urls, pairs, load, barrier))
    results.put(asdict(result))


def measure(setup: Setup, args: argparse.Namespace, directory: Path) -> Result:
    with database(args.db, directory) as database_url:
        prefix = f"bench-{secrets.token_hex(4)}"
        env = server_env(
            database_url, args.redis_url if setup.redis else None, prefix, directory / "uploads"
        )
        with servers(setup.processes, env, directory) as urls:
            context = multiprocessing.get_context("spawn")
            barrier = context.Barrier(args.client_procs)
            results = context.Queue()
            load = Load(args.messages, args.window)
            shares = [range(i, args.pairs, args.client_procs) for i in range(args.client_procs)]
            workers = [
                context.Process(target=worker, args=(urls, share, load, barrier, results))
                for share in shares
            ]
            for process in workers:
                process.start()
            parts = [WorkerResult(**results.get(timeout=600)) for _ in workers]
            for process in workers:
                process.join()
    delivered = sum(part.delivered for part in parts)
    seconds = max(p.finished for p in parts) - min(p.started for p in parts)
    latencies = sorted(ms * 1000 for part in parts for ms in part.latencies)
    return Result(
        setup=setup.name,
        delivered=delivered,
        expected=sum(part.expected for part in parts),
        seconds=seconds,
        per_second=delivered / seconds if seconds > 0 else 0.0,
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        if latencies
        else float("nan"),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20, help="sender/receiver pairs (20)")
    parser.add_argument("--messages", type=int, default=200, help="messages per sender (200)")
    parser.add_argument("--window", type=int, default=4, help="unacknowledged sends per sender (4)")
    parser.add_argument("--client-procs", type=int, default=2, help="load-generating processes (2)")
    parser.add_argument("--db", choices=("sqlite", "mariadb"), default="sqlite")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.pairs < args.client_procs:
        parser.error("--pairs must be at least --client-procs")

    results: list[Result] = []
    for setup in SETUPS:
        with tempfile.TemporaryDirectory(prefix="securechat-bench-") as scratch:
            print(f"measuring: {setup.name}…", file=sys.stderr)
            results.append(measure(setup, args, Path(scratch)))
    one, two = results[1], results[2]
    ratio = two.per_second / one.per_second if one.per_second else float("nan")
    if args.json:
        print(json.dumps({"results": [asdict(r) for r in results], "ratio_2_to_1": ratio}))
        return
    print(
        f"{args.pairs} pairs x {args.messages} messages, window {args.window}, "
        f"{args.client_procs} client processes, {args.db}, {os.cpu_count()} CPUs"
    )
    print(f"{'setup':<22} {'delivered':>11} {'msgs/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r.setup:<22} {r.delivered:>5}/{r.expected:<5} {r.per_second:>9.0f} "
            f"{r.p50_ms:>8.1f} {r.p99_ms:>8.1f}"
        )
    print(f"ratio 2-proc/1-proc (both with Redis): {ratio:.2f}")


if __name__ == "__main__":
    main()
