"""Guidelines are markdown rendered safely: formatting stays, scripts and handlers go."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import reverse

from labeling.templatetags.loopline_markdown import render_markdown


def test_markdown_formatting_is_rendered():
    html = render_markdown("# Rules\n\n* **bold** and _em_\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[docs](https://x.org)")
    assert "<h1>Rules</h1>" in html and "<strong>bold</strong>" in html and "<em>em</em>" in html
    assert "<td>1</td>" in html
    assert '<a href="https://x.org" rel="noopener noreferrer nofollow">docs</a>' in html


@pytest.mark.parametrize(
    ("source", "forbidden"),
    [
        ("<script>alert(1)</script>", ["<script", "alert(1)"]),
        ('<img src="x.png" onerror="alert(1)">', ["onerror", "alert"]),
        ("[click](javascript:alert(1))", ["javascript:"]),
        ('<a href="https://x.org" onclick="steal()">x</a>', ["onclick", "steal"]),
        ('<iframe src="https://evil.example"></iframe>', ["<iframe"]),
        ("<style>body{display:none}</style>", ["<style", "display:none"]),
        ('<p style="position:fixed">x</p>', ["style="]),
        ("<svg><script>alert(1)</script></svg>", ["<svg", "<script"]),
    ],
)
def test_unsafe_html_is_stripped(source, forbidden):
    html = render_markdown(f"Intro\n\n{source}\n\nOutro")
    assert "Intro" in html and "Outro" in html
    for fragment in forbidden:
        assert fragment not in html


def test_the_filter_marks_only_sanitised_output_safe():
    rendered = Template("{% load loopline_markdown %}{{ text|markdown }}").render(
        Context({"text": "**hi** <script>x()</script>"})
    )
    assert "<strong>hi</strong>" in rendered and "<script" not in rendered


@pytest.mark.django_db
def test_the_overview_page_never_serves_a_script_from_guidelines(project, reviewer, client_for):
    project.guidelines = 'Be **kind**.\n\n<script>document.title="pwned"</script><img src=x onerror="alert(1)">'
    project.save()
    page = client_for(reviewer).get(reverse("labeling:project-detail", kwargs={"slug": project.slug})).content
    assert b"<strong>kind</strong>" in page
    assert b"pwned" not in page and b"onerror" not in page
