"""The docs' reference pages, generated from the code: the settings, the CLI, the events on the topics.

``python -m streams.docs`` writes ``docs/reference/*.md``; a test fails when a committed page differs from
what the code generates, so the reference cannot drift from the code (``make docs`` builds the site).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from schemas.json_schema import TOPIC_RECORDS, schema_for
from streams.settings import Settings

__all__ = ["PAGES", "write_all"]

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"


def settings_page() -> str:
    rows = "\n".join(f"| `{env}` | `{default}` | {doc} |" for env, default, doc in Settings.documented())
    return f"""# Settings

Every setting is an environment variable, read when a worker or a command starts, from the environment
and then from a `.env` in the current directory (the environment first). The providers' SDKs read their own:
`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `GEMINI_API_KEY`,
`GOOGLE_GEMINI_BASE_URL`; boto3 its AWS credentials, `AWS_ENDPOINT_URL_BEDROCK`,
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` and `AWS_ENDPOINT_URL_S3`. tierline's own:

| variable | default | meaning |
|---|---|---|
{rows}
"""


def cli_page() -> str:
    from streams.cli.main import main

    with _context(main, "tierline") as top:
        parts = ["# The `tierline` command\n", _help(main, top)]
        for name in main.list_commands(top):
            command = main.get_command(top, name)
            assert command is not None
            with _context(command, name, top) as ctx:
                parts.append(f"## tierline {name}\n\n{_help(command, ctx)}")
    return "\n".join(parts)


def _context(command: click.Command, name: str, parent: click.Context | None = None) -> click.Context:
    """The context a real invocation makes (the group's settings, ``-h`` among them), at a fixed width."""
    return command.make_context(name, [], parent=parent, resilient_parsing=True, terminal_width=100,
                                max_content_width=100)


def _help(command: click.Command, ctx: click.Context) -> str:
    return f"```text\n{command.get_help(ctx)}\n```\n"


def events_page() -> str:
    parts = ["# Events on the topics\n",
             "Each public topic's value, generated from the records the code writes; the JSON Schemas themselves "
             "are in `schemas/json/`.\n"]
    for topic in TOPIC_RECORDS:
        schema = schema_for(topic)
        parts.append(f"## {schema['title']}\n\n{schema['description']}\n")
        parts.append("| field | type | required | meaning |\n|---|---|---|---|")
        for name, field in schema["properties"].items():
            required = "yes" if name in schema.get("required", ()) else ""
            meaning = " ".join(str(field.get("description", "")).split()).replace("|", "\\|")
            parts.append(f"| `{name}` | {_type(field)} | {required} | {meaning} |")
        parts.append("")
    return "\n".join(parts)


def _type(field: dict[str, Any]) -> str:
    if "enum" in field:
        return " \\| ".join(f"`{value}`" for value in field["enum"] if value is not None)
    if "anyOf" in field:
        return " or ".join(_type(option) for option in field["anyOf"])
    return str(field.get("type", "string" if "pattern" in field else "any"))


PAGES = {"settings.md": settings_page, "cli.md": cli_page, "events.md": events_page}


def write_all(folder: Path = REFERENCE) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, page in PAGES.items():
        path = folder / name
        path.write_text(page())
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
