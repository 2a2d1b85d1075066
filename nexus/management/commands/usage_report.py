"""`manage.py usage_report --month 2026-03 [--csv]`: a month's usage per user and model."""

from __future__ import annotations

import csv
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from billing.charts import format_count
from billing.money import plain_amount
from llm.models import Model
from nexus.operations import REPORT_COLUMNS, month_parse, usage_report


def _cell(value: object) -> object:
    return plain_amount(value) if isinstance(value, Decimal) else value  # 0, not 0E-10


class Command(BaseCommand):
    help = (
        "Print everyone's AI calls, tokens and cost in one calendar month (UTC) per user and "
        "model, with totals; --csv for a spreadsheet (exact costs). Read from the daily rollup."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--month", required=True, help="The month, as YYYY-MM.")
        parser.add_argument("--csv", action="store_true", help="CSV on stdout instead of a table.")

    def handle(self, *args: Any, month: str, csv: bool, **options: Any) -> None:
        try:
            first_day = month_parse(month)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        report = usage_report(month=first_day)
        if csv:
            self._csv(report)
        else:
            self._table(report)

    def _csv(self, report: dict[str, Any]) -> None:
        writer = csv.writer(self.stdout, lineterminator="\n")
        # The rollup keeps models by name: the catalog tells their kind (chat, embedding), as long
        # as it has them.
        names = {row["model"] for row in report["rows"]}
        kinds = dict(Model.objects.filter(name__in=names).values_list("name", "kind"))
        columns = (*REPORT_COLUMNS[:2], "kind", *REPORT_COLUMNS[2:])
        writer.writerow(columns)
        for row in report["rows"]:
            row = {**row, "kind": kinds.get(row["model"], "")}
            writer.writerow([_cell(row[name]) for name in columns])

    def _table(self, report: dict[str, Any]) -> None:
        title = f"Usage in {report['month']:%Y-%m} (UTC), by user and model"
        self.stdout.write(title)
        if not report["rows"]:
            self.stdout.write("No AI calls in this month.")
            return
        header = ("user", "model", "calls", "failed", "input tokens", "output tokens", "cost")
        lines = [
            (
                row["user"],
                row["model"],
                str(row["calls"]),
                str(row["failed"]),
                format_count(row["input_tokens"]),
                format_count(row["output_tokens"]),
                f"{row['cost']:.4f}",
            )
            for row in report["rows"]
        ]
        totals = report["totals"]
        lines.append(
            (
                "total",
                "",
                str(totals["calls"]),
                str(totals["failed"]),
                format_count(totals["input_tokens"]),
                format_count(totals["output_tokens"]),
                f"{totals['cost']:.4f}",
            )
        )
        widths = [max(len(line[index]) for line in (header, *lines)) for index in range(len(header))]
        for number, line in enumerate((header, *lines)):
            if number == len(lines):  # a rule above the totals
                self.stdout.write("  ".join("-" * width for width in widths))
            cells = [
                cell.ljust(width) if index < 2 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(line, widths, strict=True))
            ]
            self.stdout.write("  ".join(cells).rstrip())
