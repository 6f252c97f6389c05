"""Text descriptors for drift monitoring: a text's dominant script, language and unknown-token rate.

Plain Python (and a tokenizer object passed in), no Django. Both are logged per prediction by the
model server and computed once per version on its eval split, so their distributions can be compared.

Script: Python's ``unicodedata`` has no Script property, so letters are looked up in a table of the
Unicode blocks of the scripts a text classifier meets in practice (the names are Unicode's Script
values). Only letters vote (``str.isalpha``): digits, punctuation, spaces and emoji are "Common" in
Unicode and say nothing about the language. A letter outside the table counts as "Other"; a text with
no letter at all is "Common". Only the first ``SCRIPT_SAMPLE_CHARS`` characters are read: the dominant
script of a 20,000-character text is settled long before its end, and the cost stays bounded.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

SCRIPT_SAMPLE_CHARS = 1_000
COMMON = "Common"
OTHER = "Other"

# (first code point, last code point, script), sorted by first code point, non-overlapping.
_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x0041, 0x024F, "Latin"),  # Basic Latin letters, Latin-1 Supplement, Latin Extended-A/B
    (0x0250, 0x02AF, "Latin"),  # IPA extensions
    (0x0370, 0x03FF, "Greek"),
    (0x0400, 0x052F, "Cyrillic"),
    (0x0530, 0x058F, "Armenian"),
    (0x0590, 0x05FF, "Hebrew"),
    (0x0600, 0x06FF, "Arabic"),
    (0x0700, 0x074F, "Syriac"),
    (0x0750, 0x077F, "Arabic"),  # Arabic Supplement
    (0x0780, 0x07BF, "Thaana"),
    (0x0800, 0x08FF, "Arabic"),  # Samaritan/Mandaic are rare; Arabic Extended-A/B dominate this span
    (0x0900, 0x097F, "Devanagari"),
    (0x0980, 0x09FF, "Bengali"),
    (0x0A00, 0x0A7F, "Gurmukhi"),
    (0x0A80, 0x0AFF, "Gujarati"),
    (0x0B00, 0x0B7F, "Oriya"),
    (0x0B80, 0x0BFF, "Tamil"),
    (0x0C00, 0x0C7F, "Telugu"),
    (0x0C80, 0x0CFF, "Kannada"),
    (0x0D00, 0x0D7F, "Malayalam"),
    (0x0D80, 0x0DFF, "Sinhala"),
    (0x0E00, 0x0E7F, "Thai"),
    (0x0E80, 0x0EFF, "Lao"),
    (0x0F00, 0x0FFF, "Tibetan"),
    (0x1000, 0x109F, "Myanmar"),
    (0x10A0, 0x10FF, "Georgian"),
    (0x1100, 0x11FF, "Hangul"),  # Jamo
    (0x1200, 0x139F, "Ethiopic"),
    (0x13A0, 0x13FF, "Cherokee"),
    (0x1780, 0x17FF, "Khmer"),
    (0x1800, 0x18AF, "Mongolian"),
    (0x1C80, 0x1C8F, "Cyrillic"),
    (0x1C90, 0x1CBF, "Georgian"),
    (0x1D00, 0x1DBF, "Latin"),  # phonetic extensions
    (0x1E00, 0x1EFF, "Latin"),  # Latin Extended Additional (Vietnamese)
    (0x1F00, 0x1FFF, "Greek"),
    (0x2C00, 0x2C5F, "Glagolitic"),
    (0x2C60, 0x2C7F, "Latin"),
    (0x2D00, 0x2D2F, "Georgian"),
    (0x2D30, 0x2D7F, "Tifinagh"),
    (0x2D80, 0x2DDF, "Ethiopic"),
    (0x2DE0, 0x2DFF, "Cyrillic"),
    (0x2E80, 0x2FDF, "Han"),  # radicals
    (0x3005, 0x3007, "Han"),  # ideographic iteration mark, closing mark, number zero
    (0x3041, 0x309F, "Hiragana"),
    (0x30A0, 0x30FF, "Katakana"),
    (0x3100, 0x312F, "Bopomofo"),
    (0x3130, 0x318F, "Hangul"),
    (0x31A0, 0x31BF, "Bopomofo"),
    (0x31F0, 0x31FF, "Katakana"),
    (0x3400, 0x4DBF, "Han"),
    (0x4E00, 0x9FFF, "Han"),
    (0xA000, 0xA4CF, "Yi"),
    (0xA640, 0xA69F, "Cyrillic"),
    (0xA720, 0xA7FF, "Latin"),
    (0xA980, 0xA9DF, "Javanese"),
    (0xAA00, 0xAA5F, "Cham"),
    (0xAB30, 0xAB6F, "Latin"),
    (0xAC00, 0xD7FF, "Hangul"),  # syllables and Jamo Extended-B
    (0xF900, 0xFAFF, "Han"),  # compatibility ideographs
    (0xFB00, 0xFB06, "Latin"),  # ligatures ff, fi, fl
    (0xFB1D, 0xFB4F, "Hebrew"),  # presentation forms
    (0xFB50, 0xFDFF, "Arabic"),  # presentation forms A
    (0xFE70, 0xFEFF, "Arabic"),  # presentation forms B
    (0xFF21, 0xFF5A, "Latin"),  # full-width Latin
    (0xFF66, 0xFF9F, "Katakana"),  # half-width
    (0xFFA0, 0xFFDC, "Hangul"),  # half-width
    (0x20000, 0x3134F, "Han"),  # extensions B to G
)
_STARTS = [start for start, _, _ in _RANGES]


def char_script(char: str) -> str:
    """Return the script of one letter from the table, or "Other" for a letter outside it."""
    code = ord(char)
    index = bisect_right(_STARTS, code) - 1
    if index >= 0 and code <= _RANGES[index][1]:
        return _RANGES[index][2]
    return OTHER


def dominant_script(text: str) -> str:
    """Return the script most of the text's letters belong to ("Common" when it has no letter).

    Ties go to the script met first in the text.
    """
    sample = text[:SCRIPT_SAMPLE_CHARS]
    if sample.isascii():  # the common case, without a per-character lookup
        return "Latin" if any(char.isalpha() for char in sample) else COMMON
    counts: Counter[str] = Counter(char_script(char) for char in sample if char.isalpha())
    if not counts:
        return COMMON
    return counts.most_common(1)[0][0]  # Counter keeps first-insertion order among equal counts


def unk_rate(token_ids: Sequence[int], unk_id: int | None) -> float:
    """Return the share of ``token_ids`` that are the unknown token (0.0 for no tokens or no unk token)."""
    if unk_id is None or not token_ids:
        return 0.0
    return sum(1 for token in token_ids if token == unk_id) / len(token_ids)


def unk_rates(tokenizer: Any, texts: Sequence[str], *, max_tokens: int | None = None) -> list[float]:
    """Return each text's unknown-token rate under ``tokenizer`` (a Hugging Face tokenizer).

    Counts content tokens only (no special tokens). ``max_tokens`` reads only each text's first
    tokens, as the model does under head truncation, so the rate describes what the model saw.
    Byte-level BPE tokenizers (RoBERTa) never emit their unknown token: their rate is always 0.
    """
    if not texts:
        return []
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return content_unk_rates(tokenizer, encoded, max_tokens=max_tokens)


def content_unk_rates(
    tokenizer: Any, content: Sequence[Sequence[int]], *, max_tokens: int | None = None
) -> list[float]:
    """``unk_rates`` from content ids the caller already has (no special tokens, not truncated)."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    return [unk_rate(ids[:max_tokens] if max_tokens else ids, unk_id) for ids in content]


def script_mix(texts: Iterable[str]) -> dict[str, int]:
    """Return how many texts have each dominant script."""
    return dict(Counter(dominant_script(text) for text in texts))


# Language identification: py3langid (a maintained numpy port of langid.py, Lui & Baldwin 2012; its
# model ships inside the wheel, 97 languages) restricted to the project's own languages, so a short
# review is never labelled with a language the project does not have. ~0.02 ms per text; loading the
# model takes ~0.7 s, once per process and language set.
LANGUAGE_SAMPLE_CHARS = 2_000


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    return identifier


@lru_cache(maxsize=1)
def _known_languages() -> frozenset[str]:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return frozenset(LanguageIdentifier.from_model_file(MODEL_FILE).nb_classes)


def detect_language(text: str, candidates: Sequence[str]) -> str:
    """Return which of ``candidates`` (ISO 639-1 codes) ``text`` is written in; "" when it cannot say.

    Codes the identifier does not know are never returned; with one usable candidate that one is.
    """
    usable = tuple(sorted({code for code in candidates if code in _known_languages()}))
    if len(usable) < 2:
        return usable[0] if usable else ""
    language, _ = _identifier(usable).classify(text[:LANGUAGE_SAMPLE_CHARS])
    return str(language)
