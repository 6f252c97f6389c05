"""Tiny checkpoints are real HF checkpoints: they load offline through the Auto classes."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from modeling.ml.tiny import TINY_MAX_POSITIONS, build_tiny_roberta, build_tiny_xlmr, default_corpus


@pytest.mark.parametrize(
    ("fixture", "tokenizer_class", "model_type", "backend"),
    [
        ("tiny_roberta_dir", "RobertaTokenizerFast", "roberta", "BPE"),
        ("tiny_xlmr_dir", "XLMRobertaTokenizerFast", "xlm-roberta", "Unigram"),
    ],
)
def test_tiny_checkpoint_loads_offline_through_the_auto_classes(
    request: pytest.FixtureRequest, fixture: str, tokenizer_class: str, model_type: str, backend: str
) -> None:
    path: Path = request.getfixturevalue(fixture)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True, num_labels=3)
    assert type(tokenizer).__name__ == tokenizer_class
    assert tokenizer.backend_tokenizer.model.__class__.__name__ == backend
    assert model.config.model_type == model_type
    assert (model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads) == (32, 2, 2)
    assert model.config.max_position_embeddings == TINY_MAX_POSITIONS == 130
    assert [tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id] == [0, 1, 2]
    assert tokenizer.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
    assert tokenizer.mask_token == "<mask>"
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)
    ids = tokenizer("The customer loves it")["input_ids"]
    assert ids[0] == 0 and ids[-1] == 2


def test_xlmr_mask_token_comes_last_like_the_real_vocabulary(tiny_xlmr_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir, local_files_only=True)
    assert tokenizer.mask_token_id == len(tokenizer) - 1


def test_default_corpus_is_deterministic_and_multilingual_with_a_right_to_left_script() -> None:
    corpus = default_corpus()
    assert corpus == default_corpus()
    assert 300 <= len(corpus) <= 1000
    text = "".join(corpus)
    assert any(unicodedata.bidirectional(ch) == "R" for ch in text)  # Hebrew
    assert any(unicodedata.bidirectional(ch) == "AL" for ch in text)  # Arabic
    assert "é" in text and "ü" in text


def test_builders_are_fast_and_honour_a_custom_corpus(tmp_path: Path, tiny_xlmr_dir: Path) -> None:
    corpus = [f"token{i} appears in sentence {i % 7}" for i in range(200)]
    started = time.perf_counter()
    build_tiny_roberta(tmp_path / "r", corpus)
    build_tiny_xlmr(tmp_path / "x", corpus)
    assert time.perf_counter() - started < 4.0
    roberta = AutoTokenizer.from_pretrained(tmp_path / "r", local_files_only=True)
    assert "Ġsentence" in roberta.get_vocab()
    xlmr = AutoTokenizer.from_pretrained(tmp_path / "x", local_files_only=True)
    default_xlmr = AutoTokenizer.from_pretrained(tiny_xlmr_dir, local_files_only=True)
    assert "▁token5" in xlmr.get_vocab()
    assert "▁token5" not in default_xlmr.get_vocab()


def test_same_seed_gives_identical_weights(tmp_path: Path) -> None:
    first = build_tiny_roberta(tmp_path / "a") / "model.safetensors"
    second = build_tiny_roberta(tmp_path / "b") / "model.safetensors"
    assert first.read_bytes() == second.read_bytes()
