"""Cross-cutting pages: a job's live progress, and the user's account settings (API token)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST
from rest_framework.authtoken.models import Token

from webapp.jobs import job_cancel, job_for_user


@login_required
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    job = job_for_user(user=request.user, job_id=job_id)
    return render(request, "webapp/job_detail.html", {"job": job})


@login_required
def job_progress(request: HttpRequest, job_id: str) -> HttpResponse:
    """The progress partial that htmx polls every second while the job runs."""
    job = job_for_user(user=request.user, job_id=job_id)
    response = render(request, "webapp/_job_progress.html", {"job": job})
    if job.is_finished:
        # 286 tells htmx to stop polling; the page keeps the final state.
        response.status_code = 286
    return response


@login_required
@require_POST
def job_cancel_view(request: HttpRequest, job_id: str) -> HttpResponse:
    job = job_cancel(job=job_for_user(user=request.user, job_id=job_id), user=request.user)
    messages.info(request, "Cancelled." if job.is_finished else "Cancelling: the job stops at its next checkpoint.")
    return redirect("job-detail", job_id=job.pk)


@login_required
@require_http_methods(["GET", "POST"])
def account_settings(request: HttpRequest) -> HttpResponse:
    """Show, create, regenerate or revoke the user's API token (the key is shown once, on creation)."""
    new_key = None
    if request.method == "POST":
        action = request.POST.get("action")
        if action in {"create", "regenerate"}:
            Token.objects.filter(user=request.user).delete()
            new_key = Token.objects.create(user=request.user).key
            messages.success(request, "New token created. Copy it now: it will not be shown again.")
        elif action == "revoke":
            Token.objects.filter(user=request.user).delete()
            messages.info(request, "Token revoked; API calls with it now get 401.")
            return redirect("account-settings")
        else:
            messages.error(request, "Unknown action.")
            return redirect("account-settings")
    token = Token.objects.filter(user=request.user).first()
    context = {"token": token, "new_key": new_key, "memberships": request.user.memberships.select_related("project")}
    return render(request, "webapp/account_settings.html", context)
