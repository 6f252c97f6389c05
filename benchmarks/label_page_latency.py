"""Labeling page latency: key press -> next item painted, with prefetch against a submit-then-fetch baseline.

    .venv/bin/python benchmarks/label_page_latency.py [--items 40] [--think-ms 400] [--screenshot PATH]

1. A fresh SQLite database in a temporary directory: ``migrate`` and ``seed_demo`` (the "Tweet sentiment"
   demo: 300 gold tweets, a 1,000-tweet eval split, the rest in the pool).
2. Suggestions and the queue. Pool scoring needs a trained transformer, too slow for a benchmark on two
   shared cores, so a stand-in scores the pool: multinomial naive Bayes on the 300 gold tweets (numpy),
   temperature-scaled on the eval split. Its suggestions are written onto the items exactly as pool
   scoring writes them, and the least-margin items are queued through ``queue_set_priorities`` (5% random
   picks, the project's 10% overlap) as "model v1". The page and API under test are the real ones.
3. The demo web server (``runserver``, as ``make run`` starts it) and headless Chromium: the ``reviewer``
   labels with prefetch on, the ``owner`` on the same page with ``?prefetch=0`` (every key press waits for
   the submit's answer, which carries the next item: one round trip). The two pages alternate in blocks
   of 10 presses (keys 1, 2, 3 and Enter in turn), ``--think-ms`` apart (a fast reviewer reads a tweet
   in about a second; a press that comes before the prefetch arrives waits for it, and is counted).
4. Prints p50 / p95 / max of the page's own timings (``window.looplineTimings``: the keydown event's
   timestamp to the first frame after the next item is in the DOM) per mode and their ratio, the
   server's own time per submit (from its request log), and checks that every press was stored.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "label-bench-password"
SLUG = "tweet-sentiment"
CHROMIUM = "/usr/bin/chromium"
KEYS = ["1", "2", "3", "Enter"]
BLOCK = 10
WARMUP = 3  # first presses per mode: connection set-up and JIT, not steady state
RANDOM_SHARE = 0.05
TOKEN = re.compile(r"[a-z0-9']+|[!?]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=40, help="key presses per mode (default 40)")
    parser.add_argument("--think-ms", type=int, default=1000, help="pause between presses (default 1000 ms)")
    parser.add_argument("--screenshot", type=Path, help="write a 1280x800 PNG of the prefetching page at the end")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="label-bench-") as var_dir:
        env = _environment(Path(var_dir))
        os.environ.update(env)
        queued = _prepare(args.items)
        print(f"queued {queued} demo tweets with suggestions (naive Bayes stand-in, see the docstring)")
        with _server(env, Path(var_dir)) as base_url:
            timings = _drive(base_url, args.items, args.think_ms, args.screenshot)
        _verify(timings)
        server_ms = _server_submit_ms(Path(var_dir) / "server.log")
    _report(timings, args.items, args.think_ms)
    print(f"server time per submit (request log): p50 {np.percentile(server_ms, 50):.1f} ms, "
          f"p95 {np.percentile(server_ms, 95):.1f} ms over {len(server_ms)} submits")  # fmt: skip
    print(f"load average during the run (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _environment(var_dir: Path) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "webapp.settings",
        "SECRET_KEY": "label-page-benchmark",
        "LOOPLINE_VAR_DIR": str(var_dir),
        "DEBUG": "1",  # runserver serves the static files, as in `make run`
        "DATABASE_URL": f"sqlite:///{var_dir / 'bench.sqlite3'}",
        "CELERY_BROKER_URL": "memory://",
    }


# --- the data: the demo seed, stand-in suggestions, the queue --------------------------------------


def _prepare(items_per_mode: int) -> int:
    """Seed the demo, score its pool with the stand-in and queue enough items for both modes; return how many."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", password=PASSWORD, stdout=open(os.devnull, "w"))  # noqa: SIM115
    from labeling.models import Item, Project
    from labeling.services.queue import queue_set_priorities

    project = Project.objects.get(slug=SLUG)
    label_ids = list(project.labels.order_by("order").values_list("id", flat=True))
    gold = list(Item.objects.filter(project=project, split="train").values_list("text", "gold_label_id"))
    held_out = list(Item.objects.filter(project=project, split="eval").values_list("text", "gold_label_id"))
    pool = list(Item.objects.filter(project=project, split="pool").values_list("id", "text"))
    model = _NaiveBayes(label_ids).fit([t for t, _ in gold], [g for _, g in gold])
    model.calibrate([t for t, _ in held_out], [g for _, g in held_out])
    probs = model.predict_proba([text for _, text in pool])
    _write_suggestions(pool, probs, label_ids)
    ranked = _rank(pool, probs, count=2 * items_per_mode + 60)
    return queue_set_priorities(project=project, ranked=ranked, version_number=1)


class _NaiveBayes:
    """Multinomial naive Bayes on lowercase word tokens, Laplace-smoothed, with one temperature."""

    def __init__(self, label_ids: list[int]) -> None:
        self.label_ids = label_ids
        self.temperature = 1.0

    def fit(self, texts: list[str], labels: list[int]) -> _NaiveBayes:
        self.vocab = {tok: i for i, tok in enumerate(sorted({tok for text in texts for tok in _tokens(text)}))}
        counts = np.ones((len(self.label_ids), len(self.vocab)))
        classes = np.array([self.label_ids.index(label) for label in labels])
        for text, klass in zip(texts, classes, strict=True):
            for tok in _tokens(text):
                counts[klass, self.vocab[tok]] += 1
        self.log_word = np.log(counts / counts.sum(axis=1, keepdims=True))
        self.log_prior = np.log(np.bincount(classes, minlength=len(self.label_ids)) + 1.0)
        return self

    def _logits(self, texts: list[str]) -> np.ndarray:
        bag = np.zeros((len(texts), len(self.vocab)))
        for row, text in enumerate(texts):
            for tok in _tokens(text):
                if tok in self.vocab:
                    bag[row, self.vocab[tok]] += 1
        return bag @ self.log_word.T + self.log_prior

    def calibrate(self, texts: list[str], labels: list[int]) -> None:
        """Pick the temperature that minimises the held-out negative log-likelihood (a grid search)."""
        logits = self._logits(texts)
        truth = np.array([self.label_ids.index(label) for label in labels])
        best = min(np.geomspace(0.5, 50, 80), key=lambda t: _nll(logits / t, truth))
        self.temperature = float(best)

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        return _softmax(self._logits(texts) / self.temperature)


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _nll(logits: np.ndarray, truth: np.ndarray) -> float:
    return float(-np.log(_softmax(logits)[np.arange(len(truth)), truth] + 1e-12).mean())


def _write_suggestions(pool: list[tuple[int, str]], probs: np.ndarray, label_ids: list[int]) -> None:
    from labeling.models import Item

    rows = [
        Item(
            pk=item_id,
            predicted_label_id=label_ids[int(p.argmax())],
            predicted_confidence=float(p.max()),
            predicted_by_version=1,
        )
        for (item_id, _), p in zip(pool, probs, strict=True)
    ]
    Item.objects.bulk_update(rows, ["predicted_label", "predicted_confidence", "predicted_by_version"], batch_size=500)


def _rank(pool: list[tuple[int, str]], probs: np.ndarray, count: int) -> list[tuple[int, float, bool]]:
    """The ``count`` least-margin items (a 5% share drawn at random instead), priority 1 - margin."""
    ordered = np.sort(probs, axis=1)
    margin = ordered[:, -1] - ordered[:, -2]
    rng = np.random.default_rng(7)
    randoms = max(1, int(count * RANDOM_SHARE))
    chosen = list(np.argsort(margin)[: count - randoms])
    rest = np.setdiff1d(np.arange(len(pool)), chosen)
    picks = rng.choice(rest, size=randoms, replace=False)
    ranked = [(pool[i][0], 1.0 - float(margin[i]), False) for i in chosen]
    return ranked + [(pool[i][0], float(rng.uniform(0.5, 1.0)), True) for i in picks]


# --- the server and the browser ---------------------------------------------------------------------


@contextmanager
def _server(env: dict[str, str], var_dir: Path) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = open(var_dir / "server.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base_url}/healthz", process)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _wait_ready(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the web server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 (our own local server)
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("the web server did not answer within 60 s")


def _drive(base_url: str, items: int, think_ms: int, screenshot: Path | None) -> dict[str, list[dict]]:
    """Label ``items`` items per mode, alternating blocks; return each page's timings."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--headless"])
        pages = {
            "prefetch": _open(browser, base_url, "reviewer", ""),
            "baseline": _open(browser, base_url, "owner", "?prefetch=0"),
        }
        done = {mode: 0 for mode in pages}
        while any(count < items for count in done.values()):
            for mode, page in pages.items():
                page.bring_to_front()
                for _ in range(min(BLOCK, items - done[mode])):
                    page.keyboard.press(KEYS[done[mode] % len(KEYS)])
                    done[mode] += 1
                    page.wait_for_function(f"window.looplineTimings.length >= {done[mode]}")
                    page.wait_for_timeout(think_ms)
        timings = {}
        for mode, page in pages.items():
            page.wait_for_selector('#label-sync[data-pending="0"]')
            errors = page.locator("#label-notices li.error").all_inner_texts()
            if errors:
                raise SystemExit(f"{mode}: the page reported errors: {errors}")
            timings[mode] = page.evaluate("window.looplineTimings")
        if screenshot is not None:
            _screenshot(pages["prefetch"], screenshot)
        browser.close()
    return timings


def _open(browser, base_url: str, username: str, query: str):
    page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base_url}/projects/")
    page.goto(f"{base_url}/projects/{SLUG}/label/{query}")
    page.wait_for_selector("#label-item:not([hidden])[data-item-id]")
    page.wait_for_selector('#label-sync[data-pending="0"]')
    return page


def _screenshot(page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.mouse.move(0, 0)
    page.screenshot(path=str(path), type="png")
    print(f"screenshot: {path} ({path.stat().st_size // 1024} KB)")


def _verify(timings: dict[str, list[dict]]) -> None:
    """Every timed press was stored: one label annotation per press, by the right reviewer."""
    from labeling.models import Annotation

    for mode, user in (("prefetch", "reviewer"), ("baseline", "owner")):
        stored = Annotation.objects.filter(project__slug=SLUG, user__username=user, kind="label").count()
        if stored != len(timings[mode]):
            raise SystemExit(f"{mode}: {len(timings[mode])} presses but {stored} annotations stored")


def _server_submit_ms(log: Path) -> list[float]:
    """The web server's own duration of each submit, from its JSON request log."""
    found = re.findall(
        r'"view": "api-annotation-create", "method": "POST", "status": 201, "ms": ([0-9.]+)', log.read_text()
    )
    return [float(ms) for ms in found]


def _report(timings: dict[str, list[dict]], items: int, think_ms: int) -> None:
    print(f"\nkey press -> next item painted, {items} presses per mode ({WARMUP} warm-up presses dropped), "
          f"{think_ms} ms think time, runserver + SQLite, headless Chromium")  # fmt: skip
    print(f"{'mode':<10} {'n':>4} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  shown from the prefetch")
    figures = {}
    for mode, rows in timings.items():
        ms = np.array([row["ms"] for row in rows[WARMUP:]])
        instant = sum(1 for row in rows[WARMUP:] if row["prefetched"])
        figures[mode] = (np.percentile(ms, 50), np.percentile(ms, 95), ms.max())
        p50, p95, top = figures[mode]
        print(f"{mode:<10} {len(ms):>4} {p50:>8.1f} {p95:>8.1f} {top:>8.1f}  {instant}/{len(ms)}")
    base, fast = figures["baseline"], figures["prefetch"]
    print(f"baseline / prefetch: p50 x{base[0] / fast[0]:.1f}, p95 x{base[1] / fast[1]:.1f}")


if __name__ == "__main__":
    main()
