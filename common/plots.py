"""Training curves as a PNG: loss and accuracy per epoch, train and validation."""

from __future__ import annotations

from pathlib import Path

from .checkpoint import atomic_path


def plot_curves(runs: dict[str, list[dict]], path, *, title: str = "") -> None:
    """Draw one line per run and split (train solid, validation dashed) and save to ``path``.

    ``runs`` maps a label (a backend name, say) to its history: per-epoch dicts with
    ``epoch``, ``train_loss``, ``val_loss``, ``train_acc``, ``val_acc``.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, (label, history) in enumerate(runs.items()):
        color = f"C{i}"
        epochs = [h["epoch"] for h in history]
        for split, style in (("train", "-"), ("val", "--")):
            ax_loss.plot(epochs, [h[f"{split}_loss"] for h in history], style, color=color, marker="o",
                         label=f"{label} {split}")
            ax_acc.plot(epochs, [h[f"{split}_acc"] for h in history], style, color=color, marker="o",
                        label=f"{label} {split}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
