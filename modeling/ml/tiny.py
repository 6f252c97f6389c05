"""Build tiny random-weight RoBERTa / XLM-R checkpoints offline, with tokenizers trained on the spot.

They exist for tests, demos and benchmarks: a real HF checkpoint directory (config, safetensors,
tokenizer.json) that `AutoTokenizer` and `AutoModelForSequenceClassification` load with no network,
built in about a second.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Sequence
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    PretrainedConfig,
    PreTrainedTokenizerFast,
    RobertaConfig,
    RobertaForMaskedLM,
    RobertaTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizerFast,
)

SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>"]
TINY_MAX_LENGTH = 128
# RoBERTa-style position ids start at pad_token_id + 1 = 2, so 130 positions hold 128 tokens.
TINY_MAX_POSITIONS = TINY_MAX_LENGTH + 2
ROBERTA_VOCAB = 1000
XLMR_VOCAB = 1600

# (subjects, verbs, objects) per language; every combination is a grammatical-enough sentence.
_PHRASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "en": (
        ["The customer", "My neighbour", "Our team", "The teacher", "A friend", "The driver"],
        ["really likes", "never trusts", "often reviews", "quickly fixed", "cannot find"],
        ["the new phone.", "this small cafe.", "the late train.", "that long report.", "the quiet park."],
    ),
    "es": (
        ["El cliente", "Mi vecina", "Nuestro equipo", "La profesora", "Un amigo", "El conductor"],
        ["siempre compra", "nunca encuentra", "revisa a menudo", "arregló rápido", "no soporta"],
        ["el teléfono nuevo.", "este café pequeño.", "el tren tardío.", "ese informe largo.", "el parque."],
    ),
    "fr": (
        ["Le client", "Ma voisine", "Notre équipe", "La professeure", "Un ami", "Le chauffeur"],
        ["aime beaucoup", "ne croit jamais", "vérifie souvent", "a réparé vite", "ne trouve pas"],
        ["le nouveau téléphone.", "ce petit café.", "le train en retard.", "ce long rapport.", "le parc."],
    ),
    "de": (
        ["Der Kunde", "Meine Nachbarin", "Unser Team", "Die Lehrerin", "Ein Freund", "Der Fahrer"],
        ["mag wirklich", "vertraut nie", "prüft oft", "reparierte schnell", "findet nicht"],
        ["das neue Telefon.", "dieses kleine Café.", "den späten Zug.", "den langen Bericht.", "den Park."],
    ),
    "ar": (
        ["الزبون", "جارتي", "فريقنا", "المعلمة", "صديق", "السائق"],
        ["يحب كثيرا", "لا يثق أبدا", "يراجع غالبا", "أصلح بسرعة", "لا يجد"],
        ["الهاتف الجديد.", "هذا المقهى الصغير.", "القطار المتأخر.", "ذلك التقرير الطويل.", "الحديقة الهادئة."],
    ),
    "he": (
        ["הלקוח", "השכנה שלי", "הצוות שלנו", "המורה", "חבר", "הנהג"],
        ["מאוד אוהב", "אף פעם לא סומך על", "בודק לעתים קרובות", "תיקן מהר", "לא מוצא"],
        ["את הטלפון החדש.", "את בית הקפה הקטן.", "את הרכבת המאוחרת.", "את הדוח הארוך.", "את הפארק השקט."],
    ),
}


def default_corpus() -> list[str]:
    """Return the built-in corpus: 900 short deterministic sentences in six languages, two right-to-left."""
    sentences: list[str] = []
    for subjects, verbs, objects in _PHRASES.values():
        sentences.extend(" ".join(parts) for parts in itertools.product(subjects, verbs, objects))
    return sentences


def build_tiny_roberta(out_dir: str | Path, corpus: Sequence[str] | None = None, *, seed: int = 0) -> Path:
    """Write a tiny random RoBERTa checkpoint with a byte-level BPE tokenizer into `out_dir` and return it."""
    backend = _train_byte_level_bpe(corpus or default_corpus())
    # transformers' constructors are untyped; the ignores below only silence mypy's no-untyped-call.
    tokenizer = RobertaTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, model_max_length=TINY_MAX_LENGTH
    )
    config = RobertaConfig(  # type: ignore[no-untyped-call]
        **_tiny_sizes(len(tokenizer)), pad_token_id=1, bos_token_id=0, eos_token_id=2
    )
    return _save(out_dir, tokenizer, config, seed)


def build_tiny_xlmr(out_dir: str | Path, corpus: Sequence[str] | None = None, *, seed: int = 0) -> Path:
    """Write a tiny random XLM-RoBERTa checkpoint with a Unigram tokenizer into `out_dir` and return it."""
    backend = _train_unigram(corpus or default_corpus())
    tokenizer = XLMRobertaTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, model_max_length=TINY_MAX_LENGTH
    )
    config = XLMRobertaConfig(  # type: ignore[no-untyped-call]
        **_tiny_sizes(len(tokenizer)), pad_token_id=1, bos_token_id=0, eos_token_id=2
    )
    return _save(out_dir, tokenizer, config, seed)


def _tiny_sizes(vocab_size: int) -> dict[str, int]:
    """Return the shared tiny architecture: hidden 32, 2 layers, 2 heads, intermediate 64."""
    return {
        "vocab_size": vocab_size,
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": TINY_MAX_POSITIONS,
        "type_vocab_size": 1,
    }


def _train_byte_level_bpe(corpus: Sequence[str]) -> Tokenizer:
    """Return a RoBERTa-style byte-level BPE tokenizer trained on `corpus`."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=ROBERTA_VOCAB,
        min_frequency=2,
        special_tokens=[*SPECIAL_TOKENS, "<mask>"],
        # The full byte alphabet means any text, in any script, encodes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        sep=("</s>", 2), cls=("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    return tokenizer


def _train_unigram(corpus: Sequence[str]) -> Tokenizer:
    """Return an XLM-R-style SentencePiece Unigram tokenizer trained on `corpus`."""
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=XLMR_VOCAB,
        special_tokens=SPECIAL_TOKENS,
        unk_token="<unk>",  # noqa: S106 - a token, not a password
        # Seeding ASCII keeps English test texts mostly free of <unk> even outside the corpus's letters.
        initial_alphabet=list(string.ascii_letters + string.digits + string.punctuation),
        show_progress=False,
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    # XLM-R keeps <mask> as the last id, after the SentencePiece pieces.
    tokenizer.add_special_tokens(["<mask>"])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return tokenizer


def _save(out_dir: str | Path, tokenizer: PreTrainedTokenizerFast, config: PretrainedConfig, seed: int) -> Path:
    """Initialise a masked-LM model from `config` with a fixed seed and save it beside the tokenizer."""
    path = Path(out_dir)
    path.mkdir(parents=True, exist_ok=True)
    model_cls = XLMRobertaForMaskedLM if isinstance(config, XLMRobertaConfig) else RobertaForMaskedLM
    # fork_rng: a fixed seed for reproducible weights without disturbing the caller's RNG stream.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path
