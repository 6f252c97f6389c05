"""The drift alerts: one per window kind and version, ticket severity, with the numbers and a link.

Scheduled runs fire, keep or resolve them through ``monitoring.services.alerts``; an hourly alert needs
two drifted hours in a row, a daily one a single drifted day (see ``drift_alerts_sync``).
"""

from __future__ import annotations

from django.urls import reverse

from labeling.models import Project
from monitoring.models import Alert, DriftRun
from monitoring.services.alerts import AlertSpec, alerts_sync


def _hourly_confirmed(project: Project, run: DriftRun, key: str) -> bool:
    """Whether the hour before drifted too, or the alert already fires (it then stays until an hour is clean)."""
    if Alert.objects.filter(project=project, key=key, state=Alert.State.FIRING).exists():
        return True
    return DriftRun.objects.filter(
        project=project, version_number=run.version_number, window=run.window, window_end=run.window_start, drifted=True
    ).exists()


def drift_alerts_sync(*, project: Project, run: DriftRun) -> None:
    """Fire (or keep) this window kind's drift alert when the run drifted; resolve it when it did not.

    A run flags drift by chance with probability at most ALPHA (see ``correct``): one a day for hourly
    windows. So an hourly alert needs two drifted hours in a row (ALPHA squared by chance, about once a
    month), a daily one a single drifted day (about one false alert in twenty days).
    """
    prefix = f"drift:{run.window}:"
    key = f"{prefix}v{run.version_number}"
    firing: dict[str, AlertSpec] = {}
    if run.drifted and (run.window != DriftRun.Window.HOURLY or _hourly_confirmed(project, run, key)):
        tests = []
        for name in run.results["alerts"]:
            code, _, test = name.rpartition(":")
            entry = run.results["per_language"][code][test] if code else run.results["overall"][test]
            tests.append(
                {
                    "test": test,
                    "language": code or None,
                    "statistic": entry["statistic"],
                    "p_value": entry["p_value"],
                    "threshold": entry["threshold"],
                }
            )
        url = reverse("monitoring:drift", kwargs={"slug": project.slug}) + f"?run={run.pk}"
        firing[key] = AlertSpec(
            severity=Alert.Severity.TICKET,
            title=f"Drift in v{run.version_number} ({run.get_window_display().lower()} window): "
            + ", ".join(run.results["alerts"]),
            evidence={
                "run": run.pk,
                "window": run.window,
                "window_start": run.window_start.isoformat(),
                "window_end": run.window_end.isoformat(),
                "n_reference": run.n_reference,
                "n_current": run.n_current,
                "tests": tests,
                "url": url,
            },
            version_number=run.version_number,
        )
    alerts_sync(project=project, kind=Alert.Kind.DRIFT, firing=firing, key_prefix=prefix)
