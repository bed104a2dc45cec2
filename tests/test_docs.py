"""The documentation: its reference pages say what the code does, and the README stays short and true."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas import ALERT_KINDS
from streams.docs import PAGES, REFERENCE

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_reference_page_is_what_the_code_generates(name: str) -> None:
    committed = (REFERENCE / name).read_text()
    assert committed == PAGES[name](), f"docs/reference/{name} is out of date: run python -m streams.docs"


def test_the_readme_fits_250_lines_and_links_only_to_files_that_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for target in [part.split(")", 1)[0] for part in readme.split("](")[1:]]:
        if not target.startswith(("http://", "https://")):
            assert (ROOT / target.split("#", 1)[0]).exists(), target


def test_the_runbook_has_a_section_for_every_kind_of_alert_saying_what_it_means_and_what_to_do() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    sections = {part.split("`", 1)[0]: part for part in runbook.split("\n## `")[1:]}
    assert list(sections) == list(ALERT_KINDS)  # in the order of schemas.events.AlertKind
    for kind, text in sections.items():
        assert "**What it means.**" in text and "**What to do.**" in text, kind
