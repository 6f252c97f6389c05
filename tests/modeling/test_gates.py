"""Release gates: each gate's verdict and message, against hand-computed numbers."""

from __future__ import annotations

from modeling.gates import EvalSummary, GateSettings, evaluate_gates, failures

PRODUCTION = EvalSummary(
    macro_f1=0.80,
    ece=0.04,
    per_class_f1={"neg": 0.82, "pos": 0.78},
    class_support={"neg": 120, "pos": 100},
    per_language_f1={"en": 0.81, "sw": 0.70},
    language_support={"en": 200, "sw": 20},
)


def test_a_better_candidate_passes_every_gate():
    candidate = EvalSummary(0.83, 0.03, {"neg": 0.85, "pos": 0.80}, {"neg": 120, "pos": 100}, {"en": 0.84, "sw": 0.72})
    settings = GateSettings(min_macro_f1=0.75, max_ece=0.05)
    results = evaluate_gates(settings, candidate, PRODUCTION)
    assert failures(results) == []
    assert {r.gate for r in results} == {
        "min_macro_f1",
        "max_ece",
        "max_regression",
        "max_class_regression",
        "max_language_regression",
    }


def test_minimum_macro_f1_says_by_how_much():
    result = evaluate_gates(GateSettings(min_macro_f1=0.75), EvalSummary(0.71, 0.02), None)
    [failed] = failures(result)
    assert failed.gate == "min_macro_f1"
    assert failed.message == "eval macro-F1 0.710 is below the minimum 0.750 (short by 4.0 points)"


def test_ece_gate():
    [failed] = failures(evaluate_gates(GateSettings(max_ece=0.05), EvalSummary(0.9, 0.08), None))
    assert failed.message == "expected calibration error 0.080 exceeds the maximum 0.050 (over by 3.0 points)"


def test_overall_regression_beyond_the_limit_blocks():
    candidate = EvalSummary(0.775, 0.03, PRODUCTION.per_class_f1, PRODUCTION.class_support)
    [failed] = failures(evaluate_gates(GateSettings(max_regression_points=1.0), candidate, PRODUCTION))
    assert failed.gate == "max_regression"
    assert "drops 2.5 points" in failed.message and "over by 1.5 points" in failed.message


def test_a_regression_within_the_limit_passes():
    candidate = EvalSummary(0.795, 0.03)
    results = evaluate_gates(GateSettings(max_regression_points=1.0), candidate, PRODUCTION)
    assert failures(results) == []
    assert "drops 0.5 points" in results[0].message


def test_class_regression_blocks_but_a_small_language_does_not():
    candidate = EvalSummary(
        macro_f1=0.80,
        ece=0.03,
        per_class_f1={"neg": 0.88, "pos": 0.70},
        class_support={"neg": 120, "pos": 100},
        per_language_f1={"en": 0.81, "sw": 0.40},
        language_support={"en": 200, "sw": 20},
    )
    results = evaluate_gates(GateSettings(), candidate, PRODUCTION)
    [failed] = failures(results)
    assert failed.gate == "max_class_regression"
    assert failed.message.startswith("class 'pos' F1 (n=100) drops 8.0 points")
    sw = next(r for r in results if "'sw'" in r.message)
    assert not sw.passed and not sw.blocking
    assert "under 30: not blocking" in sw.message


def test_without_production_only_absolute_gates_apply():
    results = evaluate_gates(GateSettings(min_macro_f1=0.5), EvalSummary(0.6, 0.1), None)
    assert [r.gate for r in results] == ["min_macro_f1"]


def test_gates_switched_off_are_not_evaluated():
    off = GateSettings(
        min_macro_f1=None,
        max_regression_points=None,
        max_class_regression_points=None,
        max_language_regression_points=None,
        max_ece=None,
    )
    assert evaluate_gates(off, EvalSummary(0.1, 0.9), PRODUCTION) == []
