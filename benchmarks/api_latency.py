"""POST /v1/classify latency and throughput over real HTTP, against a server started for the run.

    python benchmarks/api_latency.py [--requests 300] [--batches 30] [--duration 15] [--concurrency 8]
                                     [--encoder e5-tuned] [--threads 2] [--texts corpus|jrte]

Starts ``koe serve`` on a free loopback port in a subprocess, with a temporary KOE_DATA_DIR (SQLite)
and an API key made for the run (``koe apikey create``); waits for ``/readyz``, warms up, then measures
with httpx over keep-alive connections:

* 1 text per request, sequential, ``--requests`` requests: p50 / p90 / p99 / mean;
* 32 texts per request, sequential, ``--batches`` requests: the same, and the time per text;
* ``--concurrency`` clients (one thread and one httpx.Client each) sending 1-text requests for
  ``--duration`` seconds: requests/s, p50 / p99 under load.

For the sequential phases the server's own time (its access-log ``ms``, matched by X-Request-ID) is
shown too. After the server is stopped, ``classify_texts`` runs in this process on the same texts
with the same settings (encoder cache off): the whole call and its stages, timed inside the same call
(preprocessing: normalise, PII, clauses, lemmas; encoder; the two heads with their TF-IDF features;
the rest), so the HTTP / framework share and where the time goes are visible.

Texts are never repeated (unless the throughput phase runs out of them, which is reported), so
every request pays for its encoder pass; the server's embedding cache stays on as in production.
``--texts corpus``: the project corpus's comments of 10-80 characters (3,078, median 41; support
chats have median 34). ``--texts jrte``: JRTE hotel-review sentences of 10-80 characters (median 15;
shared data, evaluation only). The client runs on the same cores as the server, so these figures
include its CPU; other processes' CPU use during the HTTP phases is measured from /proc and printed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOAL_MS = 30.0
BATCH = 32
WARMUP_SINGLE = 20
WARMUP_BATCHES = 2
_CLEAN_ENV = ("KOE_DATABASE_URL", "KOE_BROKER_URL", "KOE_AUTH_REQUIRED", "KOE_DATA_DIR")


# -- texts ------------------------------------------------------------------------------------------
def load_texts(kind: str) -> list[str]:
    if kind == "jrte":
        from pipelines.train.external import load_jrte

        texts = [t for t, _ in load_jrte()]
    else:
        from pipelines.train.corpus import load_corpus

        texts = [it.text for it in load_corpus()]
    texts = sorted({t for t in texts if 10 <= len(t) <= 80})
    random.Random(0).shuffle(texts)
    return texts


class Pool:
    """Hands out texts in a fixed order; thread-safe; counts texts handed out twice."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.pos = 0
        self.repeated = 0
        self.lock = threading.Lock()

    def take(self, n: int = 1) -> list[str]:
        with self.lock:
            out = []
            for _ in range(n):
                if self.pos >= len(self.texts):
                    self.repeated += 1
                out.append(self.texts[self.pos % len(self.texts)])
                self.pos += 1
            return out


# -- machine ----------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def calibration_ms() -> float:
    """Best of 5 of a fixed pure-Python loop: how fast this core is right now (host contention shows here)."""
    import timeit

    return min(timeit.repeat("sum(range(10**6))", number=1, repeat=5)) * 1000


def _busy_jiffies() -> int:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return user + nice + system + irq + softirq + steal


def _proc_jiffies(pid: int) -> int:
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])  # utime + stime (fields 14 and 15)


class CpuMeter:
    """CPU seconds of the whole machine, the server process and this process over a span."""

    def __init__(self, server_pid: int | None) -> None:
        self.server_pid = server_pid
        self.tck = os.sysconf("SC_CLK_TCK")

    def sample(self) -> tuple[float, float, float, float]:
        t = os.times()
        return (
            time.perf_counter(),
            _busy_jiffies() / self.tck,
            _proc_jiffies(self.server_pid) / self.tck if self.server_pid else 0.0,
            t.user + t.system,
        )

    @staticmethod
    def others(a: tuple[float, ...], b: tuple[float, ...]) -> dict[str, float]:
        wall = b[0] - a[0]
        total, server, bench = b[1] - a[1], b[2] - a[2], b[3] - a[3]
        return {
            "wall": wall,
            "server_cores": server / wall,
            "client_cores": bench / wall,
            "other_cores": max(total - server - bench, 0.0) / wall,
        }


# -- server -----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, encoder: str | None, threads: int | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _CLEAN_ENV}
    env["KOE_DATA_DIR"] = str(data_dir)
    if encoder:
        env["KOE_ENCODER"] = encoder
    if threads:
        env["KOE_NUM_THREADS"] = str(threads)
    return env


def create_api_key(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "service.cli", "apikey", "create", "--name", "bench", "--scopes", "classify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[0]


def wait_ready(proc: subprocess.Popen[bytes], base: str, log_path: Path, timeout: float = 600) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - start
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"the server was not ready after {timeout:.0f} s:\n{log_path.read_text()[-3000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def server_ms(log_path: Path) -> dict[str, float]:
    """request id -> the server's own time in ms, from its JSON access log."""
    out: dict[str, float] = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if '"request_id"' not in line:
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("route") == "/v1/classify" and "ms" in rec:
            out[rec["request_id"]] = float(rec["ms"])
    return out


# -- measuring --------------------------------------------------------------------------------------
def post(client: httpx.Client, texts: list[str]) -> tuple[float, str, dict[str, Any]]:
    start = time.perf_counter()
    resp = client.post("/v1/classify", json={"texts": texts})
    elapsed = (time.perf_counter() - start) * 1000
    if resp.status_code != 200:
        raise SystemExit(f"POST /v1/classify answered {resp.status_code}: {resp.text[:500]}")
    body = resp.json()
    if len(body["results"]) != len(texts):
        raise SystemExit(f"{len(texts)} texts sent, {len(body['results'])} results")
    return elapsed, resp.headers.get("x-request-id", ""), body


def sequential(client: httpx.Client, pool: Pool, n: int, size: int) -> tuple[list[float], list[str]]:
    times, ids = [], []
    for _ in range(n):
        ms, rid, _ = post(client, pool.take(size))
        times.append(ms)
        ids.append(rid)
    return times, ids


def under_load(
    base: str, headers: dict[str, str], pool: Pool, clients: int, duration: float
) -> tuple[list[float], float]:
    latencies: list[float] = []
    ends: list[float] = []
    lock = threading.Lock()
    gate = threading.Barrier(clients + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
            post(client, pool.take(1))  # connect before the clock starts
            gate.wait()
            try:
                while time.perf_counter() < deadline:
                    ms, _, _ = post(client, pool.take(1))
                    with lock:
                        latencies.append(ms)
                        ends.append(time.perf_counter())
            except BaseException as exc:
                errors.append(exc)

    deadline = float("inf")
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    deadline = start + duration
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies, len(latencies) / (max(ends) - start)


STAGES = ("prepare", "encoder", "heads", "rest")


def in_process(
    singles: list[str], batches: list[list[str]], warm: list[str], encoder: str | None, threads: int | None
) -> dict[str, dict[str, list[float]]]:
    """``classify_texts`` on the same texts in this process, timed as a whole and by stage.

    The stages are timed inside the same call by wrapping ``prepare`` (normalise, PII, clauses,
    lemmas), the encoder's ``encode`` and the two heads' ``predict_proba`` (featurisation included);
    "rest" is what is left: comment embeddings, theme score assembly, evidence, result objects.
    """
    import pipelines.classify as classify_mod
    from service.config import Settings
    from service.runtime import base_bundle

    overrides: dict[str, Any] = {}
    if encoder:
        overrides["encoder"] = encoder
    if threads:
        overrides["num_threads"] = threads
    bundle = base_bundle(Settings(**overrides))
    bundle.encoder.cache_size = 0  # every call pays for its encoder pass, as in the HTTP phases
    spent = dict.fromkeys(STAGES, 0.0)

    def timed(stage: str, fn: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                spent[stage] += time.perf_counter() - t0

        return wrapper

    original_prepare = classify_mod.prepare
    classify_mod.prepare = timed("prepare", original_prepare)
    bundle.encoder.encode = timed("encoder", bundle.encoder.encode)  # type: ignore[method-assign]
    bundle.sentiment.predict_proba = timed("heads", bundle.sentiment.predict_proba)  # type: ignore[method-assign]
    bundle.themes.predict_proba = timed("heads", bundle.themes.predict_proba)  # type: ignore[method-assign]

    def run(texts: list[str], out: dict[str, list[float]]) -> None:
        for k in spent:
            spent[k] = 0.0
        t0 = time.perf_counter()
        classify_mod.classify_texts(texts, bundle)
        full = time.perf_counter() - t0
        out["full"].append(full * 1000)
        for k in ("prepare", "encoder", "heads"):
            out[k].append(spent[k] * 1000)
        out["rest"].append((full - spent["prepare"] - spent["encoder"] - spent["heads"]) * 1000)

    try:
        scratch: dict[str, list[float]] = {k: [] for k in ("full", *STAGES)}
        run(warm, scratch)
        for t in warm[:WARMUP_SINGLE]:
            run([t], scratch)
        single: dict[str, list[float]] = {k: [] for k in ("full", *STAGES)}
        for text in singles:
            run([text], single)
        batch: dict[str, list[float]] = {k: [] for k in ("full", *STAGES)}
        for texts in batches:
            run(texts, batch)
    finally:
        classify_mod.prepare = original_prepare
    return {"single": single, "batch": batch}


# -- report -----------------------------------------------------------------------------------------
def row(name: str, values: list[float], per: int = 1) -> str:
    a = np.asarray(values, dtype=np.float64)
    p50, p90, p99 = np.percentile(a, [50, 90, 99])
    per_text = f"{p50 / per:.1f}" if per > 1 else ""
    return f"| {name} | {len(a):,} | {a.min():.1f} | {p50:.1f} | {p90:.1f} | {p99:.1f} | {a.mean():.1f} | {per_text} |"


STAGE_NAMES = {
    "prepare": "normalise, PII, clauses, lemmas (fugashi)",
    "encoder": "encoder (tokenise + ONNX)",
    "heads": "sentiment + theme heads (TF-IDF features included)",
    "rest": "the rest (theme scores, evidence, results)",
}


def stage_rows(name: str, stages: dict[str, list[float]], per: int) -> None:
    print(row(name, stages["full"], per))
    for stage in STAGES:
        print(row(f"&nbsp;&nbsp;of which {STAGE_NAMES[stage]}", stages[stage], per))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300, help="sequential 1-text requests")
    ap.add_argument("--batches", type=int, default=30, help=f"sequential {BATCH}-text requests")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds of the concurrent phase")
    ap.add_argument("--concurrency", type=int, default=8, help="clients in the concurrent phase")
    ap.add_argument("--encoder", help="KOE_ENCODER of the server (default: the service default)")
    ap.add_argument("--threads", type=int, help="KOE_NUM_THREADS of the server (default: all cores)")
    ap.add_argument("--texts", choices=["corpus", "jrte"], default="corpus")
    ap.add_argument("--no-in-process", action="store_true", help="skip the classify_texts timing")
    args = ap.parse_args(argv)

    texts = load_texts(args.texts)
    warm = texts[-(WARMUP_SINGLE + WARMUP_BATCHES * BATCH) :]
    pool = Pool(texts[: -len(warm)])
    load_before = os.getloadavg()
    calib_before = calibration_ms()

    with tempfile.TemporaryDirectory(prefix="koe-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "server.log"
        env = server_env(data_dir, args.encoder, args.threads)
        key = create_api_key(env)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            ready_s = wait_ready(proc, base, log_path)
            meter = CpuMeter(proc.pid)
            with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
                for t in warm[:WARMUP_SINGLE]:
                    _, _, body = post(client, [t])
                for i in range(WARMUP_BATCHES):
                    post(client, warm[WARMUP_SINGLE + i * BATCH : WARMUP_SINGLE + (i + 1) * BATCH])
                model = body["model"]
                c0 = meter.sample()
                single, single_ids = sequential(client, pool, args.requests, 1)
                batch_start = pool.pos
                batch, batch_ids = sequential(client, pool, args.batches, BATCH)
                batch_texts = [
                    pool.texts[batch_start + i * BATCH : batch_start + (i + 1) * BATCH]
                    for i in range(args.batches)
                ]
                c1 = meter.sample()
            loaded, rps = under_load(base, headers, pool, args.concurrency, args.duration)
            c2 = meter.sample()
        finally:
            stop(proc)
        ms = server_ms(log_path)
    load_after = os.getloadavg()
    calib_after = calibration_ms()

    local = None
    if not args.no_in_process:
        local_meter = CpuMeter(None)
        c3 = local_meter.sample()
        local = in_process(pool.texts[: args.requests], batch_texts, warm, args.encoder, args.threads)
        local_cpu = CpuMeter.others(c3, local_meter.sample())

    seq_cpu, load_cpu = CpuMeter.others(c0, c1), CpuMeter.others(c1, c2)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    chars = [len(t) for t in pool.texts[: args.requests]]
    print(f"# POST /v1/classify latency ({date.today().isoformat()})\n")
    print(
        f"command: python benchmarks/{Path(__file__).name} {' '.join(sys.argv[1:] if argv is None else argv)}"
    )
    print(f"machine: {cores} cores, {cpu_model()}, Python {sys.version.split()[0]}")
    print(
        f"core speed: sum(range(10**6)) best of 5 {calib_before:.1f} ms before, {calib_after:.1f} ms after "
        "the HTTP phases (lower is faster)"
    )
    print(
        f"server: koe serve on loopback, encoder {model['encoder']} "
        f"(KOE_ENCODER={args.encoder or 'default'}), KOE_NUM_THREADS={args.threads or 'default (all cores)'}, "
        f"SQLite, INFO JSON logs to a file; ready {ready_s:.1f} s after start"
    )
    print(
        f"texts: {args.texts}, 10-80 characters, the 1-text requests median {int(np.median(chars))} chars; "
        f"texts handed out twice: {pool.repeated}"
    )
    print(
        f"load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, "
        f"after {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f} (1 / 5 / 15 min)"
    )
    for name, cpu in (("sequential HTTP phases", seq_cpu), ("concurrent phase", load_cpu)):
        print(
            f"cores busy in the {name} ({cpu['wall']:.0f} s): server {cpu['server_cores']:.2f}, "
            f"client {cpu['client_cores']:.2f}, other processes {cpu['other_cores']:.2f}"
        )
    if local:
        print(
            f"cores busy in the in-process phase ({local_cpu['wall']:.0f} s, model load included): "
            f"this process {local_cpu['client_cores']:.2f}, other processes {local_cpu['other_cores']:.2f}"
        )
    print()
    print("| measure | n | min ms | p50 ms | p90 ms | p99 ms | mean ms | p50 per text ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print(row("1 text, HTTP round trip", single))
    if all(i in ms for i in single_ids):
        print(row("1 text, server's own time (access log)", [ms[i] for i in single_ids]))
    if local:
        stage_rows("1 text, `classify_texts` in process", local["single"], 1)
    print(row(f"{BATCH} texts, HTTP round trip", batch, BATCH))
    if all(i in ms for i in batch_ids):
        print(row(f"{BATCH} texts, server's own time (access log)", [ms[i] for i in batch_ids], BATCH))
    if local:
        stage_rows(f"{BATCH} texts, `classify_texts` in process", local["batch"], BATCH)
    print(row(f"1 text, {args.concurrency} concurrent clients, HTTP round trip", loaded))
    print()
    print(
        f"throughput: {rps:.1f} requests/s (1 text each) with {args.concurrency} concurrent clients "
        f"over {args.duration:.0f} s, {len(loaded):,} requests"
    )
    p50 = float(np.percentile(single, 50))
    verdict = "PASS" if p50 < GOAL_MS else "MISS"
    print(
        f"goal: a single short text answers in under {GOAL_MS:.0f} ms at the median: {verdict} ({p50:.1f} ms)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
