"""Sphinx configuration: MyST Markdown pages, the reference from the docstrings (autodoc),
the furo theme. Built strictly by `nox -s docs`: any warning fails the build."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

project = "pg-backups-async"
author = "the pg-backups-async developers"
# Without a copyright, furo's footer reads "Copyright ©" and nothing after it.
copyright = f"2026, {author}"
extensions = ["myst_parser", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "_generated"]
myst_heading_anchors = 3
html_theme = "furo"
html_title = "pg-backups-async"
html_static_path = ["_static"]
html_css_files = ["wrap.css"]
# Docstrings write names and code in single backquotes, as Markdown does.
default_role = "code"
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
nitpicky = True
# Only this package's names must resolve: the build runs offline (no intersphinx), so
# types from the standard library and the dependencies are shown, not linked.
nitpick_ignore_regex = [
    (r"py:(class|obj|exc|data)", r"(?!pg_backups_async\.).*"),
    (r"py:(class|obj)", r"pg_backups_async\.\w+\.(_\w+|[A-Z]|[A-Z]_co|Handler|AttemptHook)"),
]


def _cli_reference(app: Any) -> None:
    """docs/_generated/cli-reference.md: `--help` of every command, from the parser."""
    from pg_backups_async import cli

    os.environ["COLUMNS"] = "88"
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["## `pg-backups`", "", "```text", parser.format_help().rstrip(), "```", ""]
    for name, command in commands.choices.items():
        parts += [f"## `pg-backups {name}`", "", "```text", command.format_help().rstrip()]
        parts += ["```", ""]
    target = Path(app.srcdir) / "_generated" / "cli-reference.md"
    target.parent.mkdir(exist_ok=True)
    target.write_text("\n".join(parts))


def setup(app: Any) -> None:
    app.connect("builder-inited", _cli_reference)
