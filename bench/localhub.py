"""Benchmark of the local Hub: big-file throughput each way, concurrent pulls, server memory.

Runs ``lmolt-hub serve`` in a subprocess (so its RSS can be sampled with psutil), then:

1. upload a ``--size-mb`` file (default 500 MB) as a raw HTTP PUT to the LFS upload URL
   (the server's receive rate) and a second one with ``HfApi.upload_file`` (end to end,
   including the client's own sha256 pass);
2. download it with a raw GET (the server's send rate) and with ``hf_hub_download``;
3. ``--clients`` (default 8) processes ``snapshot_download`` a tiny Llama at once.

Prints MB/s each way and the server's peak RSS. Goals: >= 200 MB/s, RSS < 300 MB.

    python bench/localhub.py [--size-mb 500] [--clients 8] [--root DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import psutil

TOKEN = "hf_bench_token"
MB = 1_000_000


class RssSampler(threading.Thread):
    """Peak resident set size of a process, sampled every 20 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.proc, self.peak, self.running = psutil.Process(pid), 0, True

    def run(self) -> None:
        while self.running:
            try:
                self.peak = max(self.peak, self.proc.memory_info().rss)
            except psutil.Error:
                return
            time.sleep(0.02)


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    cmd = [
        sys.executable,
        "-m",
        "lmolt_hub.cli",
        "serve",
        "--root",
        str(root),
        "--port",
        "0",
        "--token",
        TOKEN,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    return proc, line.split(" at ")[1].strip()


def random_file(path: Path, size: int) -> str:
    """Write ``size`` random bytes; returns their sha256."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            h.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return h.hexdigest()


def request(url: str, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600, blocksize=1 << 20)
    conn.request(method, path, body=body, headers=headers or {})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def raw_upload(url: str, repo: str, path: Path, oid: str) -> float:
    """LFS batch + one streamed PUT + commit, like the client but without its hashing pass."""
    size = path.stat().st_size
    auth = {"Authorization": f"Bearer {TOKEN}"}
    batch = {"operation": "upload", "objects": [{"oid": oid, "size": size}], "hash_algo": "sha256"}
    status, data = request(url, "POST", f"/{repo}.git/info/lfs/objects/batch", json.dumps(batch), auth)
    href = json.loads(data)["objects"][0]["actions"]["upload"]["href"]
    t0 = time.perf_counter()
    with open(path, "rb") as f:
        status, data = request(url, "PUT", href.split(url, 1)[1], f, {"Content-Length": str(size)})
    elapsed = time.perf_counter() - t0
    assert status == 200, data
    lines = [
        {"key": "header", "value": {"summary": "bench raw upload"}},
        {"key": "lfsFile", "value": {"path": path.name, "algo": "sha256", "oid": oid, "size": size}},
    ]
    body = "\n".join(json.dumps(x) for x in lines)
    status, data = request(url, "POST", f"/api/models/{repo}/commit/main", body, auth)
    assert status == 200, data
    return elapsed


def raw_download(url: str, repo: str, name: str) -> tuple[float, int]:
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    t0 = time.perf_counter()
    conn.request("GET", f"/{repo}/resolve/main/{name}")
    resp = conn.getresponse()
    n = 0
    buf = bytearray(4 << 20)
    view = memoryview(buf)
    while got := resp.readinto(view):
        n += got
    elapsed = time.perf_counter() - t0
    conn.close()
    return elapsed, n


def server_cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def pull(args: tuple[str, str, str]) -> float:
    url, repo, cache = args
    os.environ.update(HF_ENDPOINT=url, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1")
    from huggingface_hub import snapshot_download

    t0 = time.perf_counter()
    snapshot_download(repo, cache_dir=cache, endpoint=url)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=500)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--root", type=Path, default=None, help="work dir (default: a temp dir, removed after)")
    a = ap.parse_args()
    work = a.root or Path(tempfile.mkdtemp(prefix="lmolt-bench-hub-"))
    os.environ.update(HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HOME=str(work / "hf_home"))
    server, url = start_server(work / "hub")
    sampler = RssSampler(server.pid)
    sampler.start()
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi(endpoint=url, token=TOKEN)
    size = a.size_mb * MB
    results: dict[str, float] = {}
    try:
        repo = "bench/big"
        api.create_repo(repo)
        raw_path, api_path = work / "raw.bin", work / "api.bin"
        print(f"writing 2 x {a.size_mb} MB of random data ...", flush=True)
        oid = random_file(raw_path, size)
        random_file(api_path, size)
        idle_rss = sampler.peak

        cpu0 = server_cpu(server.pid)
        t = raw_upload(url, repo, raw_path, oid)
        results["upload_http_MBps"] = size / MB / t
        results["upload_cpu_s"] = server_cpu(server.pid) - cpu0
        t0 = time.perf_counter()
        api.upload_file(path_or_fileobj=str(api_path), path_in_repo=api_path.name, repo_id=repo)
        results["upload_hfapi_MBps"] = size / MB / (time.perf_counter() - t0)

        cpu0 = server_cpu(server.pid)
        t, n = raw_download(url, repo, raw_path.name)
        assert n == size
        results["download_cpu_s"] = server_cpu(server.pid) - cpu0
        results["download_http_MBps"] = size / MB / t
        t0 = time.perf_counter()
        got = hf_hub_download(repo, raw_path.name, endpoint=url, cache_dir=str(work / "dl_cache"))
        results["download_hfapi_MBps"] = size / MB / (time.perf_counter() - t0)
        assert os.path.getsize(got) == size
        big_peak = sampler.peak

        from lmolt_hub.tiny import save_tiny_llama

        tiny = work / "tiny"
        save_tiny_llama(tiny)
        api.create_repo("bench/tiny-llama")
        api.upload_folder(folder_path=tiny, repo_id="bench/tiny-llama")
        jobs = [(url, "bench/tiny-llama", str(work / f"cache{i}")) for i in range(a.clients)]
        t0 = time.perf_counter()
        with ProcessPoolExecutor(a.clients) as pool:
            per_client = list(pool.map(pull, jobs))
        wall = time.perf_counter() - t0
    finally:
        sampler.running = False
        server.terminate()
        server.wait(timeout=10)
        if a.root is None:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()[0]
    print(
        f"\nlocal Hub benchmark ({a.size_mb} MB file over loopback; load average {load:.1f} on {os.cpu_count()} CPUs)"
    )
    print(f"  upload   raw HTTP PUT       : {results['upload_http_MBps']:8.1f} MB/s")
    print(
        f"  upload   HfApi.upload_file  : {results['upload_hfapi_MBps']:8.1f} MB/s (incl. client sha256 pass)"
    )
    print(f"  download raw HTTP GET       : {results['download_http_MBps']:8.1f} MB/s")
    print(
        f"  download hf_hub_download    : {results['download_hfapi_MBps']:8.1f} MB/s (incl. writing the cache)"
    )
    print(
        f"  server CPU time: upload {results['upload_cpu_s']:.2f} s "
        f"({size / MB / max(results['upload_cpu_s'], 1e-9):.0f} MB per CPU-second, receive + sha256 + write), "
        f"download {results['download_cpu_s']:.2f} s"
    )
    print(f"  server RSS idle / peak while moving the big file: {idle_rss / MB:.0f} / {big_peak / MB:.0f} MB")
    print(
        f"  {a.clients} concurrent snapshot_download of a tiny Llama: wall {wall:.2f} s, "
        f"per client {min(per_client):.2f}-{max(per_client):.2f} s"
    )
    print(f"  server peak RSS overall: {sampler.peak / MB:.0f} MB")
    ok = min(results["upload_http_MBps"], results["download_http_MBps"]) >= 200 and big_peak < 300 * MB
    print(f"  goals (>= 200 MB/s each way over HTTP, RSS < 300 MB): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
