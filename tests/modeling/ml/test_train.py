"""Fine-tuning the tiny checkpoints: loss goes down, callbacks report, freezing, weights, early stopping."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling.ml.calibration import fit_temperature
from modeling.ml.checkpoints import word_embeddings
from modeling.ml.config import InferenceConfig, TrainConfig
from modeling.ml.errors import CheckpointError, ConfigError
from modeling.ml.inference import predict
from modeling.ml.optim import compute_class_weights, linear_warmup_decay, parameter_groups
from modeling.ml.train import ProgressEvent, train
from tests.modeling.ml.conftest import FAST, Dataset, Trained, load_tiny


@pytest.mark.parametrize("fixture", ["tiny_roberta_dir", "tiny_xlmr_dir"])
def test_training_lowers_the_loss_and_reports_evals_through_the_callback(
    request: pytest.FixtureRequest, fixture: str, train_data: Dataset, eval_data: Dataset
) -> None:
    loaded = load_tiny(request.getfixturevalue(fixture))
    events: list[ProgressEvent] = []
    result = train(
        loaded.model,
        loaded.tokenizer,
        train_data.texts,
        train_data.labels,
        FAST,
        eval_texts=eval_data.texts,
        eval_labels=eval_data.labels,
        on_progress=events.append,
    )
    losses = [record.loss for record in result.history]
    # The tiny XLM-R tokenizer differs slightly from build to build (the Unigram trainer is not
    # deterministic), so the bar is a clear drop, not a tuned figure; macro-F1 below is the real check.
    assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8])
    assert [event.step for event in events] == list(range(1, result.total_steps + 1))
    assert result.total_steps == 6 * 8  # 128 examples / 16 per batch, 6 epochs
    evaluated = [event for event in events if event.eval_metrics is not None]
    assert [event.step for event in evaluated] == [8, 16, 24, 32, 40, 48]
    assert result.best_macro_f1 is not None and result.best_macro_f1 >= 0.9
    assert max(e.eval_metrics.macro_f1 for e in evaluated if e.eval_metrics) == result.best_macro_f1
    assert result.samples_per_second > 0 and result.tokens_per_second > result.samples_per_second


def test_eval_data_yields_a_fitted_temperature_and_per_language_scores_of_the_best_model(
    trained_roberta: Trained, eval_data: Dataset
) -> None:
    result = trained_roberta.result
    assert result.evaluation is not None and result.eval_logits is not None
    assert result.temperature == fit_temperature(result.eval_logits, eval_data.labels) != 1.0
    assert result.evaluation.temperature == result.temperature
    assert set(result.evaluation.per_language) == {"en", "es"}
    assert sum(g.n for g in result.evaluation.per_language.values()) == len(eval_data.texts)
    assert result.evaluation.macro_f1 == result.best_macro_f1
    # The stored eval logits are those of the weights the result returns.
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    fresh = predict(model, tokenizer, eval_data.texts, InferenceConfig(num_threads=1, max_length=FAST.max_length))
    np.testing.assert_allclose(fresh.logits, result.eval_logits, atol=1e-5)


def test_learning_rate_warms_up_then_decays_linearly() -> None:
    factor = linear_warmup_decay(warmup_steps=4, total_steps=20)
    values = [factor(step) for step in range(20)]
    assert values[:4] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert values[4] == pytest.approx(1.0)
    assert values[-1] == pytest.approx(1 / 16)
    assert all(a >= b for a, b in itertools.pairwise(values[4:]))


def test_the_callback_sees_the_warmup_in_the_reported_learning_rates(trained_roberta: Trained) -> None:
    lrs = [record.lr for record in trained_roberta.result.history]
    peak = int(np.argmax(lrs))
    assert 0 < peak < 10
    assert lrs[0] < lrs[peak] and lrs[-1] < lrs[peak]
    assert max(lrs) == pytest.approx(FAST.lr)


def test_biases_and_layer_norms_get_no_weight_decay(tiny_roberta_dir: Path) -> None:
    model = load_tiny(tiny_roberta_dir).model
    decay, no_decay = parameter_groups(model, 0.01)
    named = {id(p): name for name, p in model.named_parameters()}
    no_decay_names = {named[id(p)] for p in no_decay["params"]}  # type: ignore[attr-defined]
    decay_names = {named[id(p)] for p in decay["params"]}  # type: ignore[attr-defined]
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert "roberta.embeddings.LayerNorm.weight" in no_decay_names
    assert "classifier.dense.bias" in no_decay_names
    assert "classifier.dense.weight" in decay_names
    assert not any("LayerNorm" in name or name.endswith("bias") for name in decay_names)


def test_frozen_word_embeddings_stay_unchanged_while_other_weights_move(
    tiny_roberta_dir: Path, train_data: Dataset
) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    before = {name: tensor.clone() for name, tensor in loaded.model.state_dict().items()}
    config = dataclasses.replace(FAST, epochs=1, freeze_word_embeddings=True)
    train(loaded.model, loaded.tokenizer, train_data.texts, train_data.labels, config)
    after = {name: tensor.cpu() for name, tensor in loaded.model.state_dict().items()}  # trained on a GPU if any
    assert torch.equal(
        after["roberta.embeddings.word_embeddings.weight"], before["roberta.embeddings.word_embeddings.weight"]
    )
    assert not torch.equal(
        after["roberta.embeddings.position_embeddings.weight"], before["roberta.embeddings.position_embeddings.weight"]
    )
    assert not torch.equal(after["classifier.out_proj.weight"], before["classifier.out_proj.weight"])
    assert word_embeddings(loaded.model).requires_grad  # trainable again for whoever uses the model next


def test_unfrozen_word_embeddings_do_change(tiny_roberta_dir: Path, train_data: Dataset) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    before = word_embeddings(loaded.model).detach().clone()
    train(loaded.model, loaded.tokenizer, train_data.texts, train_data.labels, dataclasses.replace(FAST, epochs=1))
    assert not torch.equal(word_embeddings(loaded.model).detach().cpu(), before.cpu())


def test_class_weights_are_inverse_frequency_with_mean_weight_one_per_example() -> None:
    labels = [0] * 6 + [1] * 3 + [2] * 1
    weights = compute_class_weights(labels, 4)
    # N / (K * n_c) with K = 3 present classes: 10/18, 10/9, 10/3; the absent class gets 0.
    assert weights.tolist() == pytest.approx([10 / 18, 10 / 9, 10 / 3, 0.0])
    assert float(np.mean(weights[labels])) == pytest.approx(1.0)


def test_training_uses_class_weights_only_when_asked(tiny_roberta_dir: Path, train_data: Dataset) -> None:
    texts, labels = train_data.texts[:40], [0] * 30 + [1] * 10
    loaded = load_tiny(tiny_roberta_dir)
    config = dataclasses.replace(FAST, epochs=1)
    weighted = train(loaded.model, loaded.tokenizer, texts, labels, config)
    assert weighted.class_weights == pytest.approx([40 / 60, 40 / 20])
    plain = train(loaded.model, loaded.tokenizer, texts, labels, dataclasses.replace(config, class_weights="none"))
    assert plain.class_weights is None


def test_early_stopping_stops_and_restores_the_best_weights(
    tiny_roberta_dir: Path, train_data: Dataset, eval_data: Dataset
) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def remember(event: ProgressEvent) -> None:
        if event.eval_metrics is not None:
            snapshots[event.step] = {k: v.clone() for k, v in loaded.model.state_dict().items()}

    config = dataclasses.replace(FAST, epochs=20, eval_every=4, early_stopping_patience=2)
    result = train(
        loaded.model,
        loaded.tokenizer,
        train_data.texts,
        train_data.labels,
        config,
        eval_texts=eval_data.texts,
        eval_labels=eval_data.labels,
        on_progress=remember,
    )
    assert result.stopped_early
    assert result.history[-1].step < result.total_steps
    best = max(result.evals, key=lambda record: record.macro_f1)
    assert result.best_step == best.step == min(e.step for e in result.evals if e.macro_f1 == best.macro_f1)
    assert result.evals[-1].step == result.best_step + 2 * 4  # two evaluations without a gain
    final_state = loaded.model.state_dict()
    assert all(torch.equal(final_state[k], v) for k, v in snapshots[result.best_step].items())
    last = snapshots[result.evals[-1].step]
    assert not all(torch.equal(final_state[k], v) for k, v in last.items())


def test_an_exception_from_the_callback_aborts_training(tiny_roberta_dir: Path, train_data: Dataset) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    seen: list[int] = []

    class Cancelled(Exception):
        pass

    def cancel_at_three(event: ProgressEvent) -> None:
        seen.append(event.step)
        if event.step == 3:
            raise Cancelled

    with pytest.raises(Cancelled):
        train(loaded.model, loaded.tokenizer, train_data.texts, train_data.labels, FAST, on_progress=cancel_at_three)
    assert seen == [1, 2, 3]


def test_gradient_accumulation_divides_the_optimizer_steps(tiny_roberta_dir: Path, train_data: Dataset) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    config = dataclasses.replace(FAST, epochs=1, grad_accum_steps=3)
    result = train(loaded.model, loaded.tokenizer, train_data.texts, train_data.labels, config)
    assert result.total_steps == 3  # ceil(8 batches / 3)
    assert len(result.history) == 3


def test_same_seed_gives_the_same_losses(tiny_xlmr_dir: Path, train_data: Dataset) -> None:
    config = dataclasses.replace(FAST, epochs=1)
    runs = []
    for _ in range(2):
        loaded = load_tiny(tiny_xlmr_dir)
        runs.append(
            [r.loss for r in train(loaded.model, loaded.tokenizer, train_data.texts, train_data.labels, config).history]
        )
    assert runs[0] == runs[1]


def test_bad_inputs_are_refused_before_training(tiny_roberta_dir: Path) -> None:
    loaded = load_tiny(tiny_roberta_dir)
    with pytest.raises(ConfigError, match="label ids must lie in"):
        train(loaded.model, loaded.tokenizer, ["a", "b"], [0, 2], FAST)
    with pytest.raises(ConfigError, match="2 texts but 1 labels"):
        train(loaded.model, loaded.tokenizer, ["a", "b"], [0], FAST)
    with pytest.raises(CheckpointError, match="max_length 256 exceeds"):
        train(loaded.model, loaded.tokenizer, ["a", "b"], [0, 1], dataclasses.replace(FAST, max_length=256))


def test_config_rejects_nonsense_values() -> None:
    with pytest.raises(ConfigError, match="eval_every"):
        TrainConfig(eval_every=0)
    with pytest.raises(ConfigError, match="truncation"):
        TrainConfig(truncation="sliding_window")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="warmup_ratio"):
        TrainConfig(warmup_ratio=1.5)
    assert TrainConfig.from_dict(FAST.to_dict()) == FAST
