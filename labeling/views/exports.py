"""Placeholder: replaced by the owner of this module."""

from django.http import HttpResponse


def _todo(request, *args, **kwargs):
    return HttpResponse(status=501)


export_download = import_page = item_list = _todo
