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
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, (label, history) in enumerate(runs.items()):
        color = f"C{i}"
        epochs = [h["epoch"] for h in history]
        for split, style, marker in (("train", "-", "o"), ("val", "--", "s")):
            for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
                # earlier runs drawn wider, so runs that agree exactly stay visible under each other
                ax.plot(epochs, [h[f"{split}_{metric}"] for h in history], style, color=color, marker=marker,
                        linewidth=max(3.5 - 1.0 * i, 1.0), markersize=max(9 - 2 * i, 4), label=f"{label} {split}")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlim(left=0.5, right=max([h["epoch"] for run in runs.values() for h in run], default=1) + 0.5)
    if title:
        fig.suptitle(title)
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
