"""The table of what each provider kind does with each parameter is the one the README shows,
and the adapters do what it says."""

from __future__ import annotations

from conftest import ROOT
from llm import parameters


def test_the_readme_shows_the_table_the_adapters_follow():
    assert parameters.parameters_markdown() in (ROOT / "README.md").read_text()


def test_every_kind_has_a_word_for_every_parameter():
    for kinds, table in parameters.TABLES:
        assert set(table) == set(parameters.PARAMETERS), kinds
        for name, (how, _note) in table.items():
            assert how in ("forwarded", "mapped", "unsupported"), (kinds, name)
