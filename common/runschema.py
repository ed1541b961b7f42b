"""What a run folder's files must hold: ``config.json``, ``checkpoint.npz`` and
``metrics.jsonl``, checked against one schema — types, ranges, and agreement with each
other — before a resume trusts them, and so before anything in the folder is rewritten.

A value that is wrong here is never a traceback and never used silently: the error names
the file, the key, what it holds and what it should hold. The checkpoint keeps a copy of
the settings that define the computation (:data:`SAME_RUN_KEYS`), so an edited
``config.json`` (another ``lr``, say) is found too, instead of being used for the rest of
the run and then claimed for all of it.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from .batchnorm import check_buffers
from .checks import check_float32
from .settings import SAME_RUN_KEYS, DataSettings, Hyperparameters  # noqa: F401 (SAME_RUN_KEYS: re-exported)
from .errors import UserError
from .models import build_spec

#: The largest seed: NumPy's generators take any, the frameworks 64 bits.
MAX_SEED = 2**63 - 1
#: Adam's step count must fit JAX's int32 counter.
MAX_STEP = 2**31 - 1

FIX = "put back what the run was started with, or start a new run in another folder"

# key -> (JSON type names, Python types); bool is refused where an integer is expected.
_INT, _NUMBER, _TEXT = ("an integer", (int,)), ("a number", (int, float)), ("a string", (str,))
CONFIG_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "backend": _TEXT,
    **{f.name: f.metadata["json"] for settings in (Hyperparameters, DataSettings) for f in fields(settings)
       if f.metadata.get("json")},  # every setting config.json records with a type (common/settings.py)
    "epochs": _INT, "data_seed": _INT, "train_examples": _INT, "val_examples": _INT,
    "normalization": ("an object with mean and std", (dict,)),
}
OPTIONAL_TYPES: dict[str, tuple[str, tuple[type, ...]]] = {
    "data_folder": ("a string or null", (str, type(None))), "deterministic": ("true or false", (bool,)),
    "resumed": ("a list", (list,)),
    "devices": _INT, "world_size": _INT, "engine": ("a string or null", (str, type(None))), "versions": ("an object", (dict,)), "started": _TEXT,
}
#: The keys of one epoch's record (metrics.jsonl, a checkpoint's history) and their ranges.
RECORD_RANGES = {
    "train_loss": (0.0, math.inf), "val_loss": (0.0, math.inf), "train_acc": (0.0, 1.0), "val_acc": (0.0, 1.0),
    "seconds": (0.0, math.inf), "val_seconds": (0.0, math.inf), "samples_per_second": (0.0, math.inf),
}


def _bad(path, key: str, value: Any, expected: str, fix: str = FIX) -> UserError:
    shown = json.dumps(value)
    shown = shown if len(shown) < 60 else shown[:57] + "..."
    return UserError(f"{path}: {key} is {shown}, expected {expected}; {fix}")


def _typed(path, key: str, value: Any, spec: tuple[str, tuple[type, ...]]) -> None:
    words, types = spec
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise _bad(path, key, value, words)


def check_config(config: Any, path) -> dict[str, Any]:
    """``config`` (the parsed config.json) if it is a crossframe run's; else UserError naming ``path``."""
    from ..data.classes import MAX_CLASSES
    from .registry import BACKENDS

    if not isinstance(config, dict):
        raise UserError(f"{path}: holds a JSON {type(config).__name__}, not the object crossframe writes; {FIX}")
    missing = [key for key in CONFIG_TYPES if key not in config]
    if missing:
        raise UserError(f"{path}: has no {', '.join(missing)}; {FIX}")
    for key, spec in CONFIG_TYPES.items():
        _typed(path, key, config[key], spec)
    for key, spec in OPTIONAL_TYPES.items():
        if key in config:
            _typed(path, key, config[key], spec)
    if config["backend"] not in BACKENDS:
        raise _bad(path, "backend", config["backend"], f"one of {', '.join(BACKENDS)}")
    shape = config["input_shape"]
    if len(shape) != 3 or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape):
        raise _bad(path, "input_shape", shape, "3 positive integers (channels, height, width)")
    ranges = {"num_classes": (2, MAX_CLASSES), "seed": (0, MAX_SEED), "data_seed": (0, MAX_SEED),
              "epochs": (1, math.inf), "batch_size": (1, math.inf), "train_examples": (1, math.inf),
              "val_examples": (1, math.inf)}
    for key, (low, high) in ranges.items():
        if not low <= config[key] <= high:
            raise _bad(path, key, config[key], f"an integer from {low}" + (f" to {high}" if high < math.inf else " up"))
    norm = config["normalization"]
    for key, low in (("mean", -math.inf), ("std", 0.0)):
        value = norm.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low < value < math.inf):
            raise _bad(path, f"normalization.{key}", value, "a finite number" + (" above 0" if low == 0.0 else ""))
    try:
        hyperparameters(config)
        build_spec(config["model"], input_shape=shape, num_classes=config["num_classes"])
    except UserError as err:
        raise UserError(f"{path}: {err}; {FIX}") from None
    return config


def check_record(record: Any, epoch: int, where: str) -> dict[str, Any]:
    """One epoch's record, as the Trainer writes it; ``where`` names it in errors."""
    if not isinstance(record, dict):
        raise UserError(f"{where}: is a JSON {type(record).__name__}, not the record of epoch {epoch}")
    if record.get("epoch") != epoch or isinstance(record.get("epoch"), bool):
        raise UserError(f"{where}: has epoch {json.dumps(record.get('epoch'))}, expected {epoch} "
                        "(epochs count 1, 2, ...)")
    for key, (low, high) in RECORD_RANGES.items():
        value = record.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high \
                or not math.isfinite(value):
            raise UserError(f"{where}: {key} is {json.dumps(value)}, expected a finite number from {low:g}"
                            + (f" to {high:g}" if high < math.inf else " up"))
    return record


def check_history(history: Any, where: str) -> list[dict[str, Any]]:
    """A list of epoch records 1, 2, ... (a checkpoint's history, metrics.jsonl's lines)."""
    if not isinstance(history, list):
        raise UserError(f"{where}: the history is a JSON {type(history).__name__}, not a list of epoch records")
    return [check_record(record, i + 1, f"{where}, record {i + 1}") for i, record in enumerate(history)]


def hyperparameters(config: dict[str, Any]) -> Hyperparameters:
    """The Hyperparameters a config.json records (checked as Hyperparameters checks them)."""
    return Hyperparameters(**{f.name: tuple(config[f.name]) if f.name == "input_shape" else config[f.name]
                              for f in fields(Hyperparameters) if f.name in config})


def optimizer_entries(config: dict[str, Any], param_shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The optimizer state a run of ``config`` saves: name -> shape (its spec's slots and counters,
    common/optim.py)."""
    spec = hyperparameters(config).optimizer_spec()
    return {**{f"{slot}.{name}": shape for slot in spec.slots for name, shape in param_shapes.items()},
            **{counter: () for counter in spec.counters}}


def check_checkpoint(arrays: dict[str, np.ndarray], config: dict[str, Any], path: Path, config_path: Path):
    """The Checkpoint in ``arrays`` (read from ``path``) if it is whole and is the run of ``config``."""
    from .runfolder import Checkpoint

    fix = "the checkpoint is damaged: restore it, or start the run again in another folder"
    spec = build_spec(config["model"], input_shape=config["input_shape"], num_classes=config["num_classes"])
    shapes = {name: tuple(shape) for name, shape in spec.param_shapes().items()}
    buffers = spec.buffer_shapes()  # saved beside the parameters, as in the exchange format
    expected = {"epoch": (), "history": (), **{f"params/{name}": shape for name, shape in {**shapes, **buffers}.items()},
                **{f"optimizer/{name}": shape for name, shape in optimizer_entries(config, shapes).items()}}
    missing = [name for name in expected if name not in arrays]
    unexpected = [name for name in arrays if name not in expected and name != "settings"]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise UserError(f"{path}: {'; '.join(parts)} for a {config['model']} run with {config['optimizer']} "
                        f"(as {config_path} says); {fix}")
    for name, shape in expected.items():
        value = arrays[name]
        if value.shape != shape:
            raise UserError(f"{path}: {name} has shape {value.shape}, expected {shape}; {fix}")
    epoch = arrays["epoch"]
    if epoch.dtype.kind not in "iu" or not 0 <= int(epoch) <= MAX_STEP:
        raise UserError(f"{path}: epoch is {epoch.item()!r}, expected a whole number of completed epochs (0 up); {fix}")
    history = check_history(_json(arrays["history"], path, "history", fix), f"{path}")
    if len(history) != int(epoch):
        raise UserError(f"{path}: holds epoch {int(epoch)} but the history of {len(history)} epochs; {fix}")
    counters = {f"optimizer/{counter}" for counter in hyperparameters(config).optimizer_spec().counters}
    for name, value in arrays.items():
        if name.startswith(("params/", "optimizer/")) and name not in counters and name[len("params/"):] not in buffers:
            try:
                check_float32(value, what=name)
            except ValueError as err:
                raise UserError(f"{path}: {err}; {fix}") from None
    try:
        check_buffers({name: arrays[f"params/{name}"] for name in buffers}, spec)
    except UserError as err:
        raise UserError(f"{path}: {err}; {fix}") from None
    _check_optimizer_ranges(arrays, path, fix)
    if "settings" in arrays:
        _check_settings(_json(arrays["settings"], path, "settings", fix), config, path, config_path)
    return Checkpoint(
        epoch=int(epoch),
        params={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("params/")},
        optimizer={k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")},
        history=history,
    )


def _check_optimizer_ranges(arrays: dict[str, np.ndarray], path: Path, fix: str) -> None:
    if "optimizer/step" in arrays:
        step = arrays["optimizer/step"]
        if step.dtype.kind not in "iu" or not 0 <= int(step) <= MAX_STEP:
            raise UserError(f"{path}: optimizer/step is {step.item()!r}, expected Adam's step count (0 to {MAX_STEP}); "
                            f"{fix}")
    for name, value in arrays.items():
        if name.startswith("optimizer/exp_avg_sq.") and (value < 0).any():
            raise UserError(f"{path}: {name} holds negative values; Adam's second moments are squares; {fix}")


def _check_settings(settings: Any, config: dict[str, Any], path: Path, config_path: Path) -> None:
    """The settings the checkpoint was saved with must be config.json's."""
    if not isinstance(settings, dict):
        raise UserError(f"{path}: its settings are a JSON {type(settings).__name__}, not an object; restore it")
    edited = [f"{key} {json.dumps(config.get(key))} (the checkpoint's: {json.dumps(settings.get(key))})"
              for key in SAME_RUN_KEYS if plain(settings.get(key)) != plain(config.get(key))]
    if edited:
        raise UserError(f"{config_path} was changed after {path} was saved: {'; '.join(edited)}; put the saved values "
                        "back (a run keeps its settings), or start a new run in another folder")


def _json(value: np.ndarray, path: Path, name: str, fix: str) -> Any:
    from .filecheck import parse_json

    return parse_json(str(value), f"{path}: {name}", fix=fix)


def run_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The part of ``config`` that defines the computation, as the checkpoint keeps it."""
    return {key: config.get(key) for key in SAME_RUN_KEYS}


def plain(value):
    """JSON's view of a value (tuples become lists), so a saved and a live config compare."""
    return json.loads(json.dumps(value))
