"""The settings of a run, listed once: :class:`Hyperparameters` (the computation) and
:class:`DataSettings` (which data, in which batches).

Everything that names these settings is derived from the two dataclasses with
``dataclasses.fields``: the command line's flags (common/commands/options.py reads each
field's ``metadata``), config.json (``asdict``), the keys a resumed run must share with the
saved one (:data:`SAME_RUN_KEYS`), the types config.json is checked against
(common/runschema.py), the jobs of ``crossframe compare`` and ``bench`` (plain dicts of both,
turned back into the dataclasses in the worker), and the arguments of ``classifier(...)``.

A field's metadata: ``flag`` (its command-line option, absent for the fields the data decide),
``help``, ``kind`` (how the command line parses it: ``int``, ``positive_int``,
``positive_float``, ``unit_interval``, ``non_negative_float``, ``text``, ``dataset``, ``path``,
``class_count``, or a tuple of choices), ``cli_default`` (the command line's default where it
differs from the dataclass's: ``None`` for the model's recipe), ``same_run`` (whether a resume
must keep it) and ``json`` (the words and types config.json must hold).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .devices import DEVICES
from .dropout import DROPOUT_RNGS
from .errors import UserError
from .models import MODELS, RECIPES
from .optim import OPTIMIZERS as OPTIMIZER_SPECS
from .optim import OptimizerSpec

OPTIMIZERS = tuple(OPTIMIZER_SPECS)

_INT, _NUMBER, _TEXT = ("an integer", (int,)), ("a number", (int, float)), ("a string", (str,))


def _setting(default: Any = None, *, flag: str | None = None, help: str = "", kind: Any = None,  # noqa: A002
             same_run: bool = True, json: tuple | None = None, **extra: Any):
    metadata = {"flag": flag, "help": help, "kind": kind, "same_run": same_run, "json": json, **extra}
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Hyperparameters:
    """Everything that defines a run's computation apart from the data; written to config.json."""

    model: str = field(metadata={"flag": "--model", "kind": MODELS, "cli_default": "mlp", "same_run": True,
                                 "json": _TEXT,
                                 "help": "architecture (default: mlp, the classic PyTorch tutorial network)"})
    num_classes: int = _setting(10, json=_INT)  # the data's
    input_shape: tuple[int, int, int] = _setting((1, 28, 28), json=("a list of 3 integers", (list,)))  # the data's
    lr: float = _setting(0.01, flag="--lr", kind="positive_float", cli_default=None, json=_NUMBER,
                         help="learning rate (default: the model's recipe, lr/momentum: "
                              + ", ".join(f"{m} {r.lr:g}/{r.momentum:g}" for m, r in RECIPES.items()) + ")")
    momentum: float = _setting(0.0, flag="--momentum", kind="unit_interval", cli_default=None, json=_NUMBER,
                               help="SGD momentum, PyTorch's convention b = mu*b + g (default: the model's recipe; "
                                    "only sgd has momentum)")
    weight_decay: float = _setting(0.0, flag="--weight-decay", kind="non_negative_float", json=_NUMBER,
                                   help="weight decay: L2 added to the gradient for sgd and adam, as torch.optim "
                                        "does; decoupled for adamw (default: 0)")
    optimizer: str = _setting("sgd", flag="--optimizer", kind=OPTIMIZERS, json=_TEXT, help="default: sgd")
    seed: int = _setting(0, flag="--seed", kind="int", json=_INT,
                         help="seed of the initial parameters and of the batch order (default: 0)")
    device: str = _setting("auto", flag="--device", kind=DEVICES, same_run=False, json=_TEXT,
                           help="auto takes a GPU when the framework sees one (default: auto)")
    # json None: optional in config.json (runs made before --devices lack it; common/runschema.py)
    devices: int = _setting(1, flag="--devices", kind="positive_int", same_run=False,
                            help="how many devices share each batch, data-parallel: torch DistributedDataParallel, "
                                 "a JAX mesh, TF MirroredStrategy; the global batch stays --batch-size, split in "
                                 "contiguous slices (default: 1; README: More than one device)")
    dropout_rng: str = _setting("shared", flag="--dropout-rng", kind=DROPOUT_RNGS, json=_TEXT,
                                help="where dropout's masks come from: shared, one source keyed by (seed, epoch, "
                                     "step, layer), the same masks in every backend; native, each framework's own "
                                     "random numbers, so backends drop different units (default: shared)")

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the types once, here
        set_(self, "num_classes", int(self.num_classes))
        set_(self, "input_shape", tuple(int(n) for n in self.input_shape))
        for name in ("lr", "momentum", "weight_decay"):
            set_(self, name, float(getattr(self, name)))
        set_(self, "seed", int(self.seed))
        set_(self, "devices", int(self.devices))
        if self.devices < 1:
            raise UserError(f"--devices must be at least 1; got {self.devices!r}")
        if self.dropout_rng not in DROPOUT_RNGS:
            raise UserError(f"unknown dropout rng {self.dropout_rng!r}; choose one of: {', '.join(DROPOUT_RNGS)}")
        if self.optimizer not in OPTIMIZER_SPECS:
            raise UserError(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.device not in DEVICES:
            raise UserError(f"unknown device {self.device!r}; choose one of: {', '.join(DEVICES)}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise UserError(f"the learning rate must be a positive number; got {self.lr!r}")
        if not (0.0 <= self.momentum < 1.0):
            raise UserError(f"momentum must be in [0, 1); got {self.momentum!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise UserError(f"weight decay must be zero or positive; got {self.weight_decay!r}")

    @classmethod
    def of(cls, model: str, **hparams: Any) -> Hyperparameters:
        """``Hyperparameters(model, **hparams)``; a name that is not a hyperparameter is a UserError."""
        unknown = sorted(set(hparams) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"unknown hyperparameter {', '.join(unknown)}; the hyperparameters are "
                            f"{', '.join(f.name for f in fields(cls) if f.name != 'model')}")
        return cls(model=model, **hparams)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def for_data(self, data) -> Hyperparameters:
        """These hyperparameters for ``data``'s images and classes."""
        return replace(self, num_classes=data.num_classes, input_shape=tuple(data.input_shape))

    def optimizer_spec(self) -> OptimizerSpec:
        """The optimizer these hyperparameters describe (common/optim.py): the spec takes the
        hyperparameters it has a field for (Adam has no momentum) and its defaults for the rest."""
        spec = OPTIMIZER_SPECS[self.optimizer]
        mine = {f.name for f in fields(self)}
        return spec(**{f.name: getattr(self, f.name) for f in fields(spec) if f.name in mine})


def with_recipe(model: str, lr: float | None, momentum: float | None) -> tuple[float, float]:
    """``lr`` and ``momentum``, the model's recipe (common/models.py) filling in what is None."""
    recipe = RECIPES[model]
    return (recipe.lr if lr is None else lr), (recipe.momentum if momentum is None else momentum)


@dataclass(frozen=True)
class DataSettings:
    """Which dataset, which part of it and in which batches (common/commands/options.py's data flags)."""

    # same_run False where the data's facts decide instead (DATA_FACTS: the examples it selects)
    dataset: str = _setting("fashion-mnist", flag="--dataset", kind="dataset", metavar="NAME|DIR", json=_TEXT,
                            same_run=False,
                            help="fashion-mnist (default), mnist, kmnist, or a folder with the four IDX files")
    data_dir: str | None = _setting(None, flag="--data-dir", kind="path", metavar="DIR", same_run=False,
                                    help="look here first for the dataset files (then $CROSSFRAME_DATA, the cache, "
                                         "/usr/share/datasets)")
    batch_size: int = _setting(64, flag="--batch-size", kind="positive_int", json=_INT, help="default: 64")
    limit_train: int | None = _setting(None, flag="--limit-train", kind="positive_int", metavar="N", same_run=False,
                                       help="train on the first N training images only")
    limit_val: int | None = _setting(None, flag="--limit-val", kind="positive_int", metavar="N", same_run=False,
                                     help="validate on the first N test images only")
    num_classes: int | None = _setting(None, flag="--num-classes", kind="class_count", metavar="K", same_run=False,
                                       help="a folder dataset's class count, where some classes have no training "
                                            "examples (default: its largest label + 1, every class present)")
    download: bool = _setting(True, flag="--no-download", kind="store_false", same_run=False,
                              help="never download; fail with a message saying where to put the files")

    def load(self, *, seed: int, progress: bool | None = False):
        """The DataModule these settings describe, its batch order drawn from ``seed``."""
        from ..data import load_data

        return load_data(self.dataset, batch_size=self.batch_size, data_dir=self.data_dir, seed=seed,
                         limit_train=self.limit_train, limit_val=self.limit_val, download=self.download,
                         progress=progress, num_classes=self.num_classes)


# What must match between a saved run and the run that continues it (config.json keys): the
# hyperparameters and data settings a resume keeps, and what the data gave (its size, order and
# normalisation).
DATA_FACTS = ("data_seed", "train_examples", "val_examples", "normalization")
SAME_RUN_KEYS: tuple[str, ...] = (
    *(f.name for f in fields(Hyperparameters) if f.metadata["same_run"]),
    *(f.name for f in fields(DataSettings) if f.metadata["same_run"]),
    *DATA_FACTS,
)
