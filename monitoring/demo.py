"""A scripted stream of production traffic for demos and tests: predictions, errors and feedback.

``traffic_simulate`` writes what a busy prediction API would have logged over the last ``minutes``:
requests arriving as a Poisson process at ``rate`` per minute from a handful of callers, one to a few
texts each, in several languages and a realistic label mix, with a log-normal latency that grows with
the text length and the odd slow spike, a small share of 429/503 errors, and caller feedback (the true
label) for a few percent of the predictions, a few minutes after each. The rows go through the real
sink, ``modeling.services.serving.prediction_log_write`` (so redaction, the audit sample and the
script column are the server's own); errors and feedback are bulk-inserted because they must be
back-dated, which the API's own services cannot do.

Routing follows the project's state as the API would: the canary alias answers the callers whose
sticky bucket (``canary_bucket``) falls under ``canary_percent``, and with shadow scoring on, every
production request is copied to the shadow alias a few milliseconds later.

Texts come from the project's own items (so feedback can carry their gold label), topped up by a small
phrase bank for languages the project has no items in. The optional drifted stretch (the last
``drift_fraction`` of the stream) changes the language mix (towards Spanish and Portuguese), the label
mix (towards the first label), makes texts longer, less often right and less confident, and doubles the
error share: what the drift, quality and SLO pages should notice.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.utils import timezone

from labeling.models import Item, Label, Project
from modeling.models import Alias, PredictionError, PredictionFeedback, ReleasePolicy
from modeling.services.serving import canary_bucket, prediction_log_write

WRITE_BATCH = 500
SERVICES = ("checkout-web", "support-bot", "mobile-app", "partner-api", "batch-etl", "review-mod", "crm-sync")
# Seven services with seven instances each: enough caller keys for a canary share to land near its setting.
CALLERS = tuple(f"{service}-{i}" for service in SERVICES for i in range(1, 8))
NORMAL_LANGUAGES = {"en": 0.62, "de": 0.2, "es": 0.1, "fr": 0.08}
DRIFTED_LANGUAGES = {"es": 0.4, "pt": 0.3, "en": 0.2, "de": 0.1}
# Short phrases per language and sentiment, for languages (or projects) without items to draw from.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "negative": ("the delivery was late again and nobody answered", "worst support I have ever had"),
        "neutral": ("the store opens at nine on weekdays", "my order number is in the email"),
        "positive": ("thanks, the new app works great", "really happy with how fast this was"),
    },
    "de": {
        "negative": ("die Lieferung kam schon wieder zu spät", "der Kundendienst war eine Katastrophe"),
        "neutral": ("der Laden öffnet um neun Uhr", "die Bestellnummer steht in der E-Mail"),
        "positive": ("danke, die neue App funktioniert super", "sehr zufrieden mit dem schnellen Versand"),
    },
    "es": {
        "negative": ("el pedido llegó tarde otra vez", "el peor servicio que he tenido"),
        "neutral": ("la tienda abre a las nueve", "el número de pedido está en el correo"),
        "positive": ("gracias, la aplicación funciona genial", "muy contento con la rapidez del envío"),
    },
    "fr": {
        "negative": ("la livraison est encore en retard", "le service client ne répond jamais"),
        "neutral": ("le magasin ouvre à neuf heures", "le numéro de commande est dans le mail"),
        "positive": ("merci, la nouvelle appli marche très bien", "très content de la livraison rapide"),
    },
    "pt": {
        "negative": ("a entrega atrasou de novo", "o pior atendimento que já tive"),
        "neutral": ("a loja abre às nove horas", "o número do pedido está no email"),
        "positive": ("obrigado, o aplicativo novo funciona muito bem", "muito feliz com a entrega rápida"),
    },
}
SHADOW_KEEPS = 0.92
# Phrase-bank texts get a random tag most of the time; the rest repeat verbatim, as popular texts do,
# so that canary and production callers sometimes send the very same text.
UNIQUE_SHARE = 0.7
FILLER = ("today", "again", "please", "order", "app", "account", "update", "store", "help", "now")


@dataclass(frozen=True)
class TrafficSpec:
    """What to simulate: ``minutes`` up to ``end`` (default now), ``rate`` requests per minute."""

    minutes: int
    rate: float
    drift: bool = False
    drift_fraction: float = 1 / 3
    end: datetime | None = None
    seed: int = 0
    accuracy: float = 0.88
    drifted_accuracy: float = 0.66
    error_share: float = 0.005
    feedback_share: float = 0.05

    def __post_init__(self) -> None:
        if self.minutes < 1 or self.minutes > 7 * 24 * 60:
            raise ValueError(f"minutes must be 1 to {7 * 24 * 60} (a week), got {self.minutes}")
        if not 0 < self.rate <= 6000:
            raise ValueError(f"rate must be above 0 and at most 6000 requests a minute, got {self.rate}")
        if not 0 < self.drift_fraction <= 1:
            raise ValueError(f"drift_fraction must be in (0, 1], got {self.drift_fraction}")


@dataclass
class TrafficSummary:
    """What was written: counts per route, language and label, and the drifted stretch's start."""

    start: datetime
    end: datetime
    requests: int = 0
    predictions: int = 0
    written: int = 0
    errors: int = 0
    feedback: int = 0
    drift_start: datetime | None = None
    routes: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    labels: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class _Source:
    text: str
    language: str
    truth: str


class _Texts:
    """Draws a text of a given language and true label: the project's items first, else the phrase bank."""

    def __init__(self, project: Project, labels: list[str], rng: random.Random) -> None:
        self.rng, self.labels = rng, labels
        self.items: dict[tuple[str, str], list[str]] = defaultdict(list)
        rows = (
            Item.objects.filter(project=project, gold_label__isnull=False)
            .order_by("id")
            .values_list("text", "language", "gold_label__name")[:5000]
        )
        for text, language, label in rows:
            self.items[(language or "en", label)].append(text)

    def draw(self, language: str, truth: str, *, long: bool) -> _Source:
        texts = self.items.get((language, truth))
        if texts:
            text = self.rng.choice(texts)
        else:
            bank = PHRASES.get(language, PHRASES["en"])
            # A label the bank does not know keeps a neutral phrase: the truth still comes from the label.
            text = self.rng.choice(bank.get(truth, bank["neutral"]))
            if self.rng.random() < UNIQUE_SHARE:
                text = f"{text} {' '.join(self.rng.sample(FILLER, 2))} #{self.rng.randrange(10_000)}"
        if long:
            text = f"{text} {text}"
        return _Source(text, language, truth)


def _routes(project: Project) -> tuple[dict[str, int], ReleasePolicy]:
    aliases = dict(Alias.objects.filter(project=project).values_list("name", "version__number"))
    policy = ReleasePolicy.objects.filter(project=project).first() or ReleasePolicy(project=project)
    return aliases, policy


def _probs(labels: list[str], predicted: str, confidence: float, rng: random.Random) -> dict[str, float]:
    """Return probabilities whose largest is ``confidence`` on ``predicted`` (the rest split at random)."""
    others = [label for label in labels if label != predicted]
    if not others:
        return {predicted: 1.0}
    weights = [rng.random() + 0.2 for _ in others]
    rest = 1.0 - confidence
    shares = [rest * w / sum(weights) for w in weights]
    if max(shares) >= confidence:  # keep the predicted label on top
        shares = [rest / len(others)] * len(others)
    probs = {label: round(share, 6) for label, share in zip(others, shares, strict=True)}
    probs[predicted] = round(confidence, 6)
    return probs


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def traffic_simulate(*, project: Project, spec: TrafficSpec) -> TrafficSummary:
    """Write a realistic stream of production traffic for ``project`` into the prediction log (see module).

    Runs outside a transaction (a command, a shell, a test with transaction=True): the sink, made for
    the model server's writer thread, drops a database connection it finds inside one.
    """
    if connection.in_atomic_block:
        raise RuntimeError("traffic_simulate writes through the model server's log sink: call it outside a transaction")
    labels = list(Label.objects.filter(project=project).order_by("order", "id").values_list("name", flat=True))
    if not labels:
        raise ValueError(f"project {project.slug!r} has no labels to predict")
    aliases, policy = _routes(project)
    rng = random.Random(spec.seed)
    end = spec.end or timezone.now()
    start = end - timedelta(minutes=spec.minutes)
    summary = TrafficSummary(start=start, end=end)
    drift_at = end - timedelta(minutes=spec.minutes * spec.drift_fraction) if spec.drift else None
    summary.drift_start = drift_at
    simulator = _Simulator(project, labels, aliases, policy, spec, rng, summary)
    at = start
    while True:
        at += timedelta(seconds=rng.expovariate(spec.rate / 60.0))
        if at >= end:
            break
        simulator.request(at, drifted=drift_at is not None and at >= drift_at)
    simulator.flush()
    return summary


class _Simulator:
    """Turns request times into log rows, errors and feedback, written in batches through the real sink."""

    def __init__(
        self,
        project: Project,
        labels: list[str],
        aliases: dict[str, int],
        policy: ReleasePolicy,
        spec: TrafficSpec,
        rng: random.Random,
        summary: TrafficSummary,
    ) -> None:
        self.project, self.labels, self.aliases, self.policy = project, labels, aliases, policy
        self.spec, self.rng, self.summary = spec, rng, summary
        self.texts = _Texts(project, labels, rng)
        self.label_ids = dict(Label.objects.filter(project=project).values_list("name", "id"))
        self.rows: list[dict[str, object]] = []
        self.errors: list[PredictionError] = []
        self.feedback: list[PredictionFeedback] = []
        # A typical label mix: the last label (often "positive") commonest, the first rarer.
        self.label_mix = {label: 1.0 + i * 0.6 for i, label in enumerate(labels)}
        self.drifted_mix = {label: 3.0 if i == 0 else 1.0 for i, label in enumerate(labels)}

    def request(self, at: datetime, *, drifted: bool) -> None:
        rng, spec = self.rng, self.spec
        caller = rng.choice(CALLERS)
        route = self._route(caller)
        count = 1 if rng.random() < 0.8 else rng.randint(2, 8)
        self.summary.requests += 1
        if rng.random() < spec.error_share * (2 if drifted else 1):
            self._error(at, caller, route, count)
            return
        sources = [self._source(drifted) for _ in range(count)]
        chars = sum(len(s.text) for s in sources)
        # Log-normal around 12 ms plus 0.03 ms a character; one request in a hundred waits behind a batch.
        latency = rng.lognormvariate(math.log(12.0 + 0.03 * chars), 0.35) * (5.0 if rng.random() < 0.01 else 1.0)
        version = self.aliases.get(Alias.Name.CANARY if route == "canary" else Alias.Name.PRODUCTION, 1)
        accuracy = spec.drifted_accuracy if drifted else spec.accuracy
        for source in sources:
            prediction_id, label = self._prediction(at, caller, route, version, latency, source, accuracy, drifted)
            self._maybe_feedback(prediction_id, at, source)
            if route == "production" and self._shadowing():
                shadow_at = at + timedelta(milliseconds=rng.uniform(5, 60))
                shadow = self.aliases[Alias.Name.SHADOW]
                self._prediction(shadow_at, caller, "shadow", shadow, latency, source, accuracy, drifted, follows=label)
        if len(self.rows) >= WRITE_BATCH:
            self.flush()

    def _route(self, caller: str) -> str:
        percent = self.policy.canary_percent
        split = Alias.Name.CANARY in self.aliases and percent > 0
        if split and canary_bucket(project_id=self.project.pk, caller_key=caller) < percent:
            return "canary"
        return "production"

    def _shadowing(self) -> bool:
        return bool(self.policy.shadow_enabled) and Alias.Name.SHADOW in self.aliases

    def _source(self, drifted: bool) -> _Source:
        languages = DRIFTED_LANGUAGES if drifted else NORMAL_LANGUAGES
        truth = _weighted(self.rng, self.drifted_mix if drifted else self.label_mix)
        return self.texts.draw(_weighted(self.rng, languages), truth, long=drifted and self.rng.random() < 0.5)

    def _prediction(
        self,
        at: datetime,
        caller: str,
        route: str,
        version: int,
        latency: float,
        source: _Source,
        accuracy: float,
        drifted: bool,
        follows: str | None = None,
    ) -> tuple[str, str]:
        """Log one prediction; return its id and label. ``follows``: production's label, which a shadow
        version (a sibling model, whose errors correlate with production's) keeps most of the time."""
        rng = self.rng
        if follows is not None and rng.random() < SHADOW_KEEPS:
            predicted = follows
        else:
            right = rng.random() < accuracy
            predicted = (
                source.truth if right else rng.choice([x for x in self.labels if x != source.truth] or self.labels)
            )
        right = predicted == source.truth
        floor = 1.0 / len(self.labels)
        # Right answers are mostly confident, wrong ones less so; drift lowers both.
        shape = (7.0, 2.0) if right else (3.0, 3.0)
        confidence = floor + (1.0 - floor) * rng.betavariate(*shape) * (0.85 if drifted else 1.0)
        confidence = min(0.999, max(floor + 0.02, confidence))
        prediction_id = str(uuid.uuid4())
        self.rows.append(
            {
                "id": prediction_id,
                "version": version,
                "created_at": at.timestamp(),
                "latency_ms": round(latency, 3),
                "label": predicted,
                "confidence": confidence,
                "probs": _probs(self.labels, predicted, confidence, rng),
                "input_chars": len(source.text),
                "text_sha256": hashlib.sha256(source.text.encode("utf-8")).hexdigest(),
                "text": source.text,
                "unk_rate": round(rng.uniform(0.05, 0.25) if source.language == "pt" else rng.uniform(0.0, 0.04), 4),
                "meta": {
                    "project": self.project.pk,
                    "caller": caller,
                    "route": route,
                    "log_text": bool(self.policy.log_texts),
                    "language": source.language,
                },
            }
        )
        self.summary.predictions += 1
        self.summary.routes[route] += 1
        self.summary.languages[source.language] += 1
        self.summary.labels[predicted] += 1
        return prediction_id, predicted

    def _maybe_feedback(self, prediction_id: str, at: datetime, source: _Source) -> None:
        if self.rng.random() >= self.spec.feedback_share or source.truth not in self.label_ids:
            return
        self.feedback.append(
            PredictionFeedback(
                prediction_id=uuid.UUID(prediction_id),
                project=self.project,
                label_id=self.label_ids[source.truth],
                # The caller learns the truth minutes later (never after the stream's end: no future rows).
                created_at=min(at + timedelta(minutes=self.rng.uniform(1, 30)), self.summary.end),
            )
        )

    def _error(self, at: datetime, caller: str, route: str, count: int) -> None:
        overloaded = self.rng.random() < 0.4
        self.errors.append(
            PredictionError(
                project=self.project,
                created_at=at,
                kind=PredictionError.Kind.OVERLOADED if overloaded else PredictionError.Kind.RATE_LIMITED,
                status_code=503 if overloaded else 429,
                version_number=self.aliases.get(Alias.Name.PRODUCTION, 0),
                route=route,
                caller=caller,
                texts=count,
                latency_ms=round(self.rng.uniform(0.5, 3.0), 3),
            )
        )
        self.summary.errors += 1

    def flush(self) -> None:
        """Write the buffered log rows through the sink, then the errors and the feedback that refer to them."""
        if self.rows:
            self.summary.written += prediction_log_write(self.rows)
            self.rows = []
        if self.errors:
            PredictionError.objects.bulk_create(self.errors)
            self.errors = []
        if self.feedback:
            PredictionFeedback.objects.bulk_create(self.feedback)
            self.summary.feedback += len(self.feedback)
            self.feedback = []
