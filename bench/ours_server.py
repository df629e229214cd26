"""`securechat serve` with the levers of the benchmark exposed: what bench/run.py starts when a
lever differs from the server's defaults (otherwise it starts `securechat serve` itself).

    python bench/ours_server.py --port 8000 [--compression] [--ws wsproto] [--loop asyncio]
                                [--http h11] [--json orjson] [--delivery upstream]
                                [--monitor engineio] [--ws-ping 20]

Settings come from SECURECHAT_* as for `securechat serve`; the application is the same
`create_app(settings)`; only uvicorn's options and python-socketio's JSON codec change, or one
of our Socket.IO extensions is swapped back for python-socketio's own code (`--delivery`,
`--monitor`).
Arguments in BENCH_OURS_ARGS are added to the command line: levers that run.py has no flag for
(run.py starts this script when any of its levers differs, e.g. `--db-pool 30`).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import shlex
import sys
import time
from collections import Counter
from typing import Any

import socketio
import uvicorn
from securechat.main import create_app
from securechat.settings import Settings


class OrjsonCodec:
    """The `json` interface python-socketio's packets use (`dumps`, `loads`), through orjson."""

    @staticmethod
    def dumps(data: Any, **_kwargs: Any) -> str:
        import orjson  # noqa: PLC0415 (a bench-only dependency)

        return orjson.dumps(data).decode()

    @staticmethod
    def loads(data: str | bytes, **_kwargs: Any) -> Any:
        import orjson  # noqa: PLC0415

        return orjson.loads(data)


def log_full_collections(*, types: bool) -> None:
    """Print how long each collection of the oldest generation takes: a profile of the idle server
    attributes that time to whichever line happened to allocate when it started."""
    started: list[float] = []

    def measure(phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:  # the oldest generation only
            return
        if phase == "start":
            started[:] = [time.perf_counter(), time.process_time()]
        elif started:
            wall, cpu = time.perf_counter() - started[0], time.process_time() - started[1]
            print(
                f"gc: at {time.time():.1f} a full collection: {1000 * cpu:.0f} ms CPU "
                f"({1000 * wall:.0f} ms), {len(gc.get_objects(2))} objects kept",
                file=sys.stderr,
                flush=True,
            )
            if types:
                kinds = Counter(type(o).__qualname__ for o in gc.get_objects(2))
                print(f"gc: kept {kinds.most_common(25)}", file=sys.stderr, flush=True)

    gc.callbacks.append(measure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--compression", action="store_true", help="per-message deflate on")
    parser.add_argument("--ws", default="auto", help="uvicorn --ws (auto is websockets)")
    parser.add_argument("--loop", default="auto", help="uvicorn --loop (auto is uvloop)")
    parser.add_argument("--http", default="auto", help="uvicorn --http (auto is httptools)")
    parser.add_argument("--json", choices=("std", "orjson"), default="std")
    parser.add_argument(
        "--db-pool", type=int, default=0, help="MariaDB pool size, no overflow (0: the server's)"
    )
    parser.add_argument(
        "--delivery",
        choices=("ours", "upstream"),
        default="ours",
        help="emits to rooms: ours (no task per recipient) or python-socketio's AsyncManager.emit",
    )
    parser.add_argument(
        "--monitor",
        choices=("ours", "engineio"),
        default="ours",
        help="the ping deadline check: ours (one pass) or Engine.IO's service task",
    )
    parser.add_argument(
        "--ws-ping",
        type=float,
        default=0.0,
        help="uvicorn's WebSocket protocol pings, seconds (0: none, as `securechat serve`)",
    )
    parser.add_argument(
        "--gc-log", action="store_true", help="log every full garbage collection (time, objects)"
    )
    parser.add_argument(
        "--gc-types", action="store_true", help="with --gc-log: the commonest kinds of object kept"
    )
    args = parser.parse_args([*sys.argv[1:], *shlex.split(os.environ.get("BENCH_OURS_ARGS", ""))])
    if args.gc_log:
        log_full_collections(types=args.gc_types)
    if args.delivery == "upstream":
        from securechat.realtime.delivery import DeliveringManager  # noqa: PLC0415

        DeliveringManager.emit = socketio.AsyncManager.emit  # type: ignore[method-assign]
    if args.monitor == "engineio":
        from securechat.realtime.liveness import MonitoringManager  # noqa: PLC0415

        MonitoringManager.set_server = socketio.AsyncManager.set_server  # type: ignore[method-assign]
        MonitoringManager.initialize = socketio.AsyncManager.initialize  # type: ignore[method-assign]
    if args.db_pool:
        # The server's engine keeps 10 connections and opens up to 20 more per use; a pool as
        # large as the worker threads (40) never opens one per request.
        import securechat.db.engine as engine_module  # noqa: PLC0415

        original = engine_module.create_engine

        def sized(url: Any, **options: Any) -> Any:
            if not str(url).startswith("sqlite"):
                options.update(pool_size=args.db_pool, max_overflow=0)
            return original(url, **options)

        engine_module.create_engine = sized
    if args.json == "orjson":
        socketio.packet.Packet.json = OrjsonCodec
    settings = Settings.from_env()
    app = create_app(settings)
    logging.basicConfig(format="%(levelname)s: %(name)s: %(message)s")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        ws_per_message_deflate=args.compression,
        ws=args.ws,
        loop=args.loop,
        http=args.http,
        server_header=False,
        ws_ping_interval=args.ws_ping or None,
    )


if __name__ == "__main__":
    main()
