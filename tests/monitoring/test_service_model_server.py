"""The model server's status snapshot: written from a real ``ModelServer``'s counters, shown on the Service page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from modeling.management.commands.model_server import StatusWriter
from modeling.ml.batching import BatchPolicy
from modeling.models import ModelServerStatus
from modeling.serving.server import ModelServer, ModelSpec, TextResult

pytestmark = pytest.mark.django_db


def _loader(spec):
    def run(texts):
        return [TextResult([0.8, 0.2], spec.version, ["positive", "negative"]) for _ in texts]

    return ["positive", "negative"], run


@pytest.fixture
def server(project):
    server = ModelServer(policy=BatchPolicy(max_batch_texts=8, max_wait_ms=0), loader=_loader, threads=1)
    server.load(ModelSpec(key=f"{project.pk}:production", path="-", version=7))
    yield server
    server.close()


def test_the_snapshot_carries_batches_and_reaches_the_service_page(server, project, reviewer, client_for):
    server.predict(f"{project.pk}:production", ["one", "two", "three"])
    writer = StatusWriter(server)
    writer.write()
    row = ModelServerStatus.objects.get(name=writer.name)
    model = row.stats["models"][f"{project.pk}:production"]
    assert model["texts"] >= 3 and model["version"] == 7  # plus the warm-up batch, if the server runs one
    writer.write()  # within the interval: no second write
    assert ModelServerStatus.objects.get(name=writer.name).updated_at == row.updated_at
    response = client_for(reviewer).get(reverse("monitoring:service", kwargs={"slug": project.slug}))
    body = response.content.decode()
    assert writer.name in body and "production v7" in body
    assert "No model server reporting" not in body
    writer.remove()
    assert not ModelServerStatus.objects.exists()
    response = client_for(reviewer).get(reverse("monitoring:service", kwargs={"slug": project.slug}))
    assert "No model server reporting" in response.content.decode()
