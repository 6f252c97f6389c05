"""Forms of the SLO and alert pages: the SLO settings (objectives in percent) and a notification channel.

The forms only parse; the services validate (ranges, bucket edges, the can-never-fire refusal, URL
schemes) so the page and the API refuse the same things with the same messages.
"""

from __future__ import annotations

from typing import Any

from django import forms

from monitoring.buckets import LATENCY_EDGES_MS
from monitoring.models import Alert, NotificationChannel, ServiceObjective


def _percent(value: float | None) -> float | None:
    return None if value is None else round(value * 100, 5)


class SloForm(forms.Form):
    period_days = forms.IntegerField(label="Period (days)", min_value=1, max_value=90)
    availability_target = forms.FloatField(label="Availability objective (%)", help_text="e.g. 99.5")
    latency_target = forms.FloatField(label="Latency objective (%)", help_text="share of predictions under T")
    latency_threshold_ms = forms.TypedChoiceField(
        label="Latency threshold T (ms)", coerce=int, choices=[(e, f"{e} ms") for e in LATENCY_EDGES_MS]
    )
    quality_target = forms.FloatField(
        label="Quality objective: audited accuracy (%)", required=False, help_text="blank: no quality SLO"
    )
    min_events = forms.IntegerField(label="Minimum events in the long window", min_value=1)

    @classmethod
    def for_objective(cls, objective: ServiceObjective) -> SloForm:
        return cls(
            initial={
                "period_days": objective.period_days,
                "availability_target": _percent(objective.availability_target),
                "latency_target": _percent(objective.latency_target),
                "latency_threshold_ms": objective.latency_threshold_ms,
                "quality_target": _percent(objective.quality_target),
                "min_events": objective.min_events,
            }
        )

    def changes(self) -> dict[str, Any]:
        """Return the cleaned values as the service's fields (fractions, not percent)."""
        data = dict(self.cleaned_data)
        for name in ("availability_target", "latency_target", "quality_target"):
            if data.get(name) is not None:
                data[name] = round(data[name] / 100, 7)
        return data


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(choices=NotificationChannel.Kind.choices)
    name = forms.CharField(max_length=100)
    target = forms.CharField(max_length=1000, help_text="E-mail addresses (comma-separated) or an http(s) URL.")
    min_severity = forms.ChoiceField(
        label="Send", choices=[(Alert.Severity.TICKET, "tickets and pages"), (Alert.Severity.PAGE, "pages only")]
    )
