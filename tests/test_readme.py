"""The README (the current one, the one proposed to replace it, and the runtime's page) shows
what the commands print: its marked transcripts run here (see transcripts.py), and its Python
API example is executed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest
from conftest import REPO
from transcripts import BIN, Block, Step, blocks_of, run_block, run_step

#: The pages whose transcripts are checked; a page that does not exist yet is skipped.
PAGES = ("README.md", "docs/README.proposed.md", "docs/runtime.md")
#: The READMEs: the current one and the one proposed to replace it.
READMES = ("README.md", "docs/README.proposed.md")


def read_page(page: str) -> str:
    path = REPO / page
    if not path.is_file():
        pytest.skip(f"{page} does not exist (yet)")
    return path.read_text()


def checked_blocks() -> list:
    params = []
    for page in PAGES:
        path = REPO / page
        if path.is_file():
            for block in blocks_of(path.read_text()):
                marks = [getattr(pytest.mark, block.mark)] if block.mark else []
                params.append(pytest.param(page, block, marks=marks, id=f"{page}:{block.line}"))
    return params


@pytest.mark.parametrize("page, block", checked_blocks())
def test_a_transcript_prints_what_the_page_shows(page: str, block: Block, tmp_path: Path):
    printed = run_block(block, tmp_path)
    for step, output in zip(block.steps, printed, strict=True):
        assert output == step.expected, (
            f"{page}:{block.line}: `{step.command}` printed otherwise; if the change is meant, "
            f"regenerate with: python tests/transcripts.py {page}"
        )


@pytest.mark.parametrize("page", PAGES)
def test_every_page_has_checked_transcripts(page: str):
    blocks = blocks_of(read_page(page))
    assert blocks, f"{page} marks no transcript to check"
    assert all(block.steps for block in blocks)


def test_the_marker_is_read_as_written():
    text = (
        "<!-- check -->\n```console\n$ echo a\na\n$ echo b; echo c\nb\nc\n```\n"
        "```console\n$ not checked\n```\n"
        "<!-- check: full_eval -->\n\n```console\n$ true\n```\n"
    )
    quick, full = blocks_of(text)
    assert quick.mark is None and quick.line == 1
    assert quick.steps == (Step("echo a", "a\n"), Step("echo b; echo c", "b\nc\n"))
    assert full.mark == "full_eval" and full.steps == (Step("true", ""),)


def test_a_step_prints_stdout_and_stderr_in_order(tmp_path: Path):
    assert run_step("echo 596; echo oops >&2; exit 1", tmp_path) == "596\noops\n"
    assert run_step("command -v seqadd-run", tmp_path) == f"{BIN / 'seqadd-run'}\n"


def section(page: str, title: str) -> str:
    text = read_page(page)
    heading = re.search(rf"^(#+) {re.escape(title)}\n", text, re.M)
    assert heading, f"{page} has no section {title!r}"
    end = re.compile(rf"^#{{1,{len(heading[1])}}} ", re.M).search(text, heading.end())
    return text[heading.start() : end.start() if end else None]


@pytest.mark.parametrize("page", READMES)
def test_the_api_example_prints_what_the_readme_shows(page: str):
    api = section(page, "Python API")
    code = re.search(r"```python\n(.*?)```", api, re.S).group(1)
    shown = re.search(r"```text\n(.*?)```", api, re.S).group(1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, page, "exec"), {})
    assert printed.getvalue() == shown


@pytest.mark.parametrize("page", READMES)
def test_the_exit_status_table_lists_every_status_the_commands_use(page: str):
    table = section(page, "Exit statuses")
    statuses = set(re.findall(r"^\| (\d+) \|", table, re.M))
    assert {"0", "1", "2", "3", "130", "143", "129"} <= statuses


LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


DOCS = sorted({*READMES, *(f"docs/{path.name}" for path in (REPO / "docs").glob("*.md"))})


@pytest.mark.parametrize("page", DOCS)
def test_every_relative_link_leads_to_a_file(page: str):
    text = read_page(page)
    base = (REPO / page).parent
    if page == "docs/README.proposed.md":
        base = REPO  # written to become README.md at the top of the tree
    missing = [
        target
        for target in LINK.findall(text)
        if "://" not in target and not (base / target).exists()
    ]
    assert not missing, f"{page} links to files that do not exist: {missing}"
