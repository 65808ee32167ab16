"""Downloads against a real loopback HTTP server that speaks the Hub's protocol, with faults injected."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from app.models import fetch, hub
from app.models.download import DownloadJob, DownloadProgress, DownloadRequest, DownloadState, run_to_end
from app.models.download_queue import DownloadQueue
from app.models.errors import AuthRequiredError, DiskFullError, HashMismatchError, OfflineError, RemoteNotFoundError
from tests.support.fakehub import FakeHub, make_blob
from app.models.library import ModelLibrary
from app.models.network import NetworkConfig
from tests.app.models.conftest import FAST
from tests.gguf_models import write_tiny_gptoss

ROOT = Path(__file__).resolve().parents[3]
REPO = "org/tiny-GGUF"


def make_job(models_dir: Path, net: NetworkConfig, filename: str, repo: str = REPO, **kw: Any) -> DownloadJob:
    return DownloadJob(DownloadRequest(repo, filename), models_dir, net, policy=FAST,
                       library=ModelLibrary(models_dir), **kw)


def run(job: DownloadJob) -> list[DownloadProgress]:
    return list(job.run())


def leftovers(models_dir: Path) -> list[str]:
    return sorted(p.name for p in models_dir.iterdir() if p.name.endswith((".part", ".part.json")))


def run_in_thread(job: DownloadJob) -> tuple[threading.Thread, list[DownloadProgress]]:
    events: list[DownloadProgress] = []
    t = threading.Thread(target=lambda: events.extend(job.run()), name="test-download")
    t.start()
    return t, events


def test_gguf_download_ends_verified_and_listed(fakehub: FakeHub, net: NetworkConfig, models_dir: Path,
                                                tmp_path: Path) -> None:
    src = write_tiny_gptoss(tmp_path / "gpt-oss-tiny.gguf")
    data = src.read_bytes()
    fakehub.add_file(REPO, "gpt-oss-tiny.gguf", data)
    events = run(make_job(models_dir, net, "gpt-oss-tiny.gguf"))
    states = [e.state for e in events]
    assert states[0] is DownloadState.STARTING
    assert DownloadState.DOWNLOADING in states and DownloadState.VERIFYING in states
    assert events[-1].state is DownloadState.COMPLETED, events[-1].message
    assert events[-1].bytes_done == events[-1].total == len(data)
    assert (models_dir / "gpt-oss-tiny.gguf").read_bytes() == data
    assert leftovers(models_dir) == []
    lib = ModelLibrary(models_dir)
    [model] = lib.list_installed()
    assert model.architecture == "gpt-oss" and model.source == "huggingface" and model.repo_id == REPO
    assert lib.recorded_hash(models_dir / "gpt-oss-tiny.gguf") == hashlib.sha256(data).hexdigest()


def test_connection_dropped_at_random_offsets_still_ends_verified(fakehub: FakeHub, net: NetworkConfig,
                                                                  models_dir: Path) -> None:
    data = make_blob(3_000_000, seed=1)
    f = fakehub.add_file(REPO, "model.gguf", data)
    drops = sorted(random.Random(7).sample(range(1, len(data) - 1), 5))
    f.faults.drop_at = list(drops)
    events = run(make_job(models_dir, net, "model.gguf"))
    assert events[-1].state is DownloadState.COMPLETED, events[-1].message
    assert (models_dir / "model.gguf").read_bytes() == data
    # Each retry asked for the rest, from exactly where the previous connection broke.
    assert fakehub.ranges("model.gguf") == [None] + [f"bytes={d}-" for d in drops]
    assert sum(e.state is DownloadState.RETRYING for e in events) == 5


def test_server_ignoring_range_restarts_from_zero_without_corruption(fakehub: FakeHub, net: NetworkConfig,
                                                                     models_dir: Path) -> None:
    data = make_blob(2_000_000, seed=2)
    f = fakehub.add_file(REPO, "model.gguf", data)
    f.faults.drop_at = [1_200_000]
    f.faults.ignore_range = True
    events = run(make_job(models_dir, net, "model.gguf"))
    assert events[-1].state is DownloadState.COMPLETED, events[-1].message
    assert fakehub.ranges("model.gguf") == [None, "bytes=1200000-"]
    assert (models_dir / "model.gguf").read_bytes() == data


def test_corrupted_bytes_are_caught_and_nothing_usable_is_left(fakehub: FakeHub, net: NetworkConfig,
                                                               models_dir: Path) -> None:
    data = make_blob(1_500_000, seed=3)
    fakehub.add_file(REPO, "model.gguf", data).faults.corrupt_at = 777_777
    job = make_job(models_dir, net, "model.gguf")
    events = run(job)
    last = events[-1]
    assert last.state is DownloadState.FAILED
    assert isinstance(last.error, HashMismatchError)
    assert "corrupt" in last.message and "try the download again" in last.message
    assert sorted(p.name for p in models_dir.iterdir()) == []  # no model, no part, no state
    assert ModelLibrary(models_dir).scan().models == []
    with pytest.raises(HashMismatchError):  # the offered retry: same outcome while the server corrupts
        run_to_end(make_job(models_dir, net, "model.gguf"))


def test_missing_file_and_missing_repo_are_404_errors(fakehub: FakeHub, net: NetworkConfig,
                                                      models_dir: Path) -> None:
    fakehub.add_file(REPO, "model.gguf", b"x" * 10)
    last = run(make_job(models_dir, net, "nope.gguf"))[-1]
    assert last.state is DownloadState.FAILED and isinstance(last.error, RemoteNotFoundError)
    assert "nope.gguf" in last.message
    last = run(make_job(models_dir, net, "model.gguf", repo="org/does-not-exist"))[-1]
    assert isinstance(last.error, RemoteNotFoundError) and "org/does-not-exist" in last.message
    assert list(models_dir.iterdir()) == []


def test_resolve_answering_404_mid_download_fails_clearly(fakehub: FakeHub, net: NetworkConfig,
                                                          models_dir: Path) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(100_000)).faults.resolve_errors = [(404, {})]
    last = run(make_job(models_dir, net, "model.gguf"))[-1]
    assert isinstance(last.error, RemoteNotFoundError) and "404" in last.message


def test_gated_repo_needs_a_token(fakehub: FakeHub, net: NetworkConfig, models_dir: Path) -> None:
    data = make_blob(200_000, seed=4)
    fakehub.add_file("gated/model-GGUF", "model.gguf", data, token="hf_secret_token_123")
    last = run(make_job(models_dir, net, "model.gguf", repo="gated/model-GGUF"))[-1]
    assert last.state is DownloadState.FAILED and isinstance(last.error, AuthRequiredError)
    assert "token" in last.message.lower()
    wrong = NetworkConfig(endpoint=net.endpoint, token="hf_wrong")
    last = run(make_job(models_dir, wrong, "model.gguf", repo="gated/model-GGUF"))[-1]
    assert isinstance(last.error, AuthRequiredError) and "accept" in last.message
    good = NetworkConfig(endpoint=net.endpoint, token="hf_secret_token_123")
    last = run(make_job(models_dir, good, "model.gguf", repo="gated/model-GGUF"))[-1]
    assert last.state is DownloadState.COMPLETED, last.message
    assert (models_dir / "model.gguf").read_bytes() == data


def test_401_from_the_file_endpoint_without_token(fakehub: FakeHub, net: NetworkConfig, models_dir: Path) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(10_000)).faults.resolve_errors = [(401, {})]
    last = run(make_job(models_dir, net, "model.gguf"))[-1]
    assert isinstance(last.error, AuthRequiredError) and "token" in last.message


def test_token_goes_to_the_hub_but_not_to_the_cdn(models_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hf_do_not_leak_4242"
    with FakeHub(cdn_host="localhost") as fakehub:
        fakehub.add_file("gated/model-GGUF", "model.gguf", make_blob(50_000), token=secret)
        net = NetworkConfig(endpoint=fakehub.url, token=secret)
        job = make_job(models_dir, net, "model.gguf", repo="gated/model-GGUF")
        assert run(job)[-1].state is DownloadState.COMPLETED
        resolve = [r for r in fakehub.requests if "/resolve/" in r.path]
        cdn = [r for r in fakehub.requests if r.path.startswith("/cdn/")]
    assert resolve and all(r.authorized for r in resolve)
    assert cdn and not any(r.authorized for r in cdn)
    assert secret not in caplog.text
    assert secret not in repr(net)


def test_429_and_503_retry_after_is_honoured(fakehub: FakeHub, net: NetworkConfig, models_dir: Path) -> None:
    data = make_blob(300_000, seed=5)
    fakehub.add_file(REPO, "model.gguf", data).faults.resolve_errors = [
        (429, {"Retry-After": "1"}), (503, {"Retry-After": "1"})]
    t0 = time.monotonic()
    events = run(make_job(models_dir, net, "model.gguf"))
    elapsed = time.monotonic() - t0
    retries = [e for e in events if e.state is DownloadState.RETRYING]
    assert [e.retry_in_s for e in retries] == [1.0, 1.0]
    assert "429" in retries[0].message and "503" in retries[1].message
    assert elapsed >= 2.0
    assert events[-1].state is DownloadState.COMPLETED
    assert (models_dir / "model.gguf").read_bytes() == data


@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_stalled_server_pause_and_cancel_answer_within_200ms(fakehub: FakeHub, net: NetworkConfig,
                                                             models_dir: Path, action: str) -> None:
    data = make_blob(2_000_000, seed=6)
    f = fakehub.add_file(REPO, "model.gguf", data)
    f.faults.stall_at = 1_048_576
    job = make_job(models_dir, net, "model.gguf")
    thread, events = run_in_thread(job)
    assert fakehub.stalled.wait(10)
    time.sleep(0.3)  # the client is now blocked reading a connection that sends nothing
    t0 = time.monotonic()
    getattr(job, action)()
    thread.join(2)
    elapsed = time.monotonic() - t0
    assert not thread.is_alive()
    assert elapsed < 0.2, f"{action} took {elapsed:.3f}s"
    if action == "cancel":
        assert events[-1].state is DownloadState.CANCELLED
        assert leftovers(models_dir) == [] and not (models_dir / "model.gguf").exists()
        return
    assert events[-1].state is DownloadState.PAUSED
    assert (models_dir / "model.gguf.part").stat().st_size == 1_048_576
    state = json.loads((models_dir / "model.gguf.part.json").read_text())
    assert state["size"] == len(data) and state["sha256"] == hashlib.sha256(data).hexdigest()
    assert state["url"].endswith("/org/tiny-GGUF/resolve/main/model.gguf") and state["etag"]
    # Resume: the part is re-hashed, then only the rest is fetched.
    f.faults.stall_at = None
    resumed = run(job)
    assert resumed[-1].state is DownloadState.COMPLETED, resumed[-1].message
    assert any(e.state is DownloadState.CHECKING for e in resumed)
    assert resumed[-1].resumed_from == 1_048_576
    assert fakehub.ranges("model.gguf")[-1] == "bytes=1048576-"
    assert (models_dir / "model.gguf").read_bytes() == data


def test_cancel_during_a_long_retry_wait_is_immediate(fakehub: FakeHub, models_dir: Path) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(10_000)).faults.resolve_errors = [(503, {"Retry-After": "30"})]
    net = NetworkConfig(endpoint=fakehub.url)
    job = DownloadJob(DownloadRequest(REPO, "model.gguf"), models_dir, net)  # default policy: waits 30 s
    events: list[DownloadProgress] = []
    got_retry = threading.Event()

    def consume() -> None:
        for e in job.run():
            events.append(e)
            if e.state is DownloadState.RETRYING:
                got_retry.set()

    t = threading.Thread(target=consume)
    t.start()
    assert got_retry.wait(10)
    t0 = time.monotonic()
    job.cancel()
    t.join(2)
    assert time.monotonic() - t0 < 0.2
    assert events[-1].state is DownloadState.CANCELLED and leftovers(models_dir) == []


def test_not_enough_disk_space_is_said_before_anything_is_written(fakehub: FakeHub, net: NetworkConfig,
                                                                  models_dir: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(100_000))
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    last = run(make_job(models_dir, net, "model.gguf"))[-1]
    assert isinstance(last.error, DiskFullError)
    assert last.message.startswith(f"Not enough disk space in {models_dir}: need ")
    assert "1.0 KB free" in last.message
    assert fakehub.ranges("model.gguf") == [] and list(models_dir.iterdir()) == []


class _FullDisk:
    """A part file whose disk fills up after ``room`` bytes (ENOSPC, as a real full disk)."""

    def __init__(self, f: BinaryIO, room: int) -> None:
        self._f = f
        self._room = room

    def write(self, data: Any) -> int:
        if self._room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self._f.write(bytes(data)[: self._room])
        self._room -= n
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)


def test_disk_filling_up_mid_download_keeps_the_part_for_later(fakehub: FakeHub, net: NetworkConfig,
                                                                models_dir: Path) -> None:
    data = make_blob(3_000_000, seed=8)
    fakehub.add_file(REPO, "model.gguf", data)

    def opener(path: Path) -> BinaryIO:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        return _FullDisk(os.fdopen(fd, "r+b", buffering=0), room=1_000_000)  # type: ignore[return-value]

    last = run(make_job(models_dir, net, "model.gguf", opener=opener))[-1]
    assert isinstance(last.error, DiskFullError)
    assert f"Not enough disk space in {models_dir}" in last.message and "free" in last.message
    assert (models_dir / "model.gguf.part").stat().st_size == 1_000_000
    assert not (models_dir / "model.gguf").exists()
    # Space freed: the next run picks up from the part file.
    assert run(make_job(models_dir, net, "model.gguf"))[-1].state is DownloadState.COMPLETED
    assert fakehub.ranges("model.gguf")[-1] == "bytes=1000000-"
    assert (models_dir / "model.gguf").read_bytes() == data


def test_killed_process_resumes_from_the_part_file(fakehub: FakeHub, tmp_path: Path) -> None:
    data = make_blob(6_000_000, seed=9)
    f = fakehub.add_file(REPO, "model.gguf", data)
    f.faults.throttle_bps = 1_500_000
    data_dir = tmp_path / "data"
    env = dict(os.environ, HF_ENDPOINT=fakehub.url, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "app.models.cli", "--data-dir", str(data_dir), "download", REPO, "model.gguf",
           "--no-progress"]
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    part = data_dir / "models" / "model.gguf.part"
    try:
        deadline = time.monotonic() + 30
        while not (part.exists() and part.stat().st_size >= 1_500_000):
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the child never got going"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(10)
        child.stdout.close()  # type: ignore[union-attr]
        child.stderr.close()  # type: ignore[union-attr]
    kept = part.stat().st_size
    assert 1_500_000 <= kept < len(data)
    assert (data_dir / "models" / "model.gguf.part.json").exists()
    f.faults.throttle_bps = None
    job = DownloadJob(DownloadRequest(REPO, "model.gguf"), data_dir / "models", NetworkConfig(endpoint=fakehub.url),
                      policy=FAST)
    events = run(job)
    assert events[-1].state is DownloadState.COMPLETED, events[-1].message
    assert events[-1].resumed_from > 0  # not from zero
    last_range = fakehub.ranges("model.gguf")[-1]
    assert last_range is not None and int(last_range[len("bytes="):-1]) >= 1_500_000
    assert (data_dir / "models" / "model.gguf").read_bytes() == data


def test_offline_mode_opens_no_socket(fakehub: FakeHub, models_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(1000))
    calls: list[Any] = []

    def refuse(self: socket.socket, *args: Any) -> Any:
        calls.append(args)
        raise AssertionError("a socket was opened in offline mode")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    net = NetworkConfig(offline=True, endpoint=fakehub.url)
    last = run(make_job(models_dir, net, "model.gguf"))[-1]
    assert isinstance(last.error, OfflineError) and last.message.startswith("Offline mode is on")
    for call in (lambda: hub.search_models("x", net), lambda: hub.list_gguf_files(REPO, net),
                 lambda: hub.file_info(REPO, "model.gguf", net)):
        with pytest.raises(OfflineError, match="^Offline mode is on"):
            call()
    assert calls == [] and fakehub.requests == []


def test_small_non_lfs_file_is_checked_against_its_git_blob_id(fakehub: FakeHub, net: NetworkConfig,
                                                               models_dir: Path) -> None:
    fakehub.add_file(REPO, "tiny.gguf", b"GGUF small file kept in git", lfs=False)
    assert run(make_job(models_dir, net, "tiny.gguf"))[-1].state is DownloadState.COMPLETED
    fakehub.add_file(REPO, "bad.gguf", b"another small file", lfs=False).faults.corrupt_at = 3
    last = run(make_job(models_dir, net, "bad.gguf"))[-1]
    assert isinstance(last.error, HashMismatchError) and "git checksum" in last.message
    assert not (models_dir / "bad.gguf").exists()


def test_a_second_download_of_an_installed_file_fetches_nothing(fakehub: FakeHub, net: NetworkConfig,
                                                                models_dir: Path) -> None:
    fakehub.add_file(REPO, "model.gguf", make_blob(100_000))
    assert run(make_job(models_dir, net, "model.gguf"))[-1].state is DownloadState.COMPLETED
    before = len(fakehub.ranges("model.gguf"))
    last = run(make_job(models_dir, net, "model.gguf"))[-1]
    assert last.state is DownloadState.COMPLETED and "already installed" in last.message
    assert len(fakehub.ranges("model.gguf")) == before
    (models_dir / "other.gguf").write_bytes(b"something else entirely")
    fakehub.add_file(REPO, "other.gguf", make_blob(23))
    last = run(make_job(models_dir, net, "other.gguf"))[-1]
    assert last.state is DownloadState.FAILED and "already in" in last.message
    assert (models_dir / "other.gguf").read_bytes() == b"something else entirely"  # never overwritten


def test_downloads_through_a_proxy(fakehub: FakeHub, models_dir: Path) -> None:
    data = make_blob(150_000, seed=11)
    fakehub.add_file(REPO, "model.gguf", data)
    # The endpoint's host does not exist: only the proxy can reach it.
    net = NetworkConfig(endpoint=f"http://hub.invalid:{fakehub.port}", proxy=fakehub.url)
    assert run(make_job(models_dir, net, "model.gguf"))[-1].state is DownloadState.COMPLETED
    assert all(r.path.startswith(("/api/", "/org/", "/cdn/")) for r in fakehub.requests)
    assert (models_dir / "model.gguf").read_bytes() == data


def test_queue_runs_one_download_at_a_time(fakehub: FakeHub, net: NetworkConfig, models_dir: Path) -> None:
    blobs = {f"m{i}.gguf": make_blob(400_000, seed=20 + i) for i in range(3)}
    for name, data in blobs.items():
        fakehub.add_file(REPO, name, data).faults.throttle_bps = 4_000_000
    lock = threading.Lock()
    downloading: set[str] = set()
    most = 0
    finished: list[str] = []

    def listener(job: DownloadJob, ev: DownloadProgress) -> None:
        nonlocal most
        with lock:
            if ev.state is DownloadState.DOWNLOADING:
                downloading.add(ev.filename)
            elif ev.state.finished:
                downloading.discard(ev.filename)
                finished.append(f"{ev.filename}:{ev.state.value}")
            most = max(most, len(downloading))

    q = DownloadQueue(listener=listener)
    try:
        for name in blobs:
            q.submit(make_job(models_dir, net, name))
        with pytest.raises(ValueError, match="already queued"):
            q.submit(make_job(models_dir, net, "m2.gguf"))
        assert q.wait_idle(30)
    finally:
        q.close()
    assert most == 1
    assert finished == [f"{n}:completed" for n in blobs]
    for name, data in blobs.items():
        assert (models_dir / name).read_bytes() == data


def test_queue_pause_and_resume(fakehub: FakeHub, net: NetworkConfig, models_dir: Path) -> None:
    data = make_blob(1_000_000, seed=30)
    fakehub.add_file(REPO, "model.gguf", data).faults.throttle_bps = 2_000_000
    started = threading.Event()
    states: list[DownloadState] = []

    def listener(job: DownloadJob, ev: DownloadProgress) -> None:
        states.append(ev.state)
        if ev.state is DownloadState.DOWNLOADING and ev.bytes_done > 100_000:
            started.set()

    q = DownloadQueue(listener=listener)
    try:
        job = q.submit(make_job(models_dir, net, "model.gguf"))
        assert started.wait(10)
        q.pause(job)
        assert q.wait_idle(2) and job.state is DownloadState.PAUSED
        assert (models_dir / "model.gguf.part").exists()
        q.resume(job)
        assert q.wait_idle(10)
    finally:
        q.close()
    assert job.state is DownloadState.COMPLETED and (models_dir / "model.gguf").read_bytes() == data
    assert DownloadState.PAUSED in states and states[-1] is DownloadState.COMPLETED


@pytest.fixture
def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def test_tls_is_always_verified(self_signed: tuple[Path, Path], models_dir: Path) -> None:
    with FakeHub(tls=self_signed) as fakehub:
        f = fakehub.add_file(REPO, "model.gguf", make_blob(1000))
        net = NetworkConfig(endpoint=fakehub.url)
        assert fakehub.url.startswith("https://")
        last = run(make_job(models_dir, net, "model.gguf"))[-1]
        assert last.state is DownloadState.FAILED and "could not be verified" in last.message
        # The byte transfer refuses it too (not only huggingface_hub's metadata call).
        with pytest.raises(ssl.SSLCertVerificationError):
            fetch.open_url(f"{fakehub.url}/cdn/{f.sha256}", headers={}, abort=fetch.AbortHandle())
    assert list(models_dir.iterdir()) == []


def test_leaving_the_generator_early_keeps_the_part_like_a_pause(fakehub: FakeHub, net: NetworkConfig,
                                                                 models_dir: Path) -> None:
    data = make_blob(2_000_000, seed=12)
    fakehub.add_file(REPO, "model.gguf", data).faults.throttle_bps = 4_000_000
    job = make_job(models_dir, net, "model.gguf")
    gen = job.run()
    for ev in gen:
        if ev.state is DownloadState.DOWNLOADING and ev.bytes_done > 0:
            break
    gen.close()  # what an interrupted consumer (Ctrl+C, a closed window) does
    assert job.state is DownloadState.PAUSED and not job.running
    assert (models_dir / "model.gguf.part").exists() and (models_dir / "model.gguf.part.json").exists()
    fakehub.file(REPO, "model.gguf").faults.throttle_bps = None
    assert run(job)[-1].state is DownloadState.COMPLETED
    assert (models_dir / "model.gguf").read_bytes() == data
