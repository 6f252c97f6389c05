"""The GIL convoy behind the model server's GPU forward process, reproduced on a CPU.

    .venv/bin/python benchmarks/gil_convoy.py [--calls 40] [--texts 8]

A torch forward pass hands the GIL back at every operator and takes it again afterwards; on a GPU that
is every kernel launch, a few hundred a forward, while the kernels themselves take microseconds. Beside
a thread that runs Python without blocking (in the model server: the prediction log building its rows,
a connection encoding a big answer), each take waits until that thread is made to let go, which Python
does only after its switch interval (5 ms by default). A CPU reproduces the pattern with torch's own
CPU operators: this script runs ``modeling.ml.inference.predict`` (torch, fp32, one thread, the same code
as a GPU server's batches) on a tiny random RoBERTa, alone and beside such a thread, at Python's interval
and at a tenth of it, and with a busy thread that yields every 100 rows (as the prediction log's writer
does every 64). The model server's answer on a GPU is a forward process of its own
(``modeling.serving.server.process_runner``), whose GIL nothing else holds. It prints the median and
worst call per setting and the ratio to the call alone. The product's CPU server runs ONNX Runtime,
which takes the GIL back once a forward.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHORT_SWITCH_INTERVAL_US = 500  # a tenth of Python's default, for comparison


def busy(stop: threading.Event, yield_every: int) -> None:
    """Build log-row-like dicts in a loop, yielding every ``yield_every`` rows (0: never)."""
    rows: list[dict[str, object]] = []
    count = 0
    while not stop.is_set():
        rows.append({"id": count, "label": str(count), "probs": [0.2, 0.3, 0.5], "meta": {"project": 1}})
        count += 1
        if len(rows) >= 1000:
            rows.clear()
        if yield_every and count % yield_every == 0:
            time.sleep(0)


def timed(call: object, calls: int) -> tuple[float, float]:
    """Median and worst milliseconds over ``calls`` calls (after two unmeasured)."""
    assert callable(call)
    for _ in range(2):
        call()
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds) * 1000, max(seconds) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=40, help="timed calls per setting")
    parser.add_argument("--texts", type=int, default=8, help="texts per call")
    args = parser.parse_args()

    import torch

    from benchmarks._machine import speed_line
    from modeling.ml.checkpoints import load_checkpoint
    from modeling.ml.config import InferenceConfig
    from modeling.ml.inference import predict
    from modeling.ml.tiny import build_tiny_roberta, default_corpus

    print(speed_line())
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        loaded = load_checkpoint(build_tiny_roberta(Path(tmp) / "tiny"), labels=["a", "b", "c"], offline=True)
    texts = default_corpus()[: args.texts]
    config = InferenceConfig(device="cpu", precision="fp32", num_threads=1, max_length=64, batch_size=64)

    def call() -> None:
        predict(loaded.model, loaded.tokenizer, texts, config)

    python_default = sys.getswitchinterval()
    print(
        f"predict() on a tiny RoBERTa, {args.texts} texts a call, torch fp32 on one CPU thread; {args.calls} calls each"
    )
    print(f"{'switch interval':>16}  {'busy thread':<18} {'p50 ms':>9} {'max ms':>9} {'p50 / alone':>12}")
    try:
        for interval in (python_default, SHORT_SWITCH_INTERVAL_US / 1e6):
            sys.setswitchinterval(interval)
            alone = timed(call, args.calls)
            print(f"{interval * 1e6:>13.0f} us  {'none':<18} {alone[0]:>9.2f} {alone[1]:>9.2f} {1.0:>11.1f}x")
            for yield_every, label in ((0, "never yields"), (100, "yields every 100")):
                stop = threading.Event()
                thread = threading.Thread(target=busy, args=(stop, yield_every), daemon=True)
                thread.start()
                time.sleep(0.1)
                try:
                    beside = timed(call, args.calls)
                finally:
                    stop.set()
                    thread.join()
                ratio = beside[0] / alone[0]
                print(f"{interval * 1e6:>13.0f} us  {label:<18} {beside[0]:>9.2f} {beside[1]:>9.2f} {ratio:>11.1f}x")
    finally:
        sys.setswitchinterval(python_default)


if __name__ == "__main__":
    main()
