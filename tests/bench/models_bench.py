"""Download throughput benchmark: Hearth's downloader against curl, same loopback server, same file.

``run_download_benchmark()`` starts the fake hub on 127.0.0.1 serving a random
file (1 GiB by default, sent with sendfile so the server is not the limit),
then alternates downloads by Hearth (metadata call, Range GET, sha256 while
writing, verification, rename: the whole job) and by ``curl -L -o``, each
into a fresh file. Rounds alternate which goes first and flush dirty pages
in between, because a previous run's writeback otherwise slows the next.
``python -m tests.bench.models_bench --json`` prints the result.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from app.errors import HearthError
from app.models import hub
from app.models.download import DownloadJob, DownloadRequest, DownloadState
from tests.support.fakehub import write_blob_file
from app.models.network import NetworkConfig

log = logging.getLogger(__name__)

REPO = "bench/throughput-GGUF"
FILENAME = "bench.gguf"


@dataclass
class DownloadBenchResult:
    size_bytes: int
    hearth_bps: float  # median over rounds
    curl_bps: float  # median over rounds
    ratio: float  # hearth_bps / curl_bps
    hearth_runs_bps: list[float] = field(default_factory=list)
    curl_runs_bps: list[float] = field(default_factory=list)
    verified: bool = False  # every Hearth run ended with a matching sha256

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _flush(enabled: bool) -> None:
    if enabled and hasattr(os, "sync"):
        os.sync()


@contextlib.contextmanager
def _server(blob: Path) -> Iterator[str]:
    """The fake hub in its own process: in ours it would compete with the downloader for the GIL."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.fakehub", REPO, str(blob)],
                            cwd=Path(__file__).resolve().parents[2], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http://"):
            raise HearthError("the benchmark's test server did not start")
        yield endpoint
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _hearth_once(net: NetworkConfig, out_dir: Path, flush: bool) -> float:
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    _flush(flush)
    job = DownloadJob(DownloadRequest(REPO, FILENAME), out_dir, net)
    t0 = time.perf_counter()
    last = None
    for last in job.run():
        pass
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out_dir, ignore_errors=True)  # free its page cache before the next run
    if last is None or last.state is not DownloadState.COMPLETED:
        raise HearthError(f"the benchmark download failed: {last.message if last else 'no events'}")
    return elapsed


def _curl_once(curl: str, url: str, out_dir: Path, flush: bool) -> float:
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    _flush(flush)
    t0 = time.perf_counter()
    subprocess.run([curl, "-sS", "--fail", "-L", "-o", str(out_dir / FILENAME), url], check=True)
    elapsed = time.perf_counter() - t0
    shutil.rmtree(out_dir, ignore_errors=True)
    return elapsed


def run_download_benchmark(size_bytes: int = 1 << 30, *, rounds: int = 3,
                           workdir: str | os.PathLike[str] | None = None,
                           flush: bool = True) -> DownloadBenchResult:
    """Download a ``size_bytes`` file ``rounds`` times each via Hearth and via curl; return both throughputs.

    ``flush`` syncs dirty pages before each timed run (slow on a busy disk;
    tests turn it off). Raises HearthError when curl is missing or a download fails.
    """
    curl = shutil.which("curl")
    if curl is None:
        raise HearthError("The download benchmark compares against curl, which is not installed.")
    own = workdir is None
    root = Path(tempfile.mkdtemp(prefix="hearth-dlbench-")) if workdir is None else Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    try:
        (root / "source").mkdir(exist_ok=True)
        blob = write_blob_file(root / "source" / FILENAME, size_bytes)
        hearth_s: list[float] = []
        curl_s: list[float] = []
        with _server(blob) as endpoint:
            url = f"{endpoint}/{REPO}/resolve/main/{FILENAME}"
            net = NetworkConfig(endpoint=endpoint)
            # Warm-up, not timed: imports huggingface_hub, and the first 1 GiB written makes the
            # kernel reclaim memory for the page cache, which would penalise whoever goes first.
            hub.file_info(REPO, FILENAME, net)
            _curl_once(curl, url, root / "curl", flush)
            for i in range(rounds):
                order = ("hearth", "curl") if i % 2 == 0 else ("curl", "hearth")
                for who in order:
                    if who == "hearth":
                        hearth_s.append(_hearth_once(net, root / "hearth", flush))
                    else:
                        curl_s.append(_curl_once(curl, url, root / "curl", flush))
                    log.info("round %d %s: %.2fs", i + 1, who, (hearth_s if who == "hearth" else curl_s)[-1])
        hearth_runs = [size_bytes / s for s in hearth_s]
        curl_runs = [size_bytes / s for s in curl_s]
        h, c = statistics.median(hearth_runs), statistics.median(curl_runs)
        return DownloadBenchResult(size_bytes=size_bytes, hearth_bps=h, curl_bps=c, ratio=h / c,
                                   hearth_runs_bps=hearth_runs, curl_runs_bps=curl_runs, verified=True)
    finally:
        if own:
            shutil.rmtree(root, ignore_errors=True)
        else:
            for sub in ("hearth", "curl", "source"):
                shutil.rmtree(root / sub, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tests.bench.models_bench", description=__doc__)
    p.add_argument("--size-mib", type=int, default=1024)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workdir", help="where to write the test files (default: a temp dir)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    r = run_download_benchmark(args.size_mib << 20, rounds=args.rounds, workdir=args.workdir)
    if args.json:
        print(json.dumps(r.to_json(), indent=2))
    else:
        print(f"Hearth {r.hearth_bps / 1e6:.0f} MB/s, curl {r.curl_bps / 1e6:.0f} MB/s, ratio {r.ratio:.2f} "
              f"({r.size_bytes >> 20} MiB, {len(r.hearth_runs_bps)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
