"""Permission-matrix rows for the monitoring slo URLs (see tests/test_permission_matrix.py).

The matrix's world has no notification channel: removing channel 999 is no change (302 on the page,
204 in the API), testing it is a 400 naming the id (reviewers get 403 first, outsiders the project's
404). A bad SLO form and a channel form with a file: URL reach the services' refusal (400) and change
nothing.
"""

from __future__ import annotations

from tests.permissions import SLUG, Row, api, member, owner_up

CHANNEL = {**SLUG, "channel_id": "999"}

ROWS: list[Row] = [
    # --- pages ---
    Row("monitoring:slo", member(200), kwargs=SLUG),
    Row("monitoring:slo-settings", owner_up(400), "post", SLUG, {"period_days": "30", "latency_threshold_ms": "301"}),
    Row("monitoring:alerts", member(200), kwargs=SLUG),
    Row(
        "monitoring:channel-add",
        owner_up(400),
        "post",
        SLUG,
        {"kind": "webhook", "name": "ops", "target": "file:///etc/passwd", "min_severity": "page"},
    ),
    Row("monitoring:channel-remove", owner_up(302), "post", CHANNEL),
    Row("monitoring:channel-test", owner_up(400), "post", CHANNEL),
    # --- API ---
    Row("api-alerts", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-slo", api(member(200)), kwargs=SLUG, is_api=True),
    Row("api-slo", api(owner_up(200)), "put", SLUG, {"min_events": 50}, is_api=True),
    Row("api-alert-channels", api(owner_up(200)), kwargs=SLUG, is_api=True),
    Row(
        "api-alert-channels",
        api(owner_up(400)),
        "post",
        SLUG,
        {"kind": "webhook", "name": "ops", "target": "ftp://example.com/hook"},
        is_api=True,
    ),
    Row("api-alert-channel", api(owner_up(204)), "delete", CHANNEL, is_api=True),
    Row("api-alert-channel-test", api(owner_up(400)), "post", CHANNEL, is_api=True),
]
