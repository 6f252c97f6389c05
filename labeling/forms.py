"""Forms of the project pages. They check types and shapes; the services check the rules."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from labeling.models import Project, Role
from labeling.services.projects import MAX_GUIDELINES_CHARS, MAX_LABELS, PALETTE, LabelSpec, ProjectSpec


class ColorInput(forms.TextInput):
    input_type = "color"


class ProjectForm(forms.Form):
    """A project's settings. ``creating=False`` drops the fields that are fixed after creation."""

    name = forms.CharField(max_length=120)
    slug = forms.SlugField(max_length=60, help_text="Lowercase letters, digits and hyphens; used in URLs and the API.")
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    task_type = forms.ChoiceField(
        choices=[(Project.TaskType.SINGLE_LABEL, Project.TaskType.SINGLE_LABEL.label)],
        initial=Project.TaskType.SINGLE_LABEL,
        help_text="Multi-label projects come later.",
    )
    guidelines = forms.CharField(
        required=False,
        max_length=MAX_GUIDELINES_CHARS,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="Markdown. Shown to reviewers next to every item.",
    )
    languages = forms.CharField(required=False, help_text="Comma-separated codes, e.g. en, de, pt-BR.")
    base_checkpoint = forms.CharField(max_length=500, help_text="A local checkpoint directory or a hub id.")
    max_text_chars = forms.IntegerField(min_value=1, max_value=1_000_000, initial=20_000)
    al_strategy = forms.ChoiceField(
        label="Active-learning strategy", choices=Project.Strategy.choices, initial=Project.Strategy.MARGIN_DIVERSITY
    )
    al_batch_size = forms.IntegerField(label="Batch size", min_value=1, max_value=10_000, initial=50)
    retrain_after_labels = forms.IntegerField(
        label="Retrain after new labels", min_value=1, max_value=1_000_000, initial=200
    )
    language_quotas = forms.CharField(
        required=False,
        label="Language quotas",
        help_text="The least each queue batch takes of a language listed above: a share (sw: 0.2 is a fifth of "
        "the batch) or a count of items (de: 5), comma-separated. Leave empty for no quotas.",
    )

    def __init__(self, *args: Any, creating: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["slug"]
            del self.fields["task_type"]

    def clean_languages(self) -> list[str]:
        raw = self.cleaned_data.get("languages") or ""
        return [code.strip() for code in raw.replace(";", ",").split(",") if code.strip()]

    def clean_language_quotas(self) -> dict[str, float | int]:
        """Read "sw: 0.2, de: 5" (also "sw=20%") into {"sw": 0.2, "de": 5}; the service checks the values."""
        quotas: dict[str, float | int] = {}
        for entry in re.split(r"[,;\n]", self.cleaned_data.get("language_quotas") or ""):
            if not entry.strip():
                continue
            match = QUOTA_ENTRY.match(entry)
            value = _quota_value(match.group(2)) if match else None
            if match is None or value is None:
                raise forms.ValidationError(
                    f"Could not read {entry.strip()!r}: write each quota as a language code and a share or "
                    "a count, like sw: 0.2, de: 5."
                )
            if match.group(1) in quotas:
                raise forms.ValidationError(f"{match.group(1)!r} has two quotas; keep one.")
            quotas[match.group(1)] = value
        return quotas

    @classmethod
    def initial_for(cls, project: Project) -> dict[str, Any]:
        initial = {name: getattr(project, name) for name in cls.base_fields if hasattr(project, name)}
        initial["languages"] = ", ".join(project.languages)
        initial["language_quotas"] = format_quotas(project.language_quotas)
        return initial

    def spec(self, labels: list[LabelSpec]) -> ProjectSpec:
        data = dict(self.cleaned_data)
        return ProjectSpec(labels=labels, **data)

    def changes(self) -> dict[str, Any]:
        return dict(self.cleaned_data)


QUOTA_ENTRY = re.compile(r"^\s*([^\s:=]+)\s*[:=]\s*(\S+)\s*$")


def _quota_value(text: str) -> float | int | None:
    """A whole number is a count, a decimal or a percentage a share; None when it is not a number."""
    try:
        if text.endswith("%"):
            return float(text[:-1]) / 100
        return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)
    except ValueError:
        return None


def format_quotas(quotas: dict[str, float | int]) -> str:
    """Write quotas as the form reads them back: shares keep their decimal point (1.0 is all, 1 is one item).

    Sorted by code: PostgreSQL's jsonb keeps no key order, so the page shows the same text on any database.
    """
    return ", ".join(f"{code}: {quotas[code]!r}" for code in sorted(quotas))


class LabelRowForm(forms.Form):
    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    name = forms.CharField(required=False, max_length=100)
    description = forms.CharField(required=False, max_length=500)
    hotkey = forms.CharField(required=False, max_length=1, strip=False, widget=forms.TextInput(attrs={"size": 2}))
    color = forms.CharField(required=False, max_length=7, widget=ColorInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("id") and not (data.get("name") or "").strip() and not data.get("DELETE"):
            self.add_error("name", "Give this label a name, or tick “remove”.")
        return data


# Rows come from ``label_rows_initial``: a colour input always submits a value, so blank rows are
# given their palette colour up front instead of arriving as black.
LabelFormSet = forms.formset_factory(
    LabelRowForm, extra=0, can_delete=True, max_num=MAX_LABELS, validate_max=True, absolute_max=MAX_LABELS + 10
)
BLANK_LABEL_ROWS = 2


def label_specs(formset: forms.BaseFormSet) -> list[LabelSpec]:
    """Return the label set a valid formset describes: blank and removed rows left out."""
    specs = []
    for row in formset.forms:
        data = row.cleaned_data
        if not data or data.get("DELETE") or not (data.get("name") or "").strip():
            continue
        specs.append(
            LabelSpec(
                name=data["name"],
                description=data.get("description") or "",
                hotkey=data.get("hotkey") or "",
                color=data.get("color") or "",
                id=data.get("id"),
            )
        )
    return specs


def label_rows_initial(project: Project | None = None, blank_rows: int = BLANK_LABEL_ROWS) -> list[dict[str, Any]]:
    """Initial rows: the project's labels (if any), then ``blank_rows`` empty rows in palette colours."""
    rows: list[dict[str, Any]] = []
    if project is not None:
        rows = [
            {"id": lab.pk, "name": lab.name, "description": lab.description, "hotkey": lab.hotkey, "color": lab.color}
            for lab in project.labels.all()
        ]
    start = len(rows)
    # Blank rows count towards the formset's maximum, so a full label set gets none.
    blank_rows = max(0, min(blank_rows, MAX_LABELS - start))
    rows += [{"color": PALETTE[(start + k) % len(PALETTE)]} for k in range(blank_rows)]
    return rows


class MemberAddForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.REVIEWER)

    def clean_username(self) -> Any:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"There is no user named {username!r}; ask an operator to create the account.")
        return user


class MemberRoleForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices)
