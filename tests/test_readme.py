"""The README's Python API section runs as written and prints what the README says."""

from __future__ import annotations

import contextlib
import io
import re

from conftest import REPO


def section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def test_the_api_example_prints_what_the_readme_shows():
    api = section("Python API")
    code = re.search(r"```python\n(.*?)```", api, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", api, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert printed.getvalue() == shown


def test_the_exit_status_table_lists_every_status_the_commands_use():
    table = section("Exit statuses")
    statuses = set(re.findall(r"^\| (\d+) \|", table, re.M))
    assert {"0", "1", "2", "3", "130", "143", "129"} <= statuses
