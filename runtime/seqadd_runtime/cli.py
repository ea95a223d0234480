"""`seqadd-run`: answer addition queries from a file, standard input or the command line."""

from __future__ import annotations

import io
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO

import numpy as np
import typer

from seqadd_runtime.adder import DEFAULT_DOUBTFUL, Adder, Answers, Doubtful
from seqadd_runtime.cli_support import abandon_stdout, fail_with, say, to_stderr
from seqadd_runtime.engines import DEFAULT_ENGINE, EngineChoice, describe_choice
from seqadd_runtime.errors import InputError, OutputError, SeqaddError
from seqadd_runtime.models import DEFAULT_MODEL, shipped_models
from seqadd_runtime.output import OutputFormat, check_not_input, check_output_path, open_output
from seqadd_runtime.parse import LineBatch
from seqadd_runtime.pipeline import answer_stream

PROG = "seqadd-run"
#: Lines per model call, chosen by measurement (see the README's performance section).
DEFAULT_BATCH_SIZE = 512
#: The largest batch: larger ones are no faster, and each batch in flight holds its lines.
MAX_BATCH_SIZE = 8192
#: Exit statuses, as the README's table lists them.
EXIT_OK, EXIT_INVALID_LINES, EXIT_USAGE, EXIT_WRONG_ANSWERS = 0, 1, 2, 3
SHOWN_MISMATCHES = 5

app = typer.Typer(add_completion=False, rich_markup_mode=None)
fail = fail_with(PROG)


class Progress:
    """A one-line progress display on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr is not None and sys.stderr.isatty()
        self.started = time.monotonic()
        self.shown_at = self.started + 1.0  # small inputs finish before anything is shown
        self.shown = False

    def update(self, lines: int) -> None:
        now = time.monotonic()
        if self.enabled and now >= self.shown_at:
            rate = lines / max(now - self.started, 1e-9)
            sys.stderr.write(f"\r{lines:,} lines, {rate:,.0f} lines/s ")
            sys.stderr.flush()
            self.shown_at, self.shown = now + 0.25, True

    def close(self) -> None:
        """Take the line away: before another message too, which would be glued to it."""
        if self.shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
            self.shown = False


class Verifier:
    """Checks answers against exact integer arithmetic (the model's test oracle)."""

    def __init__(self, adder: Adder) -> None:
        self.spec = adder.spec
        self.checked = 0
        self.right = 0
        self.flagged_wrong = 0
        self.mismatches: list[str] = []

    def check(self, batch: LineBatch, answers) -> None:
        valid = answers.parsed.valid
        sums = answers.parsed.a[valid] + answers.parsed.b[valid]
        expected = sums.astype(f"S{self.spec.answer_length}")  # exact integer arithmetic
        given = answers.text[valid]
        right = given == expected
        self.checked += int(valid.sum())
        self.right += int(right.sum())
        self.flagged_wrong += int(answers.doubtful[valid][~right].sum())
        if len(self.mismatches) < SHOWN_MISMATCHES and not right.all():
            indexes = np.flatnonzero(valid)[~right]
            for index in indexes[: SHOWN_MISMATCHES - len(self.mismatches)]:
                a, b = answers.parsed.a[index], answers.parsed.b[index]
                self.mismatches.append(
                    f"  line {batch.first_line_number + index}: {a}+{b} -> "
                    f"{answers.text[index].decode()!r}, expected {a + b}"
                )

    def report(self) -> str:
        share = self.right / self.checked if self.checked else 1.0
        wrong = self.checked - self.right
        lines = [
            f"verify: {self.right:,} of {self.checked:,} answers are right ({share:.4%}); "
            f"{wrong:,} wrong: {self.flagged_wrong:,} flagged doubtful, "
            f"{wrong - self.flagged_wrong:,} silent"
        ]
        if self.mismatches:
            lines += ["first mismatches:", *self.mismatches]
        return "\n".join(lines)


def list_models() -> None:
    models = shipped_models()
    if not models:
        typer.echo("No shipped models are installed.")
        return
    typer.echo(f"{'model':<14}{'digits':>7}{'fp32 MB':>9}  int8")
    for model in models:
        try:
            info = Adder.load(model.name).info
        except SeqaddError as error:
            typer.echo(f"{model.name:<14} unreadable: {error}")
            continue
        int8 = (
            f"{model.int8.stat().st_size / 1e6:.2f} MB"
            if model.int8.is_file()
            else "none: no int8 variant kept the accuracy bar"
        )
        default = "  (default)" if model.name == DEFAULT_MODEL else ""
        typer.echo(
            f"{model.name:<14}{info.spec.digits:>7}{model.fp32.stat().st_size / 1e6:>9.2f}"
            f"  {int8}{default}"
        )
    typer.echo("How right each one is: seqadd-eval NAME (and seqadd-eval NAME --int8)")


def open_input(file: Path | None, queries: list[str]) -> BinaryIO:
    if queries:
        if file is not None:
            fail("give queries on the command line or --file, not both")
        for index, query in enumerate(queries, 1):
            if "\n" in query or "\r" in query:
                fail(f"query argument {index} contains a line break: give one query each")
        return io.BytesIO("\n".join(queries).encode("utf-8", errors="surrogateescape") + b"\n")
    if file is None and (sys.stdin is None or sys.stdin.isatty()):
        fail("nothing to answer: give queries (seqadd-run 535+61) or --file PATH (- for stdin)")
    if file is None or str(file) == "-":  # a pipe or a file as stdin is read, as sort does
        if sys.stdin is None:
            fail("cannot read standard input: it is closed")
        return sys.stdin.buffer
    try:
        return open(file, "rb")
    except OSError as error:
        fail(f"cannot read {file}: {error.strerror}")
    raise AssertionError("unreachable")


@app.command(
    help=(
        "Answer addition queries A+B, one per line, with a seqadd ONNX model. Every input line "
        "gets exactly one output line, in order; an invalid line gets an empty answer and, in "
        "tsv and jsonl, its error, plus a message with its line number on stderr. "
        "Exit status: 0 all lines answered, 1 some lines invalid, 2 usage, file or model "
        "errors, 3 --verify found wrong answers, 130/143/129 interrupted by SIGINT/SIGTERM/"
        "SIGHUP."
    )
)
def run(
    queries: list[str] = typer.Argument(
        None, help="Queries to answer, e.g. 535+61 (or use --file)."
    ),
    file: Path | None = typer.Option(
        None, "--file", "-f", help="File of queries, one per line; '-' reads standard input."
    ),
    model: str = typer.Option(
        DEFAULT_MODEL, "--model", "-m", help="Shipped model name, model folder, or .onnx file."
    ),
    int8: bool = typer.Option(False, "--int8", help="Use the model's int8 (quantized) file."),
    output_format: OutputFormat = typer.Option(
        OutputFormat.text,
        "--format",
        help="text: the answer; tsv: query<TAB>answer<TAB>error (control characters in the "
        "query escaped as \\xNN); jsonl: line, query, answer, confidence, error.",
    ),
    output_name: str | None = typer.Option(
        None, "--output", "-o", help="Write here (appears only when complete). Default: stdout."
    ),
    batch_size: int = typer.Option(
        DEFAULT_BATCH_SIZE,
        min=1,
        max=MAX_BATCH_SIZE,
        help="Lines read, parsed and written together. One batch per worker plus one are in "
        "flight, about 2 KB per line each; the model itself runs on at most 128 lines at "
        "a time, so memory stays bounded whatever the batch.",
    ),
    threads: int | None = typer.Option(
        None,
        min=1,
        help="Workers, each answering its own batches on one CPU thread of the engine. "
        "Default and most: the CPUs this process may use (affinity and cgroup quota).",
    ),
    engine: EngineChoice = typer.Option(
        DEFAULT_ENGINE,
        "--engine",
        help="Inference engine: onnxruntime; openvino (pip install 'seqadd[openvino]'; bf16 "
        "where the CPU has it and the file is calibrated for it, else fp32); auto, the fastest "
        "installed engine whose answers pass the file's self-check, timed at load and named "
        "on stderr.",
    ),
    doubtful: Doubtful = typer.Option(
        DEFAULT_DOUBTFUL,
        "--doubtful",
        help="What an answer becomes when its confidence is below the model's doubt "
        "threshold: reject (an empty answer and an error, as for an invalid line: exit 1), "
        "mark (given, with a 'doubtful' field in jsonl and column in tsv; nothing in text) or "
        "answer (given as usual). Doubtful answers are counted on stderr in every case.",
    ),
    verify: bool = typer.Option(
        False, help="Check every answer with exact arithmetic; report on stderr, exit 3 if wrong."
    ),
    list_models_flag: bool = typer.Option(
        False, "--list-models", help="List the shipped models and exit."
    ),
    context: typer.Context = typer.Option(None, hidden=True),
) -> None:
    if list_models_flag:
        # What the user typed: typer 0.26 reports the query arguments as given even when
        # there are none, so those count only when there are some.
        typed = ("COMMANDLINE", "ENVIRONMENT")
        others = [
            name for name in context.params
            if name != "list_models_flag"
            and getattr(context.get_parameter_source(name), "name", "") in typed
            and (name != "queries" or queries)
        ]  # fmt: skip
        if others:
            fail("--list-models takes no other arguments")
        list_models()
        return
    # A str, not a Path: Path("") would quietly become ".", the current folder.
    output = None if output_name in (None, "-") else Path(output_name)
    if output_name == "":
        fail("cannot write '': give a file name (or - for standard output)")
    source = open_input(file, queries or [])
    if output is not None:
        try:
            check_output_path(output)
            check_not_input(output, source)
        except OutputError as error:
            fail(str(error))
    try:
        adder = Adder.load(model, int8=int8, threads=threads, engine=engine)
    except SeqaddError as error:
        fail(str(error))
    if adder.engine_trials:
        say(PROG, describe_choice(adder.engine, adder.engine_trials))
    verifier = Verifier(adder) if verify else None
    progress = Progress()

    def report_invalid(line_number: int, reason: str) -> None:
        progress.close()  # shown again at the next update
        say(f"line {line_number}", reason)

    def after_batch(batch: LineBatch, answers: Answers, lines_so_far: int) -> None:
        if verifier:
            verifier.check(batch, answers)
        progress.update(lines_so_far)

    # The output's last flush (and a file's rename into place) happens as the block closes,
    # so its failures are caught around the whole block, not only around the answering.
    try:
        with ExitStack() as stack:
            stack.callback(source.close)
            stack.callback(progress.close)
            sink = stack.enter_context(open_output(output))
            summary = answer_stream(
                adder, source, sink, batch_size, output_format, report_invalid, after_batch,
                doubtful=doubtful,
                source_name=str(file) if file and str(file) != "-" else "standard input",
                sink_name=str(output) if output else "standard output",
            )  # fmt: skip
    except BrokenPipeError:
        # Whoever read our output has gone (`seqadd-run ... | head`): stop quietly, as Unix
        # tools do, without a second error when Python flushes stdout at exit.
        abandon_stdout()
        raise typer.Exit(128 + signal.SIGPIPE) from None
    except (InputError, OutputError) as error:
        fail(str(error) + (f"; {output} not written" if output else ""))
    if verifier:
        to_stderr(verifier.report())
    if summary.invalid:
        say(PROG, f"{summary.invalid:,} of {summary.lines:,} lines were invalid")
    if summary.doubtful:
        outcome = {
            Doubtful.reject: "withheld",
            Doubtful.mark: "given and marked",
            Doubtful.answer: "given",
        }[doubtful]
        say(
            PROG,
            f"{summary.doubtful:,} of {summary.lines:,} answers were doubtful (confidence "
            f"below {adder.doubt_threshold:g}), {outcome}",
        )
    if summary.invalid:
        raise typer.Exit(EXIT_INVALID_LINES)
    # A wrong answer --verify found says more than its being withheld as doubtful.
    if verifier and verifier.right < verifier.checked:
        raise typer.Exit(EXIT_WRONG_ANSWERS)
    if summary.doubtful and doubtful is Doubtful.reject:
        raise typer.Exit(EXIT_INVALID_LINES)
