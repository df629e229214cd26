"""Our server side by side with the Node reference peer: scenarios S1 to S6, the ratio table.

    .venv/bin/python bench/run.py --quick              # smoke run, under 2 minutes
    .venv/bin/python bench/run.py                      # the full suite, under 15 minutes
    .venv/bin/python bench/run.py --scenarios S3 --servers ours --ws wsproto --json-codec orjson

One MariaDB database (127.0.0.1:3306, root) is made per run and dropped afterwards. Accounts,
sessions and conversations are created once through our HTTP API by the reference client
(securechat.client); both servers then serve the same rows (the peer reads and writes our
schema). For each scenario the servers take turns: ours (`securechat serve`, or
bench/ours_server.py when a lever differs from the defaults) pinned to core 0, the Node driver
pinned to core 1, then the peer (bench/peer/server.js) on core 0. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from securechat.client.chat import ChatClient
from securechat.db.migrate import upgrade
from servers import wait_healthy

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
KDF_ITERATIONS = 1000  # cheap accounts: the bench measures the servers, not logins
PASSWORD = "bench password, not secret"  # noqa: S105 (throwaway accounts)
SERVER_CORE, DRIVER_CORE = "0", "1"
ALL_SCENARIOS = ("S1", "S2", "S3", "S5", "S4", "S6")


@dataclass
class Plan:
    """The sizes of one run; --quick shrinks every one of them."""

    connections: int = 10_000
    burst: int = 5_000
    burst_concurrency: int = 500
    hold_ms: int = 10_000
    settle_ms: int = 3_000
    drain_ms: int = 3_000
    pairs: int = 50
    rates: list[int] = field(
        default_factory=lambda: [500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000, 24000]
    )
    step_ms: int = 5_000
    durable_rates: list[int] = field(
        default_factory=lambda: [250, 500, 1000, 2000, 3000, 4000, 6000, 8000, 12000, 16000]
    )
    groups: list[int] = field(default_factory=lambda: [100, 1000])
    fanout_rates: tuple[int, ...] = (20, 50, 100, 200, 400, 800)
    history_messages: int = 1_000_000
    history_readers: int = 50
    history_ms: int = 8_000


def quick_plan() -> Plan:
    return Plan(
        connections=1_000,
        burst=1_000,
        burst_concurrency=200,
        hold_ms=2_000,
        settle_ms=1_000,
        drain_ms=2_000,
        pairs=10,
        rates=[1000, 4000, 16000],
        step_ms=1_500,
        durable_rates=[250, 1000, 4000],
        groups=[100],
        fanout_rates=(50, 200, 800),
        history_messages=20_000,
        history_readers=20,
        history_ms=2_000,
    )


@dataclass(frozen=True)
class Levers:
    compression: bool = False
    ws: str = "auto"
    loop: str = "auto"
    http: str = "auto"
    json_codec: str = "std"
    db_pool: int = 0

    def default(self) -> bool:
        return self == Levers()

    def describe(self) -> str:
        return (
            f"compression {'on' if self.compression else 'off'}, ws {self.ws}, loop {self.loop}, "
            f"http {self.http}, json {self.json_codec}, db pool {self.db_pool or 'default'}"
        )


# -- machine, database, processes -------------------------------------------------------------


def load_average() -> float:
    return os.getloadavg()[0]


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)  # noqa: S607
    mariadb = query_one("SELECT VERSION()")
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(int(memory) / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": node.stdout.strip(),
        "mariadb": mariadb,
    }


def mariadb_connection(database: str | None = None) -> pymysql.Connection[Any]:
    return pymysql.connect(
        host="127.0.0.1", port=3306, user="root", password="", database=database, autocommit=True
    )


def query_one(sql: str) -> Any:
    connection = mariadb_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        connection.close()


@contextmanager
def bench_database() -> Iterator[str]:
    name = f"securechat_bench_{secrets.token_hex(4)}"
    connection = mariadb_connection()
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    try:
        upgrade(f"mysql+pymysql://root@127.0.0.1:3306/{name}?charset=utf8mb4")
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


def db_pid(port: int = 3306) -> int | None:
    """The MariaDB the bench uses: the process listening on 127.0.0.1:<port> in this network
    namespace (`pidof mariadbd` also finds those of containers and lab hosts on the machine)."""
    found = subprocess.run(  # noqa: S603
        ["ss", "-Hltnp", f"src 127.0.0.1:{port}"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"pid=(\d+)", found.stdout)
    return int(match.group(1)) if match else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(core: str, command: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", core, *command] if pin else command


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    url: str


def our_env(database: str, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SECURECHAT_DATABASE_URL": f"mysql+pymysql://root@127.0.0.1:3306/{database}?charset=utf8mb4",
        "SECURECHAT_SECRET_KEY": "bench-" + "k" * 40,
        "SECURECHAT_KDF_ITERATIONS": str(KDF_ITERATIONS),
        "SECURECHAT_ARGON2_TIME_COST": "1",
        "SECURECHAT_ARGON2_MEMORY_KIB": "1024",
        "SECURECHAT_ARGON2_PARALLELISM": "1",
        "SECURECHAT_RATE_AUTH_PER_IP": "1000000",
        "SECURECHAT_UPLOAD_DIR": str(scratch / "uploads"),
        "SECURECHAT_LOG_LEVEL": "warning",
    }


@contextmanager
def server(
    kind: str,
    database: str,
    scratch: Path,
    levers: Levers,
    args: argparse.Namespace,
    *,
    storage: str = "none",
) -> Iterator[Server]:
    port = free_port()
    log_path = scratch / f"{kind}-{port}.log"
    if kind == "ours":
        env = our_env(database, scratch)
        # BENCH_OURS_ARGS holds ours_server.py's own switches: only it reads them.
        if levers.default() and not os.environ.get("BENCH_OURS_ARGS"):
            command = [str(ROOT / ".venv/bin/securechat"), "serve", "--port", str(port)]
        else:
            command = [
                sys.executable,
                str(BENCH / "ours_server.py"),
                "--port",
                str(port),
                "--ws",
                levers.ws,
                "--loop",
                levers.loop,
                "--http",
                levers.http,
                "--json",
                levers.json_codec,
                "--db-pool",
                str(levers.db_pool),
            ]
            if levers.compression:
                command.append("--compression")
    else:
        env = {
            **os.environ,
            "PEER_PORT": str(port),
            "PEER_DATABASE": database,
            "PEER_STORAGE": storage,
            "PEER_DEFLATE": "1" if levers.compression else "0",
        }
        command = ["node", str(BENCH / "peer/server.js")]
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own commands)
            pinned(SERVER_CORE, command, args.pin), env=env, stdout=log, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, url, log_path)
        yield Server(kind, process, url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- accounts and conversations, through our HTTP API -----------------------------------------


@dataclass
class Fixture:
    tokens: list[dict[str, str]]
    pairs: list[dict[str, Any]]
    groups: list[dict[str, Any]]


async def make_fixture(url: str, users: int, pairs: int, groups: list[int]) -> Fixture:
    tag = secrets.token_hex(3)
    clients: list[ChatClient] = []

    async def account(index: int) -> ChatClient:
        client = ChatClient(url, min_kdf_iterations=KDF_ITERATIONS)
        name = f"b{index}x{tag}"
        await client.register(name, PASSWORD)
        await client.login(name, PASSWORD)
        return client

    for start in range(0, users, 25):
        clients += await asyncio.gather(*(account(i) for i in range(start, min(users, start + 25))))
    tokens = [{"token": str(c.token), "user_id": c.user_id} for c in clients]
    pair_list = []
    for index in range(pairs):
        sender, receiver = clients[2 * index], clients[2 * index + 1]
        conversation = await sender.create_direct(receiver.user_id)
        pair_list.append(
            {
                "sender": 2 * index,
                "receiver": 2 * index + 1,
                "conversation_id": conversation["id"],
                "epoch": conversation["epoch"],
            }
        )
    group_list = []
    for size in groups:
        owner = clients[0]
        conversation = await owner.create_group(
            f"bench {size}", [c.user_id for c in clients[:size]]
        )
        group_list.append(
            {
                "size": size,
                "members": list(range(size)),
                "conversation_id": conversation["id"],
                "epoch": conversation["epoch"],
            }
        )
    for client in clients:  # close the HTTP sessions; the server sessions stay (no logout)
        await client.http.close()
    return Fixture(tokens, pair_list, group_list)


def fill_history(database: str, fixture: Fixture, total: int) -> None:
    """`total` messages spread over the direct conversations, in one INSERT … SELECT each."""
    per = max(50, total // len(fixture.pairs))
    connection = mariadb_connection(database)
    try:
        with connection.cursor() as cursor:
            for pair in fixture.pairs:
                sender = fixture.tokens[pair["sender"]]["user_id"]
                cursor.execute(
                    "INSERT INTO messages (conversation_id, seq, message_id, sender_id,"  # noqa: S608
                    " sender_key_version, epoch, nonce, ciphertext, signature, server_time)"
                    " SELECT c.id, c.last_seq + s.seq, LOWER(CONCAT(HEX(RANDOM_BYTES(4)), '-',"
                    " HEX(RANDOM_BYTES(2)), '-4', SUBSTR(HEX(RANDOM_BYTES(2)), 2), '-a',"
                    " SUBSTR(HEX(RANDOM_BYTES(2)), 2), '-', HEX(RANDOM_BYTES(6)))), %s, 1, c.epoch,"
                    " RANDOM_BYTES(12), RANDOM_BYTES(116), RANDOM_BYTES(64), UTC_TIMESTAMP(3)"
                    f" FROM conversations c JOIN seq_1_to_{per} s WHERE c.id = %s",
                    (sender, pair["conversation_id"]),
                )
                cursor.execute(
                    "UPDATE conversations SET last_seq = last_seq + %s WHERE id = %s",
                    (per, pair["conversation_id"]),
                )
    finally:
        connection.close()


# -- running the driver -----------------------------------------------------------------------


def drive(  # noqa: PLR0917
    srv: Server,
    scenario: str,
    params: dict[str, Any],
    fixture: Fixture,
    scratch: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    config = {
        "label": f"{scenario} {srv.name}",
        "url": srv.url,
        "server_pid": srv.process.pid,
        "db_pid": db_pid(),
        "clk_tck": os.sysconf("SC_CLK_TCK"),
        "scenario": scenario,
        "params": params,
        "tokens": fixture.tokens,
        "pairs": fixture.pairs,
        "groups": params.pop("groups", fixture.groups),
        "readers": [
            {"token": p["sender"], "conversation_id": p["conversation_id"]} for p in fixture.pairs
        ],
    }
    path = scratch / f"driver-{scenario}-{srv.name}.json"
    path.write_text(json.dumps(config))
    command = pinned(DRIVER_CORE, ["node", str(BENCH / "driver/driver.js"), str(path)], args.pin)
    done = subprocess.run(command, stdout=subprocess.PIPE, check=False, timeout=900)  # noqa: S603
    if done.returncode != 0:
        raise SystemExit(f"the driver failed ({scenario} against {srv.name})")
    result: dict[str, Any] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return result


def rate_params(plan: Plan, rates: list[int]) -> dict[str, Any]:
    return {
        "rates": rates,
        "step_ms": plan.step_ms,
        "drain_ms": plan.drain_ms,
        "pause_ms": 500,
        "ciphertext_bytes": 116,
        "p99_limit_ms": 50,
        "failures_to_stop": 2,
    }


def run_scenario(  # noqa: PLR0917
    scenario: str,
    plan: Plan,
    database: str,
    fixture: Fixture,
    scratch: Path,
    levers: Levers,
    args: argparse.Namespace,
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for kind in args.servers:
        load = load_average()
        print(f"{scenario}: {kind} (load average {load:.2f})", file=sys.stderr)
        storage = "mysql" if scenario == "S5" else "none"
        with server(kind, database, scratch, levers, args, storage=storage) as srv:
            if scenario == "S1":
                params: dict[str, Any] = {
                    "connections": plan.connections,
                    "concurrency": 200,
                    "settle_ms": plan.settle_ms,
                    "hold_ms": plan.hold_ms,
                }
                result = drive(srv, "idle", params, fixture, scratch, args)
            elif scenario == "S2":
                params = {"connections": plan.burst, "concurrency": plan.burst_concurrency}
                result = drive(srv, "burst", params, fixture, scratch, args)
            elif scenario in ("S3", "S5"):
                rates = plan.rates if scenario == "S3" else plan.durable_rates
                result = drive(srv, "direct", rate_params(plan, rates), fixture, scratch, args)
            elif scenario == "S4":
                params = rate_params(plan, [])
                # Fan-out steps go on while nothing is lost: "until the last member has it"
                # exceeds 50 ms even at low rates for groups this large.
                params["p99_limit_ms"] = 1000
                params["groups"] = [
                    {
                        **g,
                        "rates": [r for r in plan.fanout_rates if r * g["size"] <= 80_000],
                    }
                    for g in fixture.groups
                ]
                result = drive(srv, "fanout", params, fixture, scratch, args)
            else:
                params = {
                    "readers": plan.history_readers,
                    "warmup_ms": 1000,
                    "step_ms": plan.history_ms,
                }
                result = drive(srv, "history", params, fixture, scratch, args)
        result["load_average"] = [round(load, 2), round(load_average(), 2)]
        results[kind] = result
        time.sleep(1)
    return results


# -- the ratio table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    ours: float | None
    peer: float | None
    target: str
    higher_is_better: bool

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.peer is None or self.peer == 0:
            return None
        return self.ours / self.peer

    def met(self) -> str:
        ratio = self.ratio
        if ratio is None or self.target == "-":
            return "-"
        bound = float(self.target.split()[-1].rstrip("x"))
        ok = ratio >= bound if self.higher_is_better else ratio <= bound
        return "yes" if ok else "no"


def best(result: dict[str, Any] | None, key: str = "rate") -> float | None:
    if not result or not result.get("best"):
        return 0.0 if result else None
    return float(result["best"][key])


def peak(result: dict[str, Any] | None) -> float | None:
    """The highest rate of complete messages in a step that lost none, whatever the latency."""
    if not result:
        return None
    return max((s["achieved_per_second"] for s in result["steps"] if s["lost"] == 0), default=0.0)


def common_step(
    ours: dict[str, Any] | None, peer: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The steps at the highest rate that both servers completed without loss."""
    if not ours or not peer:
        return None, None
    done_o = {s["rate"]: s for s in ours["steps"] if s["lost"] == 0}
    done_p = {s["rate"]: s for s in peer["steps"] if s["lost"] == 0}
    rates = set(done_o) & set(done_p)
    if not rates:
        return None, None
    return done_o[max(rates)], done_p[max(rates)]


# Scenarios reported as one number each: metric, result key, target, higher is better.
SINGLE_VALUE = {
    "S1": ("KB per idle connection", "kb_per_connection", "at most 1.0x", False),
    "S2": ("connects per second", "per_second", "at least 0.8x", True),
    "S6": ("history pages per second", "per_second", "at least 1.0x", True),
}


def rows(results: dict[str, dict[str, Any]]) -> list[Row]:
    def get(scenario: str, kind: str) -> dict[str, Any] | None:
        return results.get(scenario, {}).get(kind)

    def single(scenario: str) -> list[Row]:
        if scenario not in results:
            return []
        metric, key, target, higher = SINGLE_VALUE[scenario]
        o, p = get(scenario, "ours"), get(scenario, "peer")
        return [Row(scenario, metric, o and o[key], p and p[key], target, higher)]

    out: list[Row] = []
    out += single("S1") + single("S2")
    for scenario, target, what in (
        ("S3", "at least 0.7x", "messages/s with p99 < 50 ms"),
        ("S5", "at least 1.5x", "durable messages/s, p99 < 50 ms"),
    ):
        if scenario in results:
            out.append(
                Row(
                    scenario,
                    what,
                    best(get(scenario, "ours")),
                    best(get(scenario, "peer")),
                    target,
                    True,
                )
            )
            out.append(
                Row(
                    scenario,
                    "peak messages/s completed, any latency",
                    peak(get(scenario, "ours")),
                    peak(get(scenario, "peer")),
                    "-",
                    True,
                )
            )
    if "S4" in results:
        o, p = get("S4", "ours") or {}, get("S4", "peer") or {}
        for size in sorted({int(k) for r in (o, p) for k in r if k.isdigit()}):
            ours_at, peer_at = common_step(o.get(str(size)), p.get(str(size)))
            rate = f" at {ours_at['rate']} msg/s" if ours_at else ""
            out.append(
                Row(
                    "S4",
                    f"server CPU µs per delivery, group of {size}{rate}",
                    ours_at and ours_at["server_cpu_us_per_delivery"],
                    peer_at and peer_at["server_cpu_us_per_delivery"],
                    "at most 1.5x",
                    False,
                )
            )
    out += single("S6")
    return out


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| scenario | metric | ours | peer | ours/peer | target | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for row in rows(results):
        ratio = row.ratio
        lines.append(
            f"| {row.scenario} | {row.metric} | {fmt(row.ours)} | {fmt(row.peer)} | "
            f"{'-' if ratio is None else f'{ratio:.2f}x'} | {row.target} | {row.met()} |"
        )
    return "\n".join(lines)


def details(results: dict[str, dict[str, Any]]) -> str:
    """Per scenario and server: CPU per operation, throughput, p50/p99/p999."""
    lines = [
        "| scenario | server | rate or size | per second | server CPU µs/op | "
        "MariaDB CPU µs/op | p50 ms | p99 ms | p999 ms |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]

    def add(scenario: str, kind: str, label: str, r: dict[str, Any], per_second: float) -> None:
        lat = r["latency"]
        lines.append(
            f"| {scenario} | {kind} | {label} | {fmt(per_second)} | "
            f"{fmt(r['server_cpu_us_per_op'])} | {fmt(r.get('db_cpu_us_per_op'))} | "
            f"{lat['p50_ms']:.2f} | {lat['p99_ms']:.2f} | {lat['p999_ms']:.2f} |"
        )

    for scenario, by_kind in results.items():
        for kind, r in by_kind.items():
            if scenario == "S1":
                lines.append(
                    f"| S1 | {kind} | {r['connections']} idle | - | idle CPU "
                    f"{r['idle_cpu_percent']:.1f}% | - | {r['kb_per_connection']:.1f} KB/conn | "
                    f"RSS {r['rss_held_mb']:.0f} MB | - |"
                )
            elif scenario in ("S2", "S6"):
                add(
                    scenario,
                    kind,
                    "burst" if scenario == "S2" else f"{r['readers']} readers",
                    r,
                    r["per_second"],
                )
            elif scenario in ("S3", "S5"):
                if r.get("best"):
                    add(
                        scenario,
                        kind,
                        f"best {r['best']['rate']}/s",
                        r["best"],
                        r["best"]["achieved_per_second"],
                    )
                lossless = [s for s in r["steps"] if s["lost"] == 0]
                top = max(lossless, key=lambda s: s["rate"], default=None)
                if top and top["rate"] != (r.get("best") or {}).get("rate"):
                    add(
                        scenario,
                        kind,
                        f"{top['rate']}/s (p99 over 50 ms)",
                        top,
                        top["achieved_per_second"],
                    )
            elif scenario == "S4":
                for size, g in r.items():
                    if size.isdigit() and g.get("best"):
                        add(
                            scenario,
                            kind,
                            f"group {size}, {g['best']['rate']} msg/s",
                            g["best"],
                            g["best"]["achieved_per_second"],
                        )
    return "\n".join(lines)


# -- main -------------------------------------------------------------------------------------


def main() -> None:  # noqa: PLR0915
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run (< 2 min)")
    parser.add_argument(
        "--scenarios",
        default=",".join(ALL_SCENARIOS),
        help="comma-separated, of S1..S6 (default: all)",
    )
    parser.add_argument("--servers", default="ours,peer", help="ours,peer (default: both)")
    parser.add_argument("--connections", type=int, help="S1 idle connections (10000; quick 1000)")
    parser.add_argument(
        "--compression",
        choices=("off", "on"),
        default="off",
        help="per-message deflate on both servers (default off)",
    )
    parser.add_argument(
        "--ws",
        default="auto",
        help="ours: uvicorn ws backend: auto (websockets), websockets-sansio, wsproto",
    )
    parser.add_argument("--loop", default="auto", help="ours: uvicorn loop: auto (uvloop), asyncio")
    parser.add_argument("--http", default="auto", help="ours: uvicorn http: auto (httptools), h11")
    parser.add_argument(
        "--json-codec",
        choices=("std", "orjson"),
        default="std",
        help="ours: python-socketio's JSON codec",
    )
    parser.add_argument(
        "--db-pool", type=int, default=0, help="ours: MariaDB pool size, no overflow (0: default)"
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="no taskset")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "artifacts/bench",
        help="where the JSON results and plots go (artifacts/bench)",
    )
    args = parser.parse_args()
    args.servers = [s for s in args.servers.split(",") if s]
    scenarios = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    if unknown := set(scenarios) - set(ALL_SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    plan = quick_plan() if args.quick else Plan()
    if args.connections:
        plan.connections = args.connections
    if not shutil.which("taskset") or (os.cpu_count() or 1) < 2:
        args.pin = False
    levers = Levers(
        args.compression == "on", args.ws, args.loop, args.http, args.json_codec, args.db_pool
    )

    # A terminated run still stops its servers and drops its database (the `with` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    started = time.monotonic()
    load_before = load_average()
    print(f"load average before the run: {load_before:.2f}", file=sys.stderr)
    if load_before > 1.5:
        print(
            "WARNING: the machine is busy (load > 1.5): numbers are not representative",
            file=sys.stderr,
        )
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="securechat-bench-") as tmp, bench_database() as db:
        scratch = Path(tmp)
        users = max(2 * plan.pairs, max(plan.groups) if "S4" in scenarios else 0, 100)
        with server("ours", db, scratch, Levers(), args) as srv:
            print(f"setup: {users} accounts through the HTTP API…", file=sys.stderr)
            fixture = asyncio.run(
                make_fixture(srv.url, users, plan.pairs, plan.groups if "S4" in scenarios else [])
            )
        for scenario in scenarios:
            if scenario == "S6":
                print(f"S6: {plan.history_messages:,} messages into the database…", file=sys.stderr)
                fill_history(db, fixture, plan.history_messages)
            results[scenario] = run_scenario(scenario, plan, db, fixture, scratch, levers, args)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": machine(),
        "levers": levers.describe(),
        "pinned": args.pin,
        "load_average": {"before": round(load_before, 2), "after": round(load_average(), 2)},
        "seconds": round(time.monotonic() - started),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    # Only the load before the run tells of other work: the bench's own server, driver and
    # MariaDB keep the 1-minute load average at 2 to 3 while it runs.
    loaded = report["load_average"]["before"] > 1.5
    print(
        f"\n{'quick' if args.quick else 'full'} run, {report['seconds']} s, {levers.describe()},"
        f" load average {report['load_average']['before']} -> {report['load_average']['after']}"
        f"{' (LOADED MACHINE: not representative)' if loaded else ''}"
    )
    print(table(results))
    print()
    print(details(results))
    print(f"\nresults: {path}")
    try:
        from plot import plot  # noqa: PLC0415 (matplotlib only when plotting)

        print(f"plots: {', '.join(str(p) for p in plot(report, path.with_suffix('')))}")
    except ImportError as error:
        print(f"no plots ({error}); pip install -r bench/requirements.txt", file=sys.stderr)


if __name__ == "__main__":
    main()
