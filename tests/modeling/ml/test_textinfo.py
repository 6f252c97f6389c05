"""Dominant script and unknown-token rate: hand-checked texts, and real tiny tokenizers."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from modeling.ml import textinfo
from modeling.ml.textinfo import char_script, detect_language, dominant_script, script_mix, unk_rate, unk_rates


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("The customer really likes the new phone.", "Latin"),
        ("Él arregló rápido el teléfono — ¿verdad?", "Latin"),
        ("Tiếng Việt có nhiều dấu", "Latin"),
        ("الزبون يحب كثيرا الهاتف الجديد.", "Arabic"),
        ("הלקוח מאוד אוהב את הטלפון החדש.", "Hebrew"),
        ("Клиент очень любит новый телефон.", "Cyrillic"),
        ("Ο πελάτης αγαπά το νέο τηλέφωνο.", "Greek"),
        ("ग्राहक को नया फ़ोन पसंद है", "Devanagari"),
        ("ลูกค้าชอบโทรศัพท์ใหม่", "Thai"),
        ("顾客很喜欢新手机", "Han"),
        ("お客様は新しい電話が大好きです", "Hiragana"),  # 10 kana letters against 7 Han
        ("고객은 새 전화기를 정말 좋아합니다", "Hangul"),
        ("ｆｕｌｌ ｗｉｄｔｈ", "Latin"),
        ("12345 !!! 🙂 ...", "Common"),
        ("", "Common"),
    ],
)
def test_dominant_script_names_the_script_most_letters_belong_to(text, script):
    assert dominant_script(text) == script


def test_only_letters_vote_so_digits_and_emoji_do_not_outweigh_a_short_word():
    assert dominant_script("שלום 1234567890 🙂🙂🙂🙂 !!!") == "Hebrew"


def test_a_mixed_text_goes_to_its_majority_and_a_tie_to_the_script_met_first():
    assert dominant_script("hello мир мир") == "Cyrillic"  # 5 Latin letters, 6 Cyrillic
    assert dominant_script("ab αβ") == "Latin"
    assert dominant_script("αβ ab") == "Greek"


def test_letters_outside_the_table_are_other():
    assert char_script("\U00010330") == "Other"  # Gothic letter ahsa
    assert dominant_script("\U00010330\U00010331\U00010332") == "Other"


def test_only_the_first_sample_characters_are_read(monkeypatch):
    monkeypatch.setattr(textinfo, "SCRIPT_SAMPLE_CHARS", 10)
    assert dominant_script("abcdefghij" + "мир" * 100) == "Latin"


def test_script_mix_counts_texts_per_dominant_script():
    assert script_mix(["hello", "world", "שלום", "123"]) == {"Latin": 2, "Hebrew": 1, "Common": 1}


def test_unk_rate_is_the_share_of_unknown_ids():
    assert unk_rate([5, 3, 3, 9], 3) == 0.5
    assert unk_rate([], 3) == 0.0
    assert unk_rate([1, 2], None) == 0.0


def test_unigram_tokenizer_reports_unknown_tokens_for_an_unseen_script(tiny_xlmr_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir)
    seen, thai = unk_rates(tokenizer, ["The customer really likes the new phone.", "ลูกค้าชอบโทรศัพท์ใหม่"])
    assert seen == 0.0
    ids = tokenizer("ลูกค้าชอบโทรศัพท์ใหม่", add_special_tokens=False)["input_ids"]
    assert thai == pytest.approx(sum(i == tokenizer.unk_token_id for i in ids) / len(ids))
    assert thai >= 0.5  # "▁" and one <unk> for the unseen word


def test_max_tokens_reads_only_the_head_the_model_sees(tiny_xlmr_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir)
    text = "The customer likes the phone. " + "ลูกค้าชอบโทรศัพท์ใหม่ " * 20
    full, head = unk_rates(tokenizer, [text, text], max_tokens=None), unk_rates(tokenizer, [text], max_tokens=5)
    assert full[0] > 0.3 and head == [0.0]


def test_byte_level_bpe_never_emits_unknown_tokens(tiny_roberta_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_roberta_dir)
    assert unk_rates(tokenizer, ["ลูกค้าชอบโทรศัพท์ใหม่", "🙂 hello"]) == [0.0, 0.0]
    assert unk_rates(tokenizer, []) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Chumba kilikuwa kichafu sana na wafanyakazi", "sw"),
        ("الغرفة كانت متسخة والموظفون غير مهذبين", "ar"),
        ("La habitación estaba sucia", "es"),
        ("The room was dirty", "en"),
    ],
)
def test_detect_language_picks_among_the_projects_languages(text, expected):
    assert detect_language(text, ["en", "es", "sw", "ar"]) == expected


def test_detect_language_never_answers_outside_the_candidates():
    # German text, but the project only has English and Spanish: the answer is one of those two.
    assert detect_language("Das Zimmer war schmutzig und laut", ["en", "es"]) in {"en", "es"}
    assert detect_language("anything", ["xx-unknown", "en"]) == "en"  # one usable candidate
    assert detect_language("anything", []) == ""
