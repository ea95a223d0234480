"""`seqadd-batch`: answer many files on a Ray cluster, one answer file per input file.

Ray is imported only after the check that the `ray` extra is installed, so without it the
command says which extra it needs in one line.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import typer
from seqadd_runtime.cli_support import fail_with, say, to_stderr
from seqadd_runtime.errors import SeqaddError
from seqadd_runtime.models import DEFAULT_MODEL, resolve_model
from seqadd_runtime.output import OutputFormat

from seqadd_ray.chunks import CHUNK_BYTES, expand_inputs, scan

PROG = "seqadd-batch"
EXIT_OK, EXIT_INVALID_LINES = 0, 1
DEFAULT_BATCH_SIZE = 512
app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


def start_ray(address: str | None) -> None:
    """Connect to ``address``, or start Ray on this machine. Quiet: Ray's own log lines would
    bury the command's one-line messages; its progress bars stay, on a terminal."""
    # Ray's C++ core logs to stderr at start-up, among others an error-level notice that every
    # Ray Data actor triggers (its arguments live in the object store); failures still come
    # back as Python exceptions, reported in one line below.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    import ray

    options = {"log_to_driver": False, "logging_level": logging.ERROR, "include_dashboard": False}
    try:
        ray.init(address=address, **options) if address else ray.init(**options)
    except Exception as error:  # Ray raises many types for an unreachable cluster
        fail(f"cannot start or reach Ray{f' at {address}' if address else ''}: {first_line(error)}")
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = sys.stderr is not None and sys.stderr.isatty()
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    logging.getLogger("ray").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="ray")


def first_line(error: BaseException) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


@app.command(
    help=(
        "Answer files of A+B queries on Ray Data: INPUTS are files, folders or globs; each "
        "input file gets OUTPUT_DIR/<name>.answers.txt (or .tsv, .jsonl) with one line per "
        "input line, in order. OUTPUT_DIR appears only when every file is complete. Without "
        "--address a local Ray instance is started on this machine's CPUs and stopped at the "
        "end. Exit status: 0 all lines answered, 1 some lines invalid, 2 usage, input, output "
        "or model errors, 130/143 interrupted."
    )
)
def batch(
    inputs: list[str] = typer.Argument(..., help="Files, folders or globs of query files."),
    output_dir: Path = typer.Option(..., "--output-dir", "-o", help="Folder to create."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped name, folder, .onnx."),
    int8: bool = typer.Option(False, "--int8", help="Use the model's int8 file."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text, tsv (query, answer, error) or jsonl."
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE, min=1, max=8192, help="Lines per model call inside a worker."
    ),
    workers: int | None = typer.Option(
        None, min=1, help="Ray actors answering chunks. Default: the cluster's CPUs."
    ),
    chunk_bytes: int = typer.Option(
        CHUNK_BYTES,
        min=1,
        help="Bytes of input per chunk, the unit of work a worker takes (and retries).",
    ),
    address: str | None = typer.Option(
        None, help="An existing cluster: 'auto' or ray://HOST:10001. Default: start one here."
    ),
) -> None:
    if importlib.util.find_spec("ray") is None:
        fail("needs the 'ray' extra, which is not installed: pip install 'seqadd[ray]'")
    if output_dir.exists():
        fail(f"cannot write {output_dir}: it exists; give a new folder")
    if not output_dir.parent.is_dir():
        fail(f"cannot write {output_dir}: folder {output_dir.parent} does not exist")
    try:
        resolve_model(model, int8)
        files = expand_inputs(inputs)
        chunks = [c for index, path in enumerate(files) for c in scan(path, index, chunk_bytes)]
    except SeqaddError as error:
        fail(str(error))
    started = time.monotonic()
    start_ray(address)
    import ray

    from seqadd_ray.batch import answer_files, worker_count

    ready = time.monotonic()
    try:
        summary = answer_files(
            files, chunks, output_dir, model=model, int8=int8, output_format=output_format,
            batch_size=batch_size, workers=worker_count(workers),
            on_invalid=to_stderr,
        )  # fmt: skip
    except SeqaddError as error:
        fail(str(error))
    except ray.exceptions.RayError as error:
        fail(f"the run failed on Ray: {first_line(error)}")
    finally:
        if not address:
            ray.shutdown()
    seconds = time.monotonic() - ready
    say(
        PROG,
        f"{summary.lines:,} lines of {summary.files} files answered in {seconds:.1f} s "
        f"({summary.lines / max(seconds, 1e-9):,.0f} lines/s; Ray start-up "
        f"{ready - started:.1f} s) into {output_dir}",
    )
    if summary.invalid:
        say(PROG, f"{summary.invalid:,} of {summary.lines:,} lines were invalid")
        raise typer.Exit(EXIT_INVALID_LINES)
