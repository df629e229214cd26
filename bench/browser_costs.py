"""Browser-side costs of the client's cryptography, measured in Chromium (issue #8).

    .venv/bin/python bench/browser_costs.py             # about half a minute
    .venv/bin/python bench/browser_costs.py --quick     # smaller file, fewer repetitions

A real `securechat serve` (fresh SQLite database, loopback) serves the browser client's ES
modules; Debian's headless Chromium, driven by Playwright as the browser tests drive it, loads
them from that origin and runs browser_costs.js: key derivation with the iterations the
server's prelogin asks for, encrypt+sign and verify+decrypt of a short text message, a history
page, epoch-key wraps, and the encryption and decryption of a 100 MiB file, all through the
modules' own functions, timed with performance.now(). Chromium is kept offline: only
localhost resolves, and every request to another host is aborted. Prints a table and writes
`browser-<time>.json` under --out. Without Chromium or Playwright it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

from securechat.db.migrate import upgrade
from servers import wait_healthy

# Optional: without Playwright the step says why it is skipped (it comes with `make venv`).
try:
    from playwright.sync_api import sync_playwright

    PLAYWRIGHT_MISSING = ""
except ImportError as missing:
    PLAYWRIGHT_MISSING = str(missing)

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CHROMIUM = Path("/usr/bin/chromium")
# The browser tests' flags (app/tests/browser/conftest.py: headless, no sandbox in a container,
# no background or component traffic), and: no host but localhost resolves, so nothing can
# leave the machine even if a request slipped past the route guard; exact JS heap numbers
# (performance.memory is otherwise coarsened); window.gc() to settle the heap between steps.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost",
    "--enable-precise-memory-info",
    "--js-flags=--expose-gc",
]
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1"})
ISOLATION_HEADERS = {
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
}
# A page of the server's origin that does not depend on the rest of the browser client (as in
# the browser tests): the modules are imported into it, under the server's real CSP.
BLANK_PATH = "/api/v1/health"
PAGE_SCRIPT = BENCH / "browser_costs.js"
# A typical short chat line (120 characters).
TEXT = (
    "Hi both, the delivery for site B moves to Thursday 14:00; "
    "please confirm the gate code and who signs for the pallets."
)
MIB = 1 << 20


@dataclass(frozen=True)
class Plan:
    kdf_runs: int = 5
    messages: int = 2000
    warmup: int = 100
    history_pages: int = 40
    page_size: int = 50
    wraps: int = 300
    file_bytes: int = 100 * MIB
    file_runs: int = 2
    component_bytes: int = 16 * MIB


QUICK = Plan(
    kdf_runs=2,
    messages=300,
    warmup=30,
    history_pages=10,
    wraps=50,
    file_bytes=16 * MIB,
    file_runs=1,
    component_bytes=4 * MIB,
)


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(scratch: Path) -> Iterator[str]:
    """A real `securechat serve` on a loopback port with its default KDF settings; yields
    its origin as http://localhost:PORT (a secure context for Web Crypto)."""
    database = f"sqlite:///{scratch / 'securechat.db'}"
    upgrade(database)  # what `securechat db upgrade` does
    port = free_port()
    env = {
        **os.environ,
        "SECURECHAT_DATABASE_URL": database,
        "SECURECHAT_SECRET_KEY": secrets.token_urlsafe(48),
        "SECURECHAT_UPLOAD_DIR": str(scratch / "uploads"),
        "SECURECHAT_PORT": str(port),
        "SECURECHAT_LOG_LEVEL": "warning",
    }
    log_path = scratch / "server.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "securechat.cli", "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(process, f"http://127.0.0.1:{port}", log_path)
        yield f"http://localhost:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- Chromium's memory, from /proc ---------------------------------------------------------


def chromium_pids() -> list[int]:
    """Chromium processes started below this one (Playwright's driver starts the browser)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, _, rest = stat.partition(" (")[2].rpartition(") ")
        pid = int(entry.name)
        names[pid] = name
        children.setdefault(int(rest.split()[1]), []).append(pid)
    found: list[int] = []
    stack = [os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            stack.append(child)
            if names.get(child, "").startswith("chrom"):
                found.append(child)
    return found


def chromium_pss_kib() -> tuple[int, int]:
    """Proportional set size (shared pages counted once) of all Chromium processes, and of
    its renderers alone (where the page's JS heap lives; the browser process keeps Blobs)."""
    total = renderers = 0
    for pid in chromium_pids():
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # the process ended meanwhile
        for line in rollup.splitlines():
            if line.startswith("Pss:"):
                total += int(line.split()[1])
                if b"--type=renderer" in command:
                    renderers += int(line.split()[1])
                break
    return total, renderers


class PeakMemory:
    """Samples Chromium's PSS every `interval` seconds in a thread while the block runs."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.before_kib = self.peak_kib = 0
        self.renderer_before_kib = self.renderer_peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        total, renderers = chromium_pss_kib()
        self.peak_kib = max(self.peak_kib, total)
        self.renderer_peak_kib = max(self.renderer_peak_kib, renderers)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Self:
        self.before_kib, self.renderer_before_kib = chromium_pss_kib()
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


# -- statistics ----------------------------------------------------------------------------


def summary(ms: list[float]) -> dict[str, float]:
    """Mean, p50, p99 (nearest rank), min and max of per-operation milliseconds."""
    ordered = sorted(ms)
    p99 = ordered[min(len(ordered), math.ceil(0.99 * len(ordered))) - 1]
    return {
        "n": len(ordered),
        "mean_ms": round(statistics.fmean(ordered), 4),
        "p50_ms": round(statistics.median(ordered), 4),
        "p99_ms": round(p99, 4),
        "min_ms": round(ordered[0], 4),
        "max_ms": round(ordered[-1], 4),
    }


def mib(value: float | None) -> float | None:
    return None if value is None else round(value / MIB, 1)


def per_second(size: int, ms: float) -> float:
    return round(size / MIB / (ms / 1000), 1)


# -- the measurement -----------------------------------------------------------------------


def page_function() -> str:
    """browser_costs.js without its leading comment lines: one async function's source."""
    lines = PAGE_SCRIPT.read_text().splitlines()
    while lines and lines[0].startswith("//"):
        lines.pop(0)
    return "\n".join(lines).strip().rstrip(";")


def guard(route: Route, blocked: list[str]) -> None:
    """Let requests to the loopback server through; abort (and record) anything else.

    The page itself gets two more headers, COOP and COEP, which make it cross-origin
    isolated: Chromium then gives performance.now() a 5 µs resolution instead of 100 µs, so
    single sub-millisecond operations can be timed. The modules, their CSP and what they do
    are unchanged (they are same-origin, which COEP allows)."""
    request = route.request
    parts = urlsplit(request.url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        blocked.append(request.url)
        route.abort("blockedbyclient")
    elif request.is_navigation_request() and parts.path == BLANK_PATH:
        response = route.fetch()
        headers = {**response.headers, **ISOLATION_HEADERS}
        route.fulfill(response=response, headers=headers)
    else:
        route.continue_()


def file_runs(step: Callable[[], dict[str, Any]], plan: Plan) -> list[dict[str, Any]]:
    runs = []
    for run in range(plan.file_runs):
        print(f"browser costs: {plan.file_bytes // MIB} MiB file, run {run + 1}…", file=sys.stderr)
        with PeakMemory() as memory:
            got = step()
        runs.append(
            {
                "mib": round(got["bytes"] / MIB, 1),
                "records": got["records"],
                "encrypt_s": round(got["encryptMs"] / 1000, 3),
                "decrypt_s": round(got["decryptMs"] / 1000, 3),
                "encrypt_mib_per_s": per_second(got["bytes"], got["encryptMs"]),
                "decrypt_mib_per_s": per_second(got["bytes"], got["decryptMs"]),
                "js_heap_before_mib": mib(got["heapBefore"]),
                "js_heap_peak_encrypt_mib": mib(got["encryptHeapPeak"]),
                "js_heap_peak_decrypt_mib": mib(got["decryptHeapPeak"]),
                "js_heap_after_gc_mib": mib(got["heapAfter"]),
                "chromium_pss_before_mib": round(memory.before_kib / 1024, 1),
                "chromium_pss_peak_mib": round(memory.peak_kib / 1024, 1),
                "renderer_pss_before_mib": round(memory.renderer_before_kib / 1024, 1),
                "renderer_pss_peak_mib": round(memory.renderer_peak_kib / 1024, 1),
            }
        )
    return runs


def measure(url: str, plan: Plan, chromium: Path) -> dict[str, Any]:
    source = page_function()
    blocked: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.route("**/*", lambda route: guard(route, blocked))
            page: Page = context.new_page()
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            response = page.goto(url + BLANK_PATH)
            if response is None or not response.ok:
                raise SystemExit(f"browser costs: {url}{BLANK_PATH} did not load")

            def run(step: str, **params: Any) -> Any:
                return page.evaluate(source, {"step": step, "params": params})

            results = run_steps(run, plan)
            results["chromium"] = browser.version
        finally:
            browser.close()
    if blocked or page_errors:
        raise SystemExit(f"browser costs: blocked requests {blocked}, page errors {page_errors}")
    return results


def run_steps(run: Callable[..., Any], plan: Plan) -> dict[str, Any]:
    info = run("timer")
    kdf = run("prelogin", username="bench-browser-costs")
    print(
        f"browser costs: key derivation, {kdf['name']} x {kdf['iterations']:,}"
        f" ({plan.kdf_runs} runs)…",
        file=sys.stderr,
    )
    derived = run("kdf", iterations=kdf["iterations"], runs=plan.kdf_runs)
    print(f"browser costs: {plan.messages} messages…", file=sys.stderr)
    messages = run("messages", count=plan.messages, warmup=plan.warmup, text=TEXT)
    history = run("history", pages=plan.history_pages, pageSize=plan.page_size, text=TEXT)
    wraps = run("wraps", count=plan.wraps)
    files = file_runs(lambda: run("file", bytes=plan.file_bytes), plan)
    parts = run("components", bytes=plan.component_bytes)
    page_summary = summary(history["ms"])
    return {
        "user_agent": info["userAgent"],
        "timer_resolution_ms": round(info["resolutionMs"], 4),
        "cross_origin_isolated": info["crossOriginIsolated"],
        "hardware_concurrency": info["hardwareConcurrency"],
        "kdf": {"name": kdf["name"], "iterations": kdf["iterations"], **summary(derived["ms"])},
        "encrypt_sign": {
            **summary(messages["encrypt"]),
            "batch_mean_ms": round(messages["encryptTotal"] / plan.messages, 4),
            "plaintext_bytes": messages["plaintextBytes"],
            "envelope_json_bytes": messages["envelopeJsonBytes"],
        },
        "verify_decrypt": {
            **summary(messages["decrypt"]),
            "batch_mean_ms": round(messages["decryptTotal"] / plan.messages, 4),
        },
        "sign": summary(messages["sign"]),
        "verify": summary(messages["verify"]),
        "check_public_key": summary(messages["onCurve"]),
        "history_page": {
            **page_summary,
            "page_size": plan.page_size,
            "per_message_ms": round(page_summary["mean_ms"] / plan.page_size, 4),
        },
        "wrap": summary(wraps["wrap"]),
        "unwrap": summary(wraps["unwrap"]),
        "file": files,
        "file_components_mib_per_s": {
            "blob_slice_read": per_second(parts["bytes"], parts["readMs"]),
            "aes_256_gcm_web_crypto": per_second(parts["bytes"], parts["aesMs"]),
            "sha256_js": per_second(parts["bytes"], parts["sha256Ms"]),
            "blob_part_per_record": per_second(parts["bytes"], parts["blobPartsMs"]),
            "blob_stream_read": per_second(parts["bytes"], parts["streamReadMs"]),
            "blob_1mib_slice_read": per_second(parts["bytes"], parts["mibSliceReadMs"]),
        },
    }


# -- the report ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with Path("/proc/cpuinfo").open() as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release()}


def table(results: dict[str, Any]) -> str:
    kdf = results["kdf"]
    enc = results["encrypt_sign"]
    rows = [
        (f"key derivation: {kdf['name']} x {kdf['iterations']:,} + 2 HKDF", kdf),
        (f"encrypt+sign, text message ({enc['plaintext_bytes']} B JSON)", enc),
        ("verify+decrypt, same message", results["verify_decrypt"]),
        ("  of which: ECDSA P-256 sign", results["sign"]),
        ("  of which: ECDSA P-256 verify (with key import)", results["verify"]),
        ("    of which: on-curve check (BigInt)", results["check_public_key"]),
        (
            f"history page of {results['history_page']['page_size']}, Promise.all",
            results["history_page"],
        ),
        ("epoch key wrap, per member", results["wrap"]),
        ("epoch key unwrap", results["unwrap"]),
    ]
    width = max(len(label) for label, _ in rows)
    header = f"{'operation':<{width}}  {'n':>5}  {'mean ms':>8}  {'p50 ms':>8}  {'p99 ms':>8}"
    lines = [f"{header}  {'min ms':>8}"]
    for label, row in rows:
        lines.append(
            f"{label:<{width}}  {row['n']:>5}  {row['mean_ms']:>8.3f}"
            f"  {row['p50_ms']:>8.3f}  {row['p99_ms']:>8.3f}  {row['min_ms']:>8.3f}"
        )
    lines.append("")
    lines.append(
        "file run   MiB  encrypt s  MiB/s  decrypt s  MiB/s"
        "  JS heap MiB: before, peak enc, peak dec, after gc"
        "  PSS MiB before, peak: Chromium; its renderer"
    )
    for number, run in enumerate(results["file"], 1):
        heap = (
            f"{run['js_heap_before_mib']}, {run['js_heap_peak_encrypt_mib']},"
            f" {run['js_heap_peak_decrypt_mib']}, {run['js_heap_after_gc_mib']}"
        )
        lines.append(
            f"{number:>8}  {run['mib']:>5}  {run['encrypt_s']:>9.2f}  {run['encrypt_mib_per_s']:>5}"
            f"  {run['decrypt_s']:>9.2f}  {run['decrypt_mib_per_s']:>5}  {heap:<48}"
            f"  {run['chromium_pss_before_mib']}, {run['chromium_pss_peak_mib']};"
            f" {run['renderer_pss_before_mib']}, {run['renderer_pss_peak_mib']}"
        )
    parts = results["file_components_mib_per_s"]
    lines.append(
        "file, per 64 KiB record (MiB/s): Blob.slice read"
        f" {parts['blob_slice_read']}, AES-256-GCM (Web Crypto) {parts['aes_256_gcm_web_crypto']},"
        f" SHA-256 (sha256.js) {parts['sha256_js']}, a Blob part per record"
        f" {parts['blob_part_per_record']}"
    )
    lines.append(
        "not used by files.js, for comparison (MiB/s): Blob stream read"
        f" {parts['blob_stream_read']}, 1 MiB Blob.slice read {parts['blob_1mib_slice_read']}"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 MiB file, fewer repetitions")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM, help=f"the browser ({CHROMIUM})")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "artifacts/bench",
        help="where browser-<time>.json goes (artifacts/bench)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else Plan()
    if not args.chromium.exists():
        print(
            f"browser costs: skipped: {args.chromium} is not installed (apt-get install chromium)",
            file=sys.stderr,
        )
        return
    if PLAYWRIGHT_MISSING:
        print(
            f"browser costs: skipped: no Playwright ({PLAYWRIGHT_MISSING}); make venv installs it",
            file=sys.stderr,
        )
        return

    # A terminated run still closes Chromium and stops its server (the `with` blocks).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="securechat-browser-") as tmp, serve(Path(tmp)) as url:
        results = measure(url, plan, args.chromium)
    report = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "machine": machine(),
        "plan": asdict(plan),
        "load_average": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "seconds": round(time.monotonic() - started),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"browser-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(
        f"\nbrowser costs: Chromium {results['chromium']}, {report['seconds']} s,"
        f" timer resolution {results['timer_resolution_ms']:.3f} ms,"
        f" load average {report['load_average']['before']} -> {report['load_average']['after']}"
    )
    print(table(results))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
