"""`seqadd-batch`: answer many files on a Ray cluster, one answer file per input file.

Ray is imported only after the check that the `ray` extra is installed, so without it the
command says which extra it needs in one line. Inputs, output and model are checked before
Ray starts.
"""

from __future__ import annotations

import importlib.util
import time

import typer
from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Doubtful
from seqadd_runtime.cli_support import fail_with, say, to_stderr
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice
from seqadd_runtime.errors import SeqaddError
from seqadd_runtime.models import DEFAULT_MODEL
from seqadd_runtime.output import OutputFormat

from seqadd_ray import failures
from seqadd_ray.chunks import CHUNK_BYTES
from seqadd_ray.failures import first_line
from seqadd_ray.storage import check_new_output, expand_inputs, is_uri

PROG = "seqadd-batch"
EXIT_OK, EXIT_INVALID_LINES = 0, 1
DEFAULT_BATCH_SIZE = 512
DEFAULT_WAIT = 120
app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


@app.command(
    help=(
        "Answer files of A+B queries on Ray Data: INPUTS are files, folders or globs, local or "
        "URIs (s3://, gs://, ...); each input file gets OUTPUT/<name>.answers.txt (or .tsv, "
        ".jsonl) with one line per input line, in order. A local OUTPUT folder appears only "
        "when every file is complete; a URI OUTPUT is complete when OUTPUT/_SUCCESS exists. "
        "Without --address a private Ray instance is started on this machine and stopped at "
        "the end. Exit status: 0 all lines answered, 1 some lines invalid, 2 usage, input, "
        "output, model or cluster errors, 130/143 interrupted."
    )
)
def batch(
    inputs: list[str] = typer.Argument(..., help="Files, folders or globs, local or URIs."),
    output: str = typer.Option(..., "--output-dir", "-o", help="Folder or URI prefix to create."),
    model: str = typer.Option(DEFAULT_MODEL, "--model", "-m", help="Shipped name, folder, .onnx."),
    int8: bool = typer.Option(False, "--int8", help="Use the model's int8 file."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text, tsv (query, answer, error) or jsonl."
    ),
    doubtful: Doubtful = typer.Option(
        DEFAULT_DOUBTFUL,
        "--doubtful",
        help="What an answer below the model's doubt threshold becomes, as in seqadd-run: "
        "reject (an empty answer and an error: exit 1), mark (a 'doubtful' field in jsonl, "
        "a column in tsv) or answer.",
    ),
    engine: EngineChoice = typer.Option(
        DEFAULT_ENGINE,
        "--engine",
        help="Inference engine of every worker, as in seqadd-run: onnxruntime; openvino "
        "(the 'openvino' extra on the driver and every worker); auto, each worker's fastest.",
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
        None,
        help="An existing cluster: 'auto', HEAD:6379 or ray://HEAD:10001. Default: a "
        "private one on this machine.",
    ),
    wait: float = typer.Option(
        DEFAULT_WAIT,
        min=1,
        help="Seconds to wait for a node that can host a worker, at the "
        "start and whenever none is left, before giving up (exit 2).",
    ),
) -> None:
    if importlib.util.find_spec("ray") is None:
        fail("needs the 'ray' extra, which is not installed: pip install 'seqadd[ray]'")
    local = [item for item in [*inputs, output] if not is_uri(item)]
    if address and address.startswith("ray://") and local:
        fail(
            f"cannot use {local[0]} with a ray:// address: the driver is not on a Ray node, so "
            "no node sees this machine's files; give URIs (s3://...) or run on a node"
        )
    try:
        check_new_output(output)
        files = expand_inputs(inputs)
        from seqadd_ray.model import model_bytes_of

        model_bytes = model_bytes_of(model, int8, engine)
    except SeqaddError as error:
        fail(str(error))

    from seqadd_ray import cluster

    started = time.monotonic()
    with cluster.connected(address, fail) as ray:
        from seqadd_ray.batch import WORKER_CPUS, answer_files, worker_count

        try:
            cluster.wait_for_capacity(WORKER_CPUS, wait)
            ready = time.monotonic()
            with cluster.watchdog(WORKER_CPUS, wait):
                summary = answer_files(
                    files, output, model_bytes=model_bytes, engine=engine,
                    output_format=output_format,
                    doubtful=doubtful, batch_size=batch_size, workers=worker_count(workers),
                    chunk_bytes=chunk_bytes, on_invalid=to_stderr,
                )  # fmt: skip
        except cluster.NoCapacity as stop:
            fail(str(stop))
        except SeqaddError as error:  # also Ray's wrapper of one raised on a worker
            fail(first_line(error))
        except ray.exceptions.RayError as error:
            line = first_line(error)
            fail(line if failures.ours(error) else f"the run failed on Ray: {line}")
    seconds = time.monotonic() - ready
    say(
        PROG,
        f"{summary.lines:,} lines of {summary.files} files answered in {seconds:.1f} s "
        f"({summary.lines / max(seconds, 1e-9):,.0f} lines/s; Ray start-up "
        f"{ready - started:.1f} s) into {output}",
    )
    if summary.invalid:
        say(PROG, f"{summary.invalid:,} of {summary.lines:,} lines were invalid")
    if summary.doubtful:
        outcome = {Doubtful.reject: "withheld", Doubtful.mark: "given and marked"}
        say(
            PROG,
            f"{summary.doubtful:,} of {summary.lines:,} answers were doubtful, "
            + outcome.get(doubtful, "given"),
        )
    if summary.invalid or (summary.doubtful and doubtful is Doubtful.reject):
        raise typer.Exit(EXIT_INVALID_LINES)
