"""The ONNX Runtime int8 path: the export matches torch, int8 stays close, padding and batching are right."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from modeling.ml.config import InferenceConfig
from modeling.ml.errors import ConfigError
from modeling.ml.inference import is_quantized, predict, quantization_delta, quantize_int8
from modeling.ml.onnx_int8 import Int8Recipe, OnnxInt8Model, export_session
from tests.modeling.ml.conftest import Dataset, Trained, load_tiny

ONE_THREAD = InferenceConfig(device="cpu", num_threads=1, batch_size=4)


def _torch_outputs(model, ids: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    model = model.cpu()  # on a GPU machine an earlier predict (device auto) moved the shared model there
    with torch.inference_mode():
        out = model(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), output_hidden_states=True)
    hidden, weights = out.hidden_states[-1], torch.from_numpy(mask).unsqueeze(-1).float()
    return out.logits.numpy(), ((hidden * weights).sum(1) / weights.sum(1)).numpy()


def _padded(tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(texts, padding=True, return_tensors="np")
    return enc["input_ids"], enc["attention_mask"]


@pytest.mark.parametrize("which", ["roberta", "xlmr"])
def test_the_fp32_export_matches_torch_on_other_batch_and_sequence_sizes(
    which: str, trained_roberta: Trained, tiny_xlmr_dir: Path, eval_data: Dataset
) -> None:
    if which == "roberta":
        model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    else:
        loaded = load_tiny(tiny_xlmr_dir)
        model, tokenizer = loaded.model, loaded.tokenizer
    model.eval()
    session = export_session(model, quantize=False)
    assert not any(module.training for module in model.modules())  # the export left dropout off
    # The export traced a 2 x 8 batch; these are 5 texts of other lengths, with padding in all but one.
    texts = [eval_data.texts[0], eval_data.texts[1] * 3, "ok", eval_data.texts[2], eval_data.texts[3] + " park"]
    ids, mask = _padded(tokenizer, texts)
    assert ids.shape[1] != 8 and (mask == 0).any()
    logits, pooled = session.forward(ids, mask, want_embeddings=True)
    want_logits, want_pooled = _torch_outputs(model, ids, mask)
    np.testing.assert_allclose(logits, want_logits, atol=1e-4)
    assert pooled is not None
    np.testing.assert_allclose(pooled, want_pooled, atol=1e-4)
    assert session.forward(ids, mask, want_embeddings=False)[1] is None


def test_int8_through_onnxruntime_stays_close_to_fp32(trained_roberta: Trained, eval_data: Dataset) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    quantized = quantize_int8(model, backend="onnxruntime", threads=1)
    assert isinstance(quantized, OnnxInt8Model) and is_quantized(quantized)
    assert not is_quantized(model)
    full = predict(model, tokenizer, eval_data.texts, ONE_THREAD, return_embeddings=True)
    small = predict(quantized, tokenizer, eval_data.texts, ONE_THREAD, return_embeddings=True)
    change = np.abs(full.probabilities - small.probabilities).max()
    assert 0 < change < 0.1  # int8 rounding moves the probabilities a little, never wildly
    assert (full.labels == small.labels).mean() >= 0.9
    assert small.embeddings is not None and full.embeddings is not None
    cosine = (small.embeddings * full.embeddings).sum(1) / (
        np.linalg.norm(small.embeddings, axis=1) * np.linalg.norm(full.embeddings, axis=1)
    )
    assert cosine.min() > 0.99
    # Order in, order out: the batches are formed longest-first and scattered back. (Activations are
    # quantized per batch, so only the same batches give bit-equal answers: batches of one here.)
    singles = dataclasses.replace(ONE_THREAD, batch_size=1)
    together = predict(quantized, tokenizer, eval_data.texts[:6], singles).probabilities
    one_by_one = np.vstack([predict(quantized, tokenizer, [t], singles).probabilities for t in eval_data.texts[:6]])
    np.testing.assert_array_equal(together, one_by_one)


@pytest.mark.parametrize("backend", ["onnxruntime", "torch"])
def test_the_quantization_report_names_the_backend_it_measured(
    backend: str, trained_roberta: Trained, eval_data: Dataset
) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    cfg = dataclasses.replace(ONE_THREAD, int8_backend=backend)
    report = quantization_delta(model, tokenizer, eval_data.texts, eval_data.labels, cfg)
    assert report.backend == backend
    assert report.accuracy_delta == pytest.approx(report.accuracy_int8 - report.accuracy_fp32)
    assert 0.0 < report.max_probability_change < 0.5


def test_the_classifier_keeps_one_int8_copy_per_backend(trained_roberta: Trained, eval_data: Dataset, tmp_path) -> None:
    from modeling.ml.artifacts import Classifier

    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    classifier = Classifier(model, tokenizer, ["a", "b"], 1.0, {}, tmp_path)
    cfg = dataclasses.replace(ONE_THREAD, quantize_int8=True)
    first = classifier.predict(eval_data.texts[:3], cfg).probabilities
    onnx_copy = classifier._quantized["onnxruntime"]
    np.testing.assert_allclose(classifier.predict(eval_data.texts[:3], cfg).probabilities, first)
    assert classifier._quantized["onnxruntime"] is onnx_copy
    classifier.predict(eval_data.texts[:3], dataclasses.replace(cfg, int8_backend="torch"))
    assert set(classifier._quantized) == {"onnxruntime", "torch"}


def test_concurrent_calls_on_one_session_give_the_single_threaded_answers(
    trained_roberta: Trained, eval_data: Dataset
) -> None:
    model, tokenizer = trained_roberta.checkpoint.model, trained_roberta.checkpoint.tokenizer
    quantized = quantize_int8(model, threads=1)
    texts = eval_data.texts[:16]
    want = predict(quantized, tokenizer, texts, ONE_THREAD).probabilities
    got: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                got.append(predict(quantized, tokenizer, texts, ONE_THREAD).probabilities)
        except BaseException as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(got) == 20
    for probs in got:
        np.testing.assert_allclose(probs, want, atol=1e-6)


def test_an_unknown_int8_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="int8_backend"):
        InferenceConfig(device="cpu", int8_backend="tensorrt")  # type: ignore[arg-type]


def test_the_quantizer_chatter_stays_out_of_the_logs(
    trained_roberta: Trained, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    with caplog.at_level(logging.INFO):
        logging.getLogger().info("a record of our own")
        quantize_int8(trained_roberta.checkpoint.model, threads=1)
    assert [r.getMessage() for r in caplog.records] == ["a record of our own"]


def _tiny_bert() -> torch.nn.Module:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, num_labels=3
    )
    return BertForSequenceClassification(config).eval()


@pytest.mark.parametrize(
    "recipe",
    [
        Int8Recipe(fuse_transformer=True),
        Int8Recipe(fuse_transformer=True, quantize_attention_matmuls=True),
        Int8Recipe(per_channel=False, reduce_range=True, quantize_attention_matmuls=True),
    ],
    ids=["fused", "fused-attention-matmuls", "per-tensor-reduce-range-attention-matmuls"],
)
def test_every_int8_recipe_keeps_both_outputs_on_other_batch_and_sequence_sizes(recipe: Int8Recipe) -> None:
    model = _tiny_bert()
    session = export_session(model, recipe=recipe)
    # The export traced a 2 x 8 batch; this is 3 x 11 with right padding of different lengths.
    ids = np.random.default_rng(0).integers(5, 200, size=(3, 11))
    mask = np.ones_like(ids)
    mask[1, 7:], mask[2, 3:] = 0, 0
    ids[mask == 0] = 0
    logits, pooled = session.forward(ids, mask, want_embeddings=True)
    want_logits, want_pooled = _torch_outputs(model, ids, mask)
    assert pooled is not None and logits.shape == (3, 3) and pooled.shape == (3, 32)
    np.testing.assert_allclose(logits, want_logits, atol=0.05)
    cosine = (pooled * want_pooled).sum(1) / (np.linalg.norm(pooled, axis=1) * np.linalg.norm(want_pooled, axis=1))
    assert cosine.min() > 0.99
    # Padding changes nothing: the shortest text alone, unpadded, scores as it did in the batch.
    alone, _ = session.forward(ids[2:, :3], mask[2:, :3], want_embeddings=False)
    np.testing.assert_allclose(alone[0], logits[2], atol=0.05)


def test_the_fused_recipe_is_refused_for_roberta_position_ids(trained_roberta: Trained) -> None:
    with pytest.raises(ConfigError, match="BERT graphs only"):
        export_session(trained_roberta.checkpoint.model, recipe=Int8Recipe(fuse_transformer=True))
