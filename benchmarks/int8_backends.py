"""CPU cost of scoring tweets with the demo model: fp32, torch.ao int8 and ONNX Runtime int8, one run.

    nice .venv/bin/python benchmarks/int8_backends.py [--texts 256] [--rounds 3] [--sizes 1,4,8,16]
        [--ort-recipes fused,reduce_range,per_tensor,attention_matmuls]

The demo model of ``predict_api.py`` (MiniLM fine-tuned on 600 demo tweets, cached under var/benchmarks/)
scores eval tweets through ``Classifier.predict`` exactly as the model server does (max length 64,
chunks of 8, pooled embeddings on, one thread), in requests of 1, 4, 8 and 16 texts. The three ways run
interleaved round by round, so a change in the machine's load hits them alike. Reported per way and
request size: CPU milliseconds per text (``time.process_time``: this process's user + system time, less
sensitive to other processes than wall time), texts per CPU-second and the ratio to torch's int8 (the
serving path before ONNX Runtime) and to fp32 (what the naive baseline runs). Also the label agreement
of each int8 way with fp32 on the texts, and what building the int8 copy cost once.

``--ort-recipes`` adds ONNX Runtime int8 rows built with other ``Int8Recipe``s than serving's default
(scored through ``inference.predict`` on the same tokenizer and config), interleaved with the rest:
``fused`` (ONNX Runtime's BERT optimizer before quantizing), ``reduce_range`` (7-bit weights),
``per_tensor`` (one weight scale per matrix) and ``attention_matmuls`` (attention's activation matmuls
quantized too). On a 2-core AMD EPYC with AVX512-VNNI none was cheaper than the default (the figures
are in ``modeling/ml/onnx_int8.py``).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from benchmarks._data import tweet_splits  # noqa: E402
from benchmarks._machine import speed_line  # noqa: E402
from benchmarks.predict_api import MAX_LENGTH, demo_artifact  # noqa: E402
from modeling.ml.artifacts import Classifier, load_artifact  # noqa: E402
from modeling.ml.config import InferenceConfig  # noqa: E402
from modeling.ml.inference import Predictions, predict  # noqa: E402
from modeling.ml.onnx_int8 import Int8Recipe, OnnxInt8Model, export_session  # noqa: E402

WAYS = {
    "fp32": InferenceConfig(batch_size=8, max_length=MAX_LENGTH, device="cpu", num_threads=1),
    "int8 torch": InferenceConfig(
        batch_size=8, max_length=MAX_LENGTH, device="cpu", num_threads=1, quantize_int8=True, int8_backend="torch"
    ),
    "int8 onnxruntime": InferenceConfig(
        batch_size=8, max_length=MAX_LENGTH, device="cpu", num_threads=1, quantize_int8=True, int8_backend="onnxruntime"
    ),
}
RECIPES = {
    "fused": Int8Recipe(fuse_transformer=True),
    "reduce_range": Int8Recipe(reduce_range=True),
    "per_tensor": Int8Recipe(per_channel=False),
    "attention_matmuls": Int8Recipe(quantize_attention_matmuls=True),
}


@dataclass
class Way:
    """One row of the table: the config to score with and, for a recipe row, its own int8 session."""

    config: InferenceConfig
    session: OnnxInt8Model | None = None

    def predict(self, classifier: Classifier, texts: list[str]) -> Predictions:
        """Score `texts` as the model server would, with this way's int8 copy."""
        if self.session is None:
            return classifier.predict(texts, self.config, return_embeddings=True)
        tokenizer, temperature = classifier.tokenizer, classifier.temperature
        return predict(self.session, tokenizer, texts, self.config, temperature=temperature, return_embeddings=True)


def _ways(classifier: Classifier, recipes: list[str]) -> dict[str, Way]:
    """Return serving's ways, then one ONNX Runtime int8 way per named recipe (built here, timed)."""
    ways = {name: Way(config) for name, config in WAYS.items()}
    for name in recipes:
        started = time.perf_counter()
        session = export_session(classifier.model, threads=1, recipe=RECIPES[name])
        print(f"int8 ort {name}: building the int8 copy took {time.perf_counter() - started:.1f} s")
        ways[f"int8 ort {name}"] = Way(WAYS["fp32"], session)
    return ways


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8, 16])
    parser.add_argument("--ort-recipes", type=lambda s: [x for x in s.split(",") if x], default=[],
                        help=f"extra ONNX Runtime int8 rows, comma-separated, of: {', '.join(RECIPES)}")  # fmt: skip
    args = parser.parse_args()
    unknown = set(args.ort_recipes) - set(RECIPES)
    if unknown:
        parser.error(f"unknown --ort-recipes {sorted(unknown)}; known: {', '.join(RECIPES)}")
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)

    print(speed_line())
    path, _ = demo_artifact()
    classifier = load_artifact(path)
    texts = list(tweet_splits([600]).eval.texts)[: args.texts]
    ways = _ways(classifier, args.ort_recipes)
    labels = {}
    for name, way in ways.items():  # builds serving's int8 copies (timed) and warms every way up
        started = time.perf_counter()
        labels[name] = way.predict(classifier, texts).labels
        if way.config.quantize_int8:
            print(f"{name}: building the int8 copy and one pass over {len(texts)} texts took "
                  f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    for name in ways:
        if name != "fp32":
            agreement = (labels[name] == labels["fp32"]).mean()
            print(f"{name}: label agreement with fp32 on {len(texts)} eval tweets {agreement:.1%}")

    cpu = {(name, size): 0.0 for name in ways for size in args.sizes}
    for _ in range(args.rounds):
        for size in args.sizes:
            for name, way in ways.items():
                started = time.process_time()
                for i in range(0, len(texts), size):
                    way.predict(classifier, texts[i : i + size])
                cpu[name, size] += time.process_time() - started

    scored = args.rounds * len(texts)
    print(f"\nCPU ms per text, one thread ({args.rounds} rounds x {len(texts)} tweets per request size):")
    header = f"{'texts/request':>13}  {'way':26} {'CPU ms/text':>11} {'texts/CPU-s':>11}"
    print(f"{header} {'vs torch int8':>13} {'vs fp32':>8} {'vs ort int8':>11}")
    for size in args.sizes:
        for name in ways:
            ms = cpu[name, size] / scored * 1000
            print(
                f"{size:>13}  {name:26} {ms:>11.2f} {1000 / ms:>11.0f} "
                f"{cpu['int8 torch', size] / cpu[name, size]:>12.2f}x {cpu['fp32', size] / cpu[name, size]:>7.2f}x "
                f"{cpu['int8 onnxruntime', size] / cpu[name, size]:>10.2f}x"
            )


if __name__ == "__main__":
    main()
