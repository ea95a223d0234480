"""The reports written beside a trained model: history, curves, metrics and model card."""

from __future__ import annotations

import json
from pathlib import Path

from seqadd_train.config import TrainConfig


def write_json(path: Path, data: object) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_reports(
    model_dir: Path, config: TrainConfig, history: list[dict], metrics: dict, training: dict
) -> None:
    write_json(model_dir / "history.json", history)
    document = {
        "model": config.name,
        "digits": config.digits,
        "reverse": config.reverse,
        "sampler": config.sampler.value,
        "command": config.command(),
        "config": config.to_json(),
        "training": training,
    } | metrics
    write_json(model_dir / "metrics.json", document)
    plot_curves(history, model_dir / "training_curves.png", config.name)
    (model_dir / "MODEL_CARD.md").write_text(model_card(document, history))


def plot_curves(history: list[dict], path: Path, title: str) -> None:
    """Loss and accuracy per epoch, training and validation, side by side."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on a training machine
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("loss", "training"), ("val_loss", "validation")):
        loss_axis.plot(epochs, [row[key] for row in history], marker=".", label=label)
    loss_axis.set(title="Cross-entropy loss", xlabel="epoch", yscale="log")
    for key, label in (
        ("accuracy", "training, per character"),
        ("val_accuracy", "validation, per character"),
        ("exact_match", "training, exact match"),
        ("val_exact_match", "validation, exact match"),
    ):
        accuracy_axis.plot(epochs, [row[key] for row in history], marker=".", label=label)
    accuracy_axis.set(title="Accuracy", xlabel="epoch", ylim=(0, 1.005))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _percent(value: float) -> str:
    text = f"{value:.2%}"
    if value < 1 and text == "100.00%":  # never round a miss up to a perfect score
        text = f"{value:.3%}"
    return text


def _lengths_table(breakdown: dict[str, dict]) -> list[str]:
    lines = [
        "| operand lengths | queries | exact match | per character |",
        "|---|---:|---:|---:|",
    ]
    for key, row in breakdown.items():
        lines.append(
            f"| {key} | {row['queries']:,} | {_percent(row['exact_match'])} "
            f"| {_percent(row['char_accuracy'])} |"
        )
    return lines


def model_card(metrics: dict, history: list[dict]) -> str:
    """MODEL_CARD.md, generated from the run's settings, history and metrics."""
    config = metrics["config"]
    training = metrics["training"]
    held_out = metrics["held_out"]
    user = metrics["user_distribution"]
    digits = config["digits"]
    if config["sampler"] == "user":
        sampling = (
            "independent draws as users send them (both orders of a pair, repeats allowed), "
            "so every short sum is trained on in both orders"
        )
    else:
        sampling = (
            "the Keras example's recipe: each unordered pair once, in the order first drawn "
            "(one order of every short pair is never trained on)"
        )
    if training["stopped_early"]:
        stopping = f"stopped early after {training['epochs_run']} of {config['epochs']} epochs"
    else:
        stopping = f"ran all {config['epochs']} epochs"
    if training["best_epoch"]:
        stopping += f"; the weights kept are those of epoch {training['best_epoch']}"
        stopping += " (best validation exact match)"
    schedule = "cosine decay to 1% over the run" if config["schedule"] == "cosine" else "constant"
    lines = [
        f"# Model card: {metrics['model']}",
        "",
        f"An LSTM encoder-decoder that adds two non-negative integers of up to {digits} digits "
        'written as text: "535+61" -> "596". It follows the Keras example "Sequence to sequence '
        'learning for performing number addition" and the published 5-digit model trained '
        "from it.",
        "",
        "## Intended use and limitations",
        "",
        f"- A reference model for the seqadd train -> export -> serve pipeline: queries `a+b` "
        f"with 0 <= a, b <= {10**digits - 1:,}.",
        "- It is a learned approximation of addition, not a calculator: it can be wrong, most "
        "often on the longest operands. Where exact sums matter, check the answers with "
        "integer arithmetic (`seqadd-run --verify` does) or do not use a model.",
        f"- Operands longer than {digits} digits, negative numbers and other operators are "
        "outside what it was trained on; the runtime refuses them.",
        "",
        "## Data",
        "",
        f"- Operands: a length drawn uniformly from 1..{digits}, then that many random digits, "
        "read as an integer (canonical form).",
        f"- Training problems: {training['training_problems']:,} drawn with the "
        f"`{config['sampler']}` sampler: {sampling}; "
        f"{training['distinct_training_pairs']:,} distinct unordered pairs.",
        f"- Validation: {config['validation_size']:,} and held-out test: {config['test_size']:,} "
        "unordered pairs, disjoint from training and from each other.",
        f"- Encoding: query padded with spaces to {2 * digits + 1} characters"
        + (" and reversed" if config["reverse"] else "")
        + f"; answer padded to {digits + 1}; vocabulary `{' +0123456789'}` one-hot.",
        "",
        "## Architecture and training",
        "",
        f"- LSTM({config['hidden_size']}) -> RepeatVector({digits + 1}) -> "
        f"{config['decoder_layers']} x LSTM({config['hidden_size']}, return_sequences) -> "
        f"Dense(12, softmax): {training['parameters']:,} parameters.",
        f"- Adam, learning rate {config['learning_rate']} ({schedule}), batch size "
        f"{config['batch_size']}, categorical cross-entropy, float32, seed {config['seed']}.",
        f"- Epochs: {stopping}.",
        "",
        "## Results",
        "",
        "Exact match counts a whole answer right; per character is Keras's accuracy (padding "
        "included), comparable with the published card's 98.9% validation accuracy.",
        "",
        "| set | queries | exact match | per character |",
        "|---|---:|---:|---:|",
        f"| held-out test (unseen pairs) | {held_out['queries']:,} "
        f"| {_percent(held_out['exact_match'])} | {_percent(held_out['char_accuracy'])} |",
        f"| user distribution (any pair, either order) | {user['queries']:,} "
        f"| {_percent(user['exact_match'])} | {_percent(user['char_accuracy'])} |",
        f"| worst operand-length combination ({user['worst_lengths']}) "
        f"| {user['by_lengths'][user['worst_lengths']]['queries']:,} "
        f"| {_percent(user['worst_exact_match'])} "
        f"| {_percent(user['by_lengths'][user['worst_lengths']]['char_accuracy'])} |",
        "",
        "### User distribution by operand lengths",
        "",
        f"Each combination separately: every problem where there are at most "
        f"{config['eval_per_length']:,} (1+1 is all 100 single-digit sums), otherwise "
        f"{config['eval_per_length']:,} random ones.",
        "",
        *_lengths_table(user["by_lengths"]),
        "",
        "### Held-out test set by operand lengths",
        "",
        *_lengths_table(held_out["by_lengths"]),
        "",
        "### Training history",
        "",
        "![training curves](training_curves.png)",
        "",
        "| epoch | loss | accuracy | exact match | val loss | val accuracy | val exact match |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in history:
        lines.append(
            f"| {row['epoch']} | {row['loss']:.4f} | {row['accuracy']:.4f} "
            f"| {row['exact_match']:.4f} | {row['val_loss']:.4f} | {row['val_accuracy']:.4f} "
            f"| {row['val_exact_match']:.4f} |"
        )
    lines += [
        "",
        "## Reproduce",
        "",
        "```",
        metrics["command"],
        "```",
        "",
    ]
    return "\n".join(lines)
