"""The Ray path against `seqadd-run` on the same files, on this machine.

    python -m seqadd_ray.bench [--files 4] [--lines 500000] [--model addition-3d]

Writes FILES files of LINES random queries into a temporary folder, answers them with
`seqadd-run` (one process per file, one after the other, each using every core) and with
`seqadd-batch`'s engine on a private local Ray instance (as the command starts one), and
prints both throughputs and their ratio.
Ray's start-up is timed apart from the answering.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import typer
from seqadd_runtime.adder import Doubtful
from seqadd_runtime.output import OutputFormat

from seqadd_ray import cluster
from seqadd_ray.chunks import CHUNK_BYTES
from seqadd_ray.model import model_bytes_of
from seqadd_ray.storage import expand_inputs

app = typer.Typer(add_completion=False, rich_markup_mode=None)


def fail(message: str) -> None:
    raise SystemExit(f"seqadd_ray.bench: {message}")


def write_files(folder: Path, files: int, lines: int, digits: int) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for index in range(files):
        a, b = rng.integers(0, 10**digits, (2, lines))
        path = folder / f"queries-{index}.txt"
        path.write_text("".join(f"{x}+{y}\n" for x, y in zip(a.tolist(), b.tolist(), strict=True)))
        paths.append(path)
    return paths


@app.command()
def main(
    files: int = typer.Option(4, min=1, help="Input files."),
    lines: int = typer.Option(500_000, min=1, help="Queries per file."),
    model: str = typer.Option("addition-3d", help="Shipped model name or folder."),
) -> None:
    digits = 3 if model.endswith("3d") else 5
    with tempfile.TemporaryDirectory() as folder:
        paths = write_files(Path(folder), files, lines, digits)
        total = files * lines
        run = str(Path(sys.executable).parent / "seqadd-run")
        started = time.perf_counter()
        for path in paths:
            # Doubt worked out as by default; a doubtful answer does not fail the measurement.
            subprocess.run([run, "--model", model, "-f", str(path), "--doubtful", "mark"],
                           check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        single = total / (time.perf_counter() - started)

        started = time.perf_counter()
        with cluster.connected(None, fail):
            from seqadd_ray.batch import answer_files, worker_count

            startup = time.perf_counter() - started
            started = time.perf_counter()
            answer_files(
                expand_inputs([str(path) for path in paths]), str(Path(folder) / "out"),
                model_bytes=model_bytes_of(model), output_format=OutputFormat.text,
                doubtful=Doubtful.mark, batch_size=512, workers=worker_count(None),
                chunk_bytes=CHUNK_BYTES,
                on_invalid=print,
            )  # fmt: skip
            on_ray = total / (time.perf_counter() - started)
    typer.echo(f"{files} files x {lines:,} queries, model {model}")
    typer.echo(f"seqadd-run (a process per file):  {single:>10,.0f} queries/s")
    typer.echo(f"seqadd-batch on local Ray:        {on_ray:>10,.0f} queries/s")
    typer.echo(f"ratio Ray / seqadd-run:           {on_ray / single:>10.2f}")
    typer.echo(f"Ray start-up (not counted above): {startup:>10.1f} s")


if __name__ == "__main__":
    app()
