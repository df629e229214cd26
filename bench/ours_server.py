"""`securechat serve` with the levers of the benchmark exposed: what bench/run.py starts when a
lever differs from the server's defaults (otherwise it starts `securechat serve` itself).

    python bench/ours_server.py --port 8000 [--compression] [--ws wsproto] [--loop asyncio]
                                [--http h11] [--json orjson]

Settings come from SECURECHAT_* as for `securechat serve`; the application is the same
`create_app(settings)`; only uvicorn's options and python-socketio's JSON codec change.
"""

from __future__ import annotations

import argparse
import logging
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
    args = parser.parse_args()
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
    )


if __name__ == "__main__":
    main()
