"""``{{ text|markdown }}``: render markdown (project guidelines) to sanitised HTML.

Markdown passes raw HTML through, so the output is cleaned by nh3 (an allow-list: no scripts,
no event-handler attributes, no ``javascript:`` URLs) before it is marked safe.
"""

from __future__ import annotations

import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

EXTENSIONS = ["extra", "sane_lists"]
URL_SCHEMES = {"http", "https", "mailto"}


def render_markdown(text: str) -> str:
    """Return ``text`` rendered from markdown to HTML with everything unsafe removed."""
    html = markdown_lib.markdown(text or "", extensions=EXTENSIONS, output_format="html")
    return nh3.clean(
        html,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        clean_content_tags={"script", "style"},
    )


@register.filter(name="markdown")
def markdown_filter(text: str) -> SafeString:
    return mark_safe(render_markdown(text))  # noqa: S308  (sanitised by nh3 just above)
