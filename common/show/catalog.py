"""The concepts ``crossframe show`` knows: what each is, framework-neutrally.

Where each backend implements a concept is not here but in the backend's own
``concepts.py`` (see :mod:`.declarations`); this module says what the concept is, which
framework-neutral code in ``common/`` belongs to it (shown once, above the backends'
columns) and which ``crossframe parity`` checks test it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UserError
from ..parity import OPTIMIZER_CHECKS


@dataclass(frozen=True)
class Concept:
    name: str
    title: str
    summary: str
    # framework-neutral code shown before the backends' own, as "module:qualname" under crossframe/
    shared: tuple[str, ...] = ()
    # whether the code depends on a model (its layers): ``crossframe show model cnn``
    takes_model: bool = False
    # the kinds of ``crossframe parity`` check (common/parity.py's TOLERANCES) that test it
    parity: tuple[str, ...] = ()
    # whether the page puts each backend's figures from a compare run beside this code
    run_figures: bool = False
    aliases: tuple[str, ...] = ()


# The model ``model`` and ``backward`` show when none is named: it has convolutions, pooling
# and a flatten, so every layout conversion and most backward passes appear.
DEFAULT_MODEL = "cnn"

CONCEPTS: tuple[Concept, ...] = (
    Concept(
        "model", "Building a model from its spec",
        "Every backend walks the same framework-neutral spec (common/models.py) and builds its own layers "
        "from it; each layer with parameters carries its spec name, so the parameter names are the same "
        "everywhere.",
        takes_model=True, parity=("logits", "train logits", "dropout mask", "buffer", "batches tracked",
                                  "eval logits"), aliases=("network",),
    ),
    Concept(
        "loss", "The training loss",
        "The mean cross-entropy of integer labels under logits, as training computes it: softmax lives "
        "inside the loss, never in the network.",
        shared=("common.classifier:Classifier.loss",), parity=("loss",),
    ),
    Concept(
        "cross_entropy", "Cross-entropy, the framework's fused op and from scratch",
        "Each backend's ops.py has the framework's own fused op (impl=\"native\") and the textbook version "
        "written out with max-subtraction and log-sum-exp (impl=\"scratch\"); the tests hold both to the "
        "float64 reference below.",
        shared=("common.reference:log_softmax", "common.reference:cross_entropy"),
        aliases=("cross-entropy", "ops"),
    ),
    Concept(
        "training_step", "One training step",
        "Forward pass, loss, gradients, one optimizer update; the metrics stay on the device. The shared "
        "method checks and converts the inputs, then calls the backend's _train_step.",
        shared=("common.classifier:Classifier.training_step",),
        parity=("gradient", "gradient before BatchNorm", "train", "train with BatchNorm", "train loss",
                "train loss with BatchNorm"),
        run_figures=True, aliases=("step", "train_step"),
    ),
    Concept(
        "validation_step", "One validation step",
        "Loss and accuracy on a batch, without an update.",
        shared=("common.classifier:Classifier.validation_step",), aliases=("eval_step",),
    ),
    Concept(
        "configure_optimizers", "The optimizer",
        "PyTorch's SGD (momentum, L2 weight decay), Adam and AdamW, specified once (common/optim.py: the update "
        "rule the NumPy backend runs), mapped to each framework's own optimizer library, or written out "
        "where the library would compute something else.",
        shared=("common.classifier:Classifier.configure_optimizers", "common.optim:SGD.update",
                "common.optim:Adam.update", "common.optim:AdamW.update", "common.optim:adam_step"),
        parity=tuple(OPTIMIZER_CHECKS),
        aliases=("optimizer", "optimizers"),
    ),
    Concept(
        "accuracy", "Accuracy",
        "The fraction of rows whose largest logit is the label; ties go to the lowest index in every backend.",
        shared=("common.classifier:Classifier.accuracy",), parity=("accuracy ties",),
    ),
    Concept(
        "compiled_epoch", "A whole epoch as one compiled program",
        "Where a framework compiles, the epoch's steps run as one program (a loop inside the compiled "
        "code) instead of one Python call per batch; elsewhere the shared loop below is the epoch.",
        shared=("common.classifier:Classifier.train_epoch", "common.classifier:Classifier._run",
                "common.classifier:Classifier._stacked_totals", "common.classifier:EpochTotals.stacked"),
        run_figures=True, aliases=("epoch", "train_epoch"),
    ),
    Concept(
        "layout", "Parameter layout at the boundary",
        "The exchange format is PyTorch's layout (dense weight (out, in), conv weight (out, in, kh, kw), "
        "flatten in C, H, W order); a backend that computes channels-last converts at the boundary, once, "
        "not every step.",
        shared=("common.layout:channels_last", "common.layout:canonical", "common.layout:flattened_inputs"),
        aliases=("params", "parameters"),
    ),
    Concept(
        "backward", "The backward pass",
        "The gradient of the loss with respect to every parameter: written by hand, layer by layer, in "
        "the NumPy reference; derived by automatic differentiation everywhere else.",
        takes_model=True, parity=("gradient", "gradient before BatchNorm"), aliases=("gradients", "backprop"),
    ),
)

_BY_NAME = {c.name: c for c in CONCEPTS} | {alias: c for c in CONCEPTS for alias in c.aliases}


def find_concept(name: str) -> Concept:
    """The concept called ``name`` (or one of its aliases; ``-`` and ``_`` alike)."""
    concept = _BY_NAME.get(name) or _BY_NAME.get(name.replace("-", "_"))
    if concept is None:
        raise UserError(f"unknown concept {name!r}; choose one of: {', '.join(c.name for c in CONCEPTS)} "
                        "(crossframe show --list says what each is)")
    return concept
