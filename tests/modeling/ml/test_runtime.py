"""Device and precision resolution: the pure choices behind the CUDA-only code paths."""

from __future__ import annotations

import pytest
import torch

from modeling.ml.errors import ConfigError
from modeling.ml.runtime import available_cores, plan_runtime, resolve_device, resolve_precision, same_device


@pytest.mark.parametrize(
    ("device", "bf16", "requested", "expected"),
    [
        ("cpu", False, "auto", "fp32"),
        ("cpu", True, "auto", "fp32"),
        ("cpu", False, "fp32", "fp32"),
        ("cuda", True, "auto", "bf16"),
        ("cuda", False, "auto", "fp16"),
        ("cuda", True, "fp16", "fp16"),
        ("cuda", True, "bf16", "bf16"),
        ("cuda", False, "fp32", "fp32"),
    ],
)
def test_precision_resolver_picks_bf16_then_fp16_on_cuda_and_fp32_on_cpu(
    device: str, bf16: bool, requested: str, expected: str
) -> None:
    assert resolve_precision(device, bf16, requested) == expected


@pytest.mark.parametrize(
    ("device", "bf16", "requested", "fragment"),
    [
        ("cpu", True, "bf16", "needs a CUDA device"),
        ("cpu", False, "fp16", "needs a CUDA device"),
        ("cuda", False, "bf16", "does not support bf16"),
        ("cuda", True, "int8", "auto|fp32|bf16|fp16"),
    ],
)
def test_precision_resolver_refuses_combinations_that_cannot_run(
    device: str, bf16: bool, requested: str, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        resolve_precision(device, bf16, requested)


def test_device_resolver_uses_cuda_only_when_present() -> None:
    assert resolve_device("auto", cuda_available=True) == "cuda"
    assert resolve_device("auto", cuda_available=False) == "cpu"
    assert resolve_device("cpu", cuda_available=True) == "cpu"
    with pytest.raises(ConfigError, match="no CUDA device"):
        resolve_device("cuda", cuda_available=False)


def test_fp16_on_cuda_gets_a_grad_scaler_fused_adamw_and_compile() -> None:
    plan = plan_runtime(device="auto", precision="auto", compile_model=True, cuda_available=True, bf16_supported=False)
    assert (plan.device, plan.precision, plan.grad_scaler, plan.fused_adamw, plan.compile) == (
        "cuda",
        "fp16",
        True,
        True,
        True,
    )


def test_bf16_needs_no_grad_scaler() -> None:
    plan = plan_runtime(device="cuda", precision="auto", compile_model=False, cuda_available=True, bf16_supported=True)
    assert plan.precision == "bf16"
    assert not plan.grad_scaler
    assert not plan.compile


def test_cpu_plan_never_compiles_or_fuses() -> None:
    plan = plan_runtime(device="auto", precision="auto", compile_model=True, cuda_available=False, bf16_supported=False)
    assert (plan.device, plan.precision, plan.grad_scaler, plan.fused_adamw, plan.compile) == (
        "cpu",
        "fp32",
        False,
        False,
        False,
    )


def test_available_cores_follows_the_affinity_mask() -> None:
    import os

    assert available_cores() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize(
    ("current", "wanted", "index", "same"),
    [
        ("cpu", "cpu", 0, True),
        ("cuda:0", "cuda", 0, True),  # a tensor's device carries the index that "cuda" leaves implicit
        ("cuda:1", "cuda", 0, False),  # "cuda" means the current device, here cuda:0
        ("cuda:1", "cuda", 1, True),
        ("cuda:0", "cuda:0", 1, True),
        ("cuda:0", "cuda:1", 0, False),
        ("cuda:0", "cpu", 0, False),
        ("cpu", "cuda", 0, False),
    ],
)
def test_same_device_reads_a_bare_cuda_as_the_current_device(current: str, wanted: str, index: int, same: bool) -> None:
    assert same_device(torch.device(current), torch.device(wanted), lambda: index) is same
