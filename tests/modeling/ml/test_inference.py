"""Scoring: input order survives length sorting, truncation modes, sliding windows, embeddings, int8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from modeling.ml import inference
from modeling.ml.config import InferenceConfig
from modeling.ml.encoding import special_template, tokenize
from modeling.ml.inference import (
    forward_sequences,
    is_quantized,
    predict,
    quantization_delta,
    quantize_int8,
    summarize_logits,
)
from modeling.ml.runtime import detect_runtime
from tests.modeling.ml.conftest import Dataset, Trained

ONE_THREAD = InferenceConfig(device="cpu", num_threads=1, max_length=64, batch_size=4)
CPU = detect_runtime(device="cpu", precision="fp32")


def _long_text() -> str:
    # Positive cues at the start, negative cues at the end, neutral filler in between.
    return " ".join(["love great"] + ["the park train cafe report"] * 40 + ["hate awful terrible"])


def _forward(trained: Trained, seqs: list[list[int]]) -> np.ndarray:
    model = trained.checkpoint.model.cpu()  # on a GPU machine an earlier predict (device auto) moved it there
    logits, _ = forward_sequences(model, seqs, pad_id=1, batch_size=8, runtime=CPU)
    return logits


def test_length_sorted_batches_return_results_in_input_order(trained_roberta: Trained, eval_data: Dataset) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    texts = [text + " park" * (i % 7) for i, text in enumerate(eval_data.texts[:12])]
    batched = predict(model, tokenizer, texts, ONE_THREAD)
    one_by_one = np.concatenate([predict(model, tokenizer, [t], ONE_THREAD).logits for t in texts])
    np.testing.assert_allclose(batched.logits, one_by_one, atol=1e-5)
    assert len({len(t) for t in texts}) > 5  # the batches really were reordered


def test_padding_aware_batches_score_like_fixed_chunks_in_input_order(
    trained_roberta: Trained, eval_data: Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    texts = [text + " park" * (3 * i % 11) for i, text in enumerate(eval_data.texts[:12])]
    shapes: list[tuple[int, int]] = []
    real = inference._forward_batch

    def recording(model, seqs, *args):  # type: ignore[no-untyped-def]
        shapes.append((len(seqs), max(len(s) for s in seqs)))
        return real(model, seqs, *args)

    monkeypatch.setattr(inference, "_forward_batch", recording)
    fixed = predict(model, tokenizer, texts, ONE_THREAD, return_embeddings=True)
    fixed_shapes, shapes[:] = list(shapes), []
    cut = InferenceConfig(device="cpu", num_threads=1, max_length=64, batch_size=4, chunk_overhead_tokens=4.5)
    aware = predict(model, tokenizer, texts, cut, return_embeddings=True)
    assert [size for size, _ in fixed_shapes] == [4, 4, 4]
    # The cut paid fewer padded tokens plus passes than the fixed chunks (the cost it minimises).
    assert sum(4.5 + size * longest for size, longest in shapes) < sum(4.5 + s * n for s, n in fixed_shapes)
    np.testing.assert_allclose(aware.logits, fixed.logits, atol=1e-5)
    assert aware.embeddings is not None and fixed.embeddings is not None
    np.testing.assert_allclose(aware.embeddings, fixed.embeddings, atol=1e-5)
    with pytest.raises(ValueError, match="chunk_overhead_tokens"):
        InferenceConfig(device="cpu", chunk_overhead_tokens=-1)


def test_summaries_follow_from_the_calibrated_probabilities() -> None:
    logits = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    result = summarize_logits(logits, temperature=2.0)
    expected = np.exp(logits / 2) / np.exp(logits / 2).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.probabilities, expected)
    assert result.labels.tolist() == [0, 0]
    np.testing.assert_allclose(result.confidence, expected.max(axis=1))
    np.testing.assert_allclose(result.margin, [expected[0, 0] - expected[0, 1], 0.0], atol=1e-12)
    assert result.entropy[1] == pytest.approx(np.log(3))
    assert result.entropy[0] < result.entropy[1]


def test_temperature_changes_probabilities_but_not_labels(trained_roberta: Trained, eval_data: Dataset) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    plain = predict(model, tokenizer, eval_data.texts, ONE_THREAD)
    flat = predict(model, tokenizer, eval_data.texts, ONE_THREAD, temperature=3.0)
    assert (plain.labels == flat.labels).all()
    assert (flat.confidence < plain.confidence).all()


def test_head_and_head_tail_truncation_keep_the_promised_tokens(trained_roberta: Trained) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    text = _long_text()
    ids = tokenize(tokenizer, [text])[0]
    template = special_template(tokenizer)
    budget = 64 - 2
    assert len(ids) > 3 * budget
    head = predict(model, tokenizer, [text], ONE_THREAD)
    head_tail = predict(
        model,
        tokenizer,
        [text],
        InferenceConfig(device="cpu", num_threads=1, max_length=64, truncation="head_tail", head_tokens=10),
    )
    np.testing.assert_allclose(head.logits, _forward(trained_roberta, [template.wrap(ids[:budget])]), atol=1e-5)
    expected = _forward(trained_roberta, [template.wrap(ids[:10] + ids[-(budget - 10) :])])
    np.testing.assert_allclose(head_tail.logits, expected, atol=1e-5)
    assert not np.allclose(head.logits, head_tail.logits)


def test_sliding_window_averages_logits_over_windows(trained_roberta: Trained) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    text = _long_text()
    ids = tokenize(tokenizer, [text])[0]
    template = special_template(tokenizer)
    config = InferenceConfig(device="cpu", num_threads=1, max_length=64, truncation="sliding_window", stride=40)
    result = predict(model, tokenizer, [text, "love great"], config)
    starts = [*range(0, len(ids) - 62, 40), len(ids) - 62]
    windows = [template.wrap(ids[s : s + 62]) for s in starts]
    assert len(windows) >= 3
    np.testing.assert_allclose(result.logits[0], _forward(trained_roberta, windows).mean(axis=0), atol=1e-5)
    short = predict(model, tokenizer, ["love great"], ONE_THREAD)
    np.testing.assert_allclose(result.logits[1], short.logits[0], atol=1e-5)


def test_embeddings_are_float32_mask_weighted_means_of_the_last_hidden_state(
    trained_roberta: Trained, eval_data: Dataset
) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    texts = [eval_data.texts[0], eval_data.texts[1] + " park park park park"]
    result = predict(model, tokenizer, texts, ONE_THREAD, return_embeddings=True)
    assert result.embeddings is not None
    assert result.embeddings.shape == (2, model.config.hidden_size)
    assert result.embeddings.dtype == np.float32
    # Unpadded, single-text forward: padding in the batched run must not leak into the mean.
    ids = torch.tensor([tokenizer(texts[0])["input_ids"]])
    with torch.inference_mode():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states[-1][0]
    np.testing.assert_allclose(result.embeddings[0], hidden.mean(dim=0).numpy(), atol=1e-5)
    assert predict(model, tokenizer, texts, ONE_THREAD).embeddings is None


def test_int8_quantization_runs_and_reports_the_accuracy_delta(trained_roberta: Trained, eval_data: Dataset) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    report = quantization_delta(model, tokenizer, eval_data.texts, eval_data.labels, ONE_THREAD)
    assert report.accuracy_delta == pytest.approx(report.accuracy_int8 - report.accuracy_fp32)
    assert 0.0 <= report.agreement <= 1.0
    assert 0.0 < report.max_probability_change < 0.5  # int8 rounding changes something, not everything
    assert not is_quantized(model)  # the fp32 model is left untouched
    quantized = quantize_int8(model)
    assert is_quantized(quantized)
    via_config = predict(
        model, tokenizer, eval_data.texts[:4], InferenceConfig(device="cpu", num_threads=1, quantize_int8=True)
    )
    assert via_config.probabilities.shape == (4, 2)


def test_predict_sets_the_configured_thread_count(trained_roberta: Trained) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    try:
        predict(model, tokenizer, ["love"], InferenceConfig(device="cpu", num_threads=2))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize("truncation", ["head", "sliding_window"])
def test_unk_rates_come_from_the_same_tokenization_as_textinfo_counts_them(tiny_xlmr_dir, truncation) -> None:
    from modeling.ml.textinfo import unk_rates
    from tests.modeling.ml.conftest import load_tiny

    loaded = load_tiny(tiny_xlmr_dir)
    texts = ["The customer really likes the new phone.", "ลูกค้าชอบโทรศัพท์ใหม่", "ok " + "ลูกค้า " * 40]
    config = InferenceConfig(max_length=16, device="cpu", truncation=truncation)
    with_rates = predict(loaded.model, loaded.tokenizer, texts, config, return_unk_rates=True)
    expected = unk_rates(loaded.tokenizer, texts, max_tokens=16)
    assert with_rates.unk_rates == expected
    assert expected[0] == 0.0 and expected[1] > 0.0 and expected[2] > 0.0  # the case the rates exist for
    plain = predict(loaded.model, loaded.tokenizer, texts, config)
    assert plain.unk_rates is None
    np.testing.assert_allclose(plain.probabilities, with_rates.probabilities, rtol=1e-6)
