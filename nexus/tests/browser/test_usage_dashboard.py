"""The usage dashboard tells a range without calls from calls that cost nothing, and its charts'
labels read at the size of the page's text on a 1366 px screen."""

from __future__ import annotations

from itertools import pairwise

import pytest
from django.urls import reverse

from llm.models import Model
from nexus.tests.console.conftest import make_user

pytestmark = [pytest.mark.browser, pytest.mark.live, pytest.mark.django_db(transaction=True)]

DASHBOARD = reverse("admin:billing_usagedashboard_changelist")

# Each chart's label boxes, as drawn on the screen.
_LABEL_BOXES = """
[...document.querySelectorAll(".nexus-chart svg text")].map(text => {
  const box = text.getBoundingClientRect(), frame = text.closest("svg").getBoundingClientRect();
  return {text: text.textContent, left: box.left, right: box.right, height: box.height,
          inside: box.left >= frame.left - 1 && box.right <= frame.right + 1,
          top: Math.round(box.top), chart: text.closest("figure").querySelector("figcaption").textContent};
})
"""


def test_a_range_without_calls_says_so_and_draws_no_chart(page, screenshot):
    page.goto(DASHBOARD + "?days=7")
    screenshot(page, "no-calls")
    assert "No AI calls in this range" in page.locator("#nexus-no-calls").inner_text()
    assert page.locator(".nexus-charts svg").count() == 0
    assert "Calls\n0" in page.locator(".nexus-totals").inner_text()


def test_calls_that_cost_nothing_draw_their_tokens_and_say_why_there_is_no_cost(
    page, screenshot, catalog, record_call
):
    free = Model.objects.create(provider=catalog.provider, name="demo-free", upstream_name="demo")
    record_call(make_user("free@example.com"), free, input_tokens=300, output_tokens=700)
    page.goto(DASHBOARD)
    screenshot(page, "no-cost")
    assert page.locator("#nexus-no-calls").count() == 0
    charts = page.locator(".nexus-chart")
    tokens, cost, by_model, by_user = (charts.nth(index) for index in range(4))
    assert tokens.locator("svg rect").count() > 0  # the day's column
    for chart in (cost, by_model, by_user):
        assert chart.locator("svg").count() == 0  # no empty frame drawn
        assert "cost nothing" in chart.inner_text()
    assert "No usage" not in page.content()


def test_the_charts_labels_are_readable_and_do_not_overlap(page, screenshot, catalog, record_call):
    for number, model in enumerate((catalog.primary, catalog.primary, catalog.backup)):
        record_call(make_user(f"user{number}@example.com"), model, input_tokens=400, output_tokens=900)
    record_call(make_user("someone.with.a.long.address@department.example.com"), catalog.primary)
    for days in (30, 90):
        page.goto(f"{DASHBOARD}?days={days}")
        screenshot(page, f"charts-{days}-days")
        labels = page.evaluate(_LABEL_BOXES)
        assert labels
        small = [label["text"] for label in labels if label["height"] < 11]
        assert small == [], f"labels under 11 px: {small}"
        cut = [label["text"] for label in labels if not label["inside"]]
        assert cut == [], f"labels cut at the chart's edge: {cut}"
        rows: dict[tuple[str, int], list[dict]] = {}
        for label in labels:
            rows.setdefault((label["chart"], label["top"]), []).append(label)
        for row in rows.values():
            row.sort(key=lambda label: label["left"])
            for before, after in pairwise(row):
                assert before["right"] <= after["left"], f"{before['text']!r} overlaps {after['text']!r}"
    user_chart = page.locator(".nexus-chart").nth(3)
    assert "someone.with.a.long" in user_chart.inner_text()
    assert user_chart.locator("title", has_text="department.example.com").count() >= 1  # the full address
