"""The reports written beside a trained model: history, curves, metrics and model card.

Every accuracy figure in them comes from :mod:`seqadd_runtime.evaluation`, the code behind
`seqadd-eval`, run on the Keras model at the end of training.
"""

from __future__ import annotations

import json
from pathlib import Path

from seqadd_runtime.evaluation import Evaluation, markdown_table

from seqadd_train.config import TrainConfig


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_reports(
    model_dir: Path,
    config: TrainConfig,
    history: list[dict],
    evaluation: Evaluation,
    training: dict,
) -> None:
    write_json(model_dir / "history.json", history)
    write_json(
        model_dir / "metrics.json",
        {
            "model": config.name,
            "command": config.command(),
            "config": config.to_json(),
            "training": training,
            "evaluation": evaluation.to_json(),
        },
    )
    plot_curves(history, model_dir / "training_curves.png", config.name)
    (model_dir / "MODEL_CARD.md").write_text(model_card(config, history, evaluation, training))


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    """Loss and exact-match error (1 - exact match) per epoch, both on log scales, where
    99.9% and 100% look different."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training machine
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, error_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        loss_axis.plot(epochs, [row[key] for row in history], marker=".", label=label)
    loss_axis.set(title="Cross-entropy loss", xlabel="epoch", yscale="log")
    floor = 1e-6  # an error of 0 cannot be drawn on a log scale: show it at the floor
    for key, label in (
        ("exact_match", "training"),
        ("val_exact_match", "validation"),
    ):
        errors = [max(1.0 - row[key], floor) for row in history]
        error_axis.plot(epochs, errors, marker=".", label=label)
    error_axis.set(
        title="Exact-match error, 1 - exact match (0 drawn at 1e-6)", xlabel="epoch", yscale="log"
    )
    for axis in (loss_axis, error_axis):
        axis.grid(alpha=0.3, which="both")
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _recipe(config: TrainConfig, training: dict) -> list[str]:
    if config.sampler == "user":
        sampling = "independent draws as users send them (both orders, repeats allowed)"
    else:
        sampling = "the Keras example's recipe: each unordered pair once, in the order drawn"
    lines = [
        f"- Training problems: {training['training_problems']:,}: {sampling}"
        + (
            f", plus {training['stress_problems']:,} from the stress families (a share of "
            f"{config.stress_share:g} of the training size, spread evenly over them, pairs of "
            "the validation and held-out splits left out)"
            if config.stress_share
            else ""
        )
        + ".",
        f"- Validation {config.validation_size:,} and held-out {config.test_size:,} unordered "
        "pairs, disjoint from everything trained on and from each other (the held-out pairs "
        "are in `held_out.npz`).",
        f"- Adam, learning rate {config.learning_rate} "
        f"({'cosine decay to 1%' if config.schedule == 'cosine' else 'constant'}), batch "
        f"{config.batch_size}, {training['epochs_run']} epochs, seed {config.seed}.",
    ]
    recipe = training.get("recipe", [config.command()])
    if len(recipe) > 1:
        lines.append(
            f"- Fine-tuned: started from the weights of `{config.init_from}`. Every run of the "
            "recipe used the same seed and split sizes, so the held-out pairs were never "
            "trained on in any of them. The runs, first to last:"
        )
        lines += [f"  {index}. `{command}`" for index, command in enumerate(recipe, 1)]
    return lines


def model_card(
    config: TrainConfig, history: list[dict], evaluation: Evaluation, training: dict
) -> str:
    """MODEL_CARD.md, generated from the run's settings, history and evaluation."""
    digits = config.digits
    worst = evaluation.worst(evaluation.by_lengths)
    lines = [
        f"# Model card: {config.name}",
        "",
        f"An LSTM encoder-decoder that adds two non-negative integers of up to {digits} digits "
        'written as text: "535+61" -> "596", after the Keras example "Sequence to sequence '
        'learning for performing number addition".',
        "",
        "## Intended use and limitations",
        "",
        f"- Queries `a+b` with 0 <= a, b <= {10**digits - 1:,}. Longer operands, negative "
        "numbers and other operators are refused by the runtime.",
        "- A learned approximation of addition, not a calculator: where an exact sum matters, "
        "check it (`seqadd-run --verify`) or use integer arithmetic.",
        "",
        "## Architecture",
        "",
        f"LSTM({config.hidden_size}) -> RepeatVector({digits + 1}) -> {config.decoder_layers} x "
        f"LSTM({config.hidden_size}) -> Dense(12, softmax): {training['parameters']:,} "
        f"parameters; the query is padded to {2 * digits + 1} characters"
        + (" and reversed" if config.reverse else "")
        + ".",
        "",
        "## Recipe",
        "",
        *_recipe(config, training),
        "",
        "## Results (Keras model, `seqadd_runtime.evaluation`, as `seqadd-eval --keras`)",
        "",
        markdown_table(evaluation),
        "",
        f"Users' queries by operand lengths: worst {worst.name}, {worst.exact_match:.4%} "
        f"({worst.wrong} wrong of {worst.queries:,}).",
        "",
        "![training curves](training_curves.png)",
        "",
        "## Reproduce",
        "",
        "Run the recipe's commands in order: the first trains from scratch, each later one "
        "starts from the model the one before wrote. The exported files are evaluated the "
        f"same way by `seqadd-eval {config.name}` (add `--int8` for the int8 file).",
        "",
        "```",
        *training.get("recipe", [config.command()]),
        "```",
        "",
    ]
    return "\n".join(lines)
