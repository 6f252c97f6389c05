"""Every monitoring page of a demo project in a real headless Chromium, after a scripted stream of predictions.

Three hours of production traffic with a canary and shadow copies (``monitoring.demo.traffic_simulate``,
through the real log sink), the last hour drifted (other languages, longer texts, more errors, worse
accuracy), with caller feedback. Then the real background work: the minute rollup fold, the feedback
outcome fold, drift windows tested against a reference built from the first (stable) hour, and the SLO
evaluation. Each page must answer 200, raise no script error, and draw its charts with data
(``static/monitoring/figures.js`` marks each drawn chart ``data-rendered="1"`` with its point count).
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from labeling.models import Role
from modeling.models import Alias, ModelVersion, PredictionLog, ReleasePolicy
from monitoring.demo import TrafficSpec, traffic_simulate
from monitoring.models import Alert, DriftReference, DriftRun, ServiceObjective
from monitoring.services.drift import drift_run_compute
from monitoring.services.outcomes import outcomes_fold
from monitoring.services.reference import ReferenceData, reference_arrays
from monitoring.services.rollups import floor_minute, rollup_minutes
from monitoring.services.slo import slo_evaluate
from tests.browser import LIVE_MARKS, login
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = LIVE_MARKS

SLUG = "demo-monitoring"
HOUR = timedelta(hours=1)

ALL_DRAWN = """() => {
  const charts = [...document.querySelectorAll('[data-figure]')];
  return charts.length > 0 && charts.every(el => el.dataset.rendered === '1');
}"""
CHARTS = """() => Object.fromEntries([...document.querySelectorAll('[data-figure]')].map(
  el => [el.dataset.figure, [el.dataset.rendered || '', Number(el.dataset.points || 0),
                             el.querySelectorAll('.main-svg').length > 0]]))"""

# Page (path under /projects/<slug>/monitoring/) -> the charts that must be drawn with data.
PAGES = {
    "": {"volume", "errors", "latency", "accuracy", "budget"},
    "service/": {"volume", "latency", "errors", "routes"},
    "quality/?source=feedback": {"accuracy", "languages", "versions", "classes"},
    "drift/": {"psi", "prediction", "softmax_ks", "length", "unk_rate", "language"},
    "slo/": {"burn_availability", "burn_latency"},
    "canary/": {"agreement", "confidence", "transitions_canary", "transitions_shadow"},
    "alerts/": set(),
}


def _version(project, number: int, alias: str) -> ModelVersion:
    version = ModelVersion.objects.create(project=project, number=number, status="production", base_checkpoint="x")
    Alias.objects.create(project=project, name=alias, version=version)
    return version


def _reference_from(project, version: ModelVersion, start, end) -> DriftReference:
    """Store what the stable first hour looked like as the version's drift reference (as the eval split would).

    The demo traffic carries no embeddings, so the reference's (random) ones only feed the stored PCA.
    """
    labels = list(project.labels.order_by("order").values_list("name", flat=True))
    rows = list(
        PredictionLog.objects.filter(
            project=project, route="production", created_at__gte=start, created_at__lt=end
        ).values_list("probs", "input_chars", "unk_rate", "script", "language")
    )
    data = ReferenceData(
        labels=labels,
        item_ids=list(range(len(rows))),
        probs=np.asarray([[probs[name] for name in labels] for probs, *_ in rows], dtype=np.float32),
        embeddings=np.random.default_rng(0).normal(size=(len(rows), 48)),
        lengths=[chars for _, chars, *_ in rows],
        unk_rates=[rate or 0.0 for *_, rate, _, _ in rows],
        scripts=[script or "Latin" for *_, script, _ in rows],
        languages=[language for *_, language in rows],
    )
    packed = reference_arrays(data)
    return DriftReference.objects.create(
        model_version=version,
        project=project,
        labels=labels,
        label_distribution=packed.label_shares,
        arrays=packed.npz,
        n_items=len(rows),
    )


@pytest.fixture
def demo():
    """The demo project after three hours of scripted traffic and every monitoring job; returns its owner."""
    project = ProjectFactory(slug=SLUG, name="Demo monitoring")
    owner = UserFactory(username="monitor-owner")
    MembershipFactory(project=project, user=owner, role=Role.OWNER)
    production = _version(project, 1, "production")
    _version(project, 2, "canary")
    _version(project, 3, "shadow")
    ReleasePolicy.objects.create(project=project, canary_percent=20.0, shadow_enabled=True)
    ServiceObjective.objects.create(project=project, availability_target=0.999)

    now = timezone.now()
    end = floor_minute(now)
    spec = TrafficSpec(minutes=180, rate=2.5, end=end, drift=True, error_share=0.02, feedback_share=0.3, seed=7)
    summary = traffic_simulate(project=project, spec=spec)
    assert 300 < summary.requests < 600 and summary.errors > 0 and summary.feedback > 20

    rollup_minutes(now=now)
    outcomes_fold(now=now)
    reference = _reference_from(project, production, end - 3 * HOUR, end - 2 * HOUR)
    for hours in (1, 0):
        window_end = end - hours * HOUR
        drift_run_compute(
            project=project,
            version=production,
            reference=reference,
            window=DriftRun.Window.HOURLY,
            start=window_end - HOUR,
            end=window_end,
        )
    slo_evaluate(project=project, now=now)
    return owner


def test_every_monitoring_page_draws_its_charts_with_data(chromium_page, demo):
    tab, base_url = chromium_page
    script_errors: list[str] = []
    tab.on("pageerror", lambda error: script_errors.append(str(error)))
    login(tab, base_url, demo.username)

    # The scripted stream drifted in its last hour (Spanish and Portuguese, longer texts): that window's run
    # says so. (Whether the stable hour before stays quiet is the drift tests' business, not this one's.)
    hourly = list(DriftRun.objects.filter(window="hourly").order_by("window_end"))
    assert len(hourly) == 2 and hourly[-1].drifted
    assert {"length", "language"} <= set(hourly[-1].results["alerts"])
    firing = Alert.objects.filter(state="firing").count()
    assert firing > 0  # 2% failing texts against a 99.9% objective burns the budget 20 times too fast

    for path, expected in PAGES.items():
        url = f"{base_url}/projects/{SLUG}/monitoring/{path}"
        response = tab.goto(url)
        assert response is not None and response.status == 200, (path, response and response.status)
        body = tab.inner_text("body")
        assert "Server Error" not in body and "Traceback" not in body, path
        if expected:
            tab.wait_for_function(ALL_DRAWN)
        charts = tab.evaluate(CHARTS)
        assert expected <= set(charts), (path, sorted(charts))
        for name in expected:
            rendered, points, svg = charts[name]
            assert rendered == "1" and points > 0 and svg, (path, name, charts[name])
        # Every chart slot the page filled was drawn: none left as an empty div.
        assert all(value[0] == "1" for value in charts.values()), (path, charts)

    # The overview's tiles agree with the tables behind them and link to their pages.
    tab.goto(f"{base_url}/projects/{SLUG}/monitoring/")
    assert tab.inner_text("#alerts-firing") == str(firing)
    assert "drifted" in tab.inner_text("#drift-verdict")
    tab.click("#tile-drift h2 a")
    tab.wait_for_url(f"{base_url}/projects/{SLUG}/monitoring/drift/?range=24h")
    assert tab.locator('[data-figure="psi"][data-rendered="1"]').count() == 1
    tab.goto(f"{base_url}/projects/{SLUG}/monitoring/alerts/?state=firing")
    assert tab.locator('tr[data-state="firing"]').count() == firing
    assert script_errors == []
