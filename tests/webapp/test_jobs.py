"""The Job lifecycle: idempotent runs, progress, cancellation, failures a person can act on."""

from __future__ import annotations

import uuid

import pytest

from labeling.models import Role
from tests.factories import MembershipFactory, UserFactory
from webapp.errors import Conflict, Forbidden, NotFound, ValidationFailed
from webapp.jobs import job_cancel, job_create, job_for_user, run_job
from webapp.models import Job, JobCancelled

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(project, owner):
    return job_create(kind=Job.Kind.IMPORT, project_id=project.pk, user=owner)


def test_successful_run_records_result_and_timestamps(job):
    def body(j):
        j.set_progress(0.5, "halfway")
        return {"rows": 3}

    run_job(str(job.pk), "import", body)
    job.refresh_from_db()
    assert (job.status, job.progress, job.result, job.attempts) == ("succeeded", 1.0, {"rows": 3}, 1)
    assert job.started_at <= job.finished_at


def test_finished_job_is_never_run_twice(job):
    calls = []
    run_job(str(job.pk), "import", lambda j: calls.append(1) or {})
    run_job(str(job.pk), "import", lambda j: calls.append(1) or {})
    assert calls == [1]


def test_application_error_message_is_shown_to_the_user(job):
    def body(j):
        raise ValidationFailed("Row 3: the label 'meh' is not in the label set.", details={"row": 3})

    run_job(str(job.pk), "import", body)
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error == "Row 3: the label 'meh' is not in the label set."
    assert job.result == {"code": "validation_error", "details": {"row": 3}}


def test_unexpected_error_fails_the_job_without_leaking_internals(job):
    def body(j):
        raise KeyError("secret internal detail")

    with pytest.raises(KeyError):
        run_job(str(job.pk), "import", body)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "secret" not in job.error and "KeyError" in job.error


def test_cancelling_a_queued_job_stops_it_before_it_starts(job, owner):
    job_cancel(job=job, user=owner)
    job.refresh_from_db()
    assert job.status == "cancelled"
    ran = []
    run_job(str(job.pk), "import", lambda j: ran.append(1) or {})
    assert ran == []


def test_running_job_stops_at_its_next_progress_report_when_cancelled(job, owner):
    def body(j):
        Job.objects.filter(pk=j.pk).update(cancel_requested=True)
        j.set_progress(0.2, "still going")
        raise AssertionError("set_progress must raise JobCancelled")

    run_job(str(job.pk), "import", body)
    job.refresh_from_db()
    assert job.status == "cancelled"


def test_set_progress_raises_when_cancel_requested(job):
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    with pytest.raises(JobCancelled):
        job.set_progress(0.3)


def test_finished_job_cannot_be_cancelled(job, owner):
    run_job(str(job.pk), "import", lambda j: {})
    job.refresh_from_db()
    with pytest.raises(Conflict):
        job_cancel(job=job, user=owner)


def test_reviewer_cannot_cancel_someone_elses_job(job, reviewer):
    with pytest.raises(Forbidden):
        job_cancel(job=job, user=reviewer)


def test_outsider_and_unknown_ids_get_not_found(job, outsider):
    with pytest.raises(NotFound):
        job_for_user(user=outsider, job_id=job.pk)
    with pytest.raises(NotFound):
        job_for_user(user=outsider, job_id=uuid.uuid4())
    with pytest.raises(NotFound):
        job_for_user(user=outsider, job_id="not-a-uuid")


def test_project_members_see_the_job(job, reviewer):
    assert job_for_user(user=reviewer, job_id=job.pk) == job


def test_job_without_project_is_visible_only_to_its_creator(db, project):
    creator, member = UserFactory(username="creator"), UserFactory(username="member")
    MembershipFactory(project=project, user=member, role=Role.ADMIN)
    job = job_create(kind=Job.Kind.MAINTENANCE, project_id=None, user=creator)
    assert job_for_user(user=creator, job_id=job.pk) == job
    with pytest.raises(NotFound):
        job_for_user(user=member, job_id=job.pk)


def test_api_job_detail_and_cancel(job, api_client_for, owner, outsider):
    response = api_client_for(owner).get(f"/api/v1/jobs/{job.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "queued" and response.json()["project"] == "acme-sentiment"
    response = api_client_for(outsider).get(f"/api/v1/jobs/{job.pk}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    response = api_client_for(owner).post(f"/api/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 202 and response.json()["status"] == "cancelled"
    response = api_client_for(owner).post(f"/api/v1/jobs/{job.pk}/cancel")
    assert response.status_code == 409 and response.json()["error"]["code"] == "conflict"


def test_job_page_polls_until_finished(job, client_for, owner):
    client = client_for(owner)
    page = client.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    assert b'role="progressbar"' in page.content and b'hx-trigger="every 1s"' in page.content
    assert client.get(f"/jobs/{job.pk}/progress/").status_code == 200
    run_job(str(job.pk), "import", lambda j: {"rows": 1})
    finished = client.get(f"/jobs/{job.pk}/progress/")
    assert finished.status_code == 286  # htmx: stop polling
    assert b"every 1s" not in finished.content
