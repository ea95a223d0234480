"""Shell transcripts in Markdown pages that are run, checked and regenerated.

A transcript to check is marked by an HTML comment right before a ```console block:

    <!-- check -->                 cheap: checked in the quick tier (make check)
    <!-- check: full_eval -->      expensive: checked with the full suite only (make test)

Each `$ command` line is followed by what it prints (stdout and stderr together, as a
terminal shows them). A block runs in a fresh folder holding a copy of examples/, with the
project's commands first on the PATH; its commands share that folder. Unmarked blocks
(installs, training, exports, benchmarks) are never run.

After a change that moves a figure (a re-exported model, a new message), regenerate the pages'
transcripts and review the diff:

    python tests/transcripts.py README.md docs/runtime.md
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MARKER = re.compile(
    r"^<!-- check(?:: (?P<mark>[a-z_]+))? -->\n+```console\n(?P<body>.*?)^```$", re.M | re.S
)


@dataclass(frozen=True)
class Step:
    command: str
    expected: str


@dataclass(frozen=True)
class Block:
    line: int
    mark: str | None
    steps: tuple[Step, ...]
    #: Where the block's body is in the page's text.
    span: tuple[int, int]


def blocks_of(text: str) -> list[Block]:
    blocks = []
    for match in MARKER.finditer(text):
        steps: list[Step] = []
        for line in match["body"].splitlines():
            if line.startswith("$ "):
                steps.append(Step(line[2:], ""))
            elif steps:
                steps[-1] = Step(steps[-1].command, steps[-1].expected + line + "\n")
            else:
                raise ValueError(
                    f"line {text.count(chr(10), 0, match.start()) + 1}: a checked "
                    "block starts with a $ command"
                )
        line = text.count("\n", 0, match.start()) + 1
        blocks.append(Block(line, match["mark"], tuple(steps), match.span("body")))
    return blocks


def run_step(command: str, folder: Path) -> str:
    """What ``command`` prints in ``folder``, stdout and stderr together."""
    env = os.environ | {
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "COLUMNS": "80",  # --help wraps as on an 80-column terminal
        "TERM": "dumb",
    }
    result = subprocess.run(
        ["bash", "-c", command],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=600,
    )
    return result.stdout


def run_block(block: Block, folder: Path) -> list[str]:
    """What each of the block's commands prints, run in order in a fresh copy of examples/."""
    shutil.copytree(REPO / "examples", folder / "examples")
    printed = [run_step(step.command, folder) for step in block.steps]
    # A page cannot show a missing final newline: the fence needs a line of its own.
    return [out + "\n" if out and not out.endswith("\n") else out for out in printed]


def regenerate(page: Path) -> None:
    """Rewrite every checked transcript of ``page`` with what its commands print now."""
    text = page.read_text()
    for block in reversed(blocks_of(text)):  # from the end, so earlier spans stay valid
        with tempfile.TemporaryDirectory() as folder:
            printed = run_block(block, Path(folder))
        body = "".join(
            f"$ {step.command}\n{out}" for step, out in zip(block.steps, printed, strict=True)
        )
        text = text[: block.span[0]] + body + text[block.span[1] :]
    page.write_text(text)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        regenerate(Path(name))
        print(f"regenerated {name}")
