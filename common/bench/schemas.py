"""The JSON Schemas (draft 2020-12) of ``compare.json`` and ``bench.json``.

A figure that a run could not produce (a backend that is unavailable, a GPU memory figure on
a CPU) is ``null``, never left out, so every key below is always there. Times are seconds,
memory is bytes, accuracies are fractions. The ``schema`` field names the version; a change
that removes or renames a key gets a new one.
"""

from __future__ import annotations

import json

from ..checkpoint import write_text_atomic

COMPARE_SCHEMA_ID = "crossframe-compare/1"
BENCH_SCHEMA_ID = "crossframe-bench/1"

_NUMBER = {"type": "number"}
_NUMBER_OR_NULL = {"type": ["number", "null"]}
_INT_OR_NULL = {"type": ["integer", "null"]}
_STRING_OR_NULL = {"type": ["string", "null"]}
_STATUS = {"enum": ["ok", "unavailable", "failed"]}
_VERSIONS = {"type": "object", "additionalProperties": {"type": "string"}}
_MACHINE = {
    "type": "object",
    "required": ["python", "platform", "processor", "cpu_count", "numpy", "crossframe", "cpu", "memory_gib",
                 "load_average", "environment"],
}


def _object(properties: dict, *, closed: bool = True) -> dict:
    """An object with these keys, all required; ``closed``: and no others."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": not closed}


# One record of the Trainer's history (metrics.jsonl) plus the parameter difference; open, so
# that a key the Trainer adds later does not break the schema.
_EPOCH = _object(closed=False, properties={
    "epoch": {"type": "integer", "minimum": 1},
    "train_loss": _NUMBER, "train_acc": _NUMBER, "val_loss": _NUMBER, "val_acc": _NUMBER,
    "seconds": _NUMBER, "val_seconds": _NUMBER, "samples_per_second": _NUMBER,
    "max_param_diff": _NUMBER_OR_NULL,        # largest |param - reference's param| after this epoch
    "max_param_diff_param": _STRING_OR_NULL,  # the parameter where it is
})

_COMPARE_BACKEND = _object({
    "status": _STATUS,
    "error": _STRING_OR_NULL,
    "device": _STRING_OR_NULL,
    "devices": _INT_OR_NULL,  # --devices: how many devices the run was given (null: it did not start)
    "world_size": _INT_OR_NULL,  # how many replicas the engine really ran
    "engine": _STRING_OR_NULL,  # what ran them (DistributedDataParallel, a jax.sharding.Mesh ...); null on one
    "versions": _VERSIONS,
    "run_dir": {"type": "string"},  # relative to the folder of compare.json
    "epochs": {"type": "array", "items": _EPOCH},  # the epochs that finished (all of them when status is ok)
    "final": {"oneOf": [{"type": "null"}, _object({k: _NUMBER for k in ("train_loss", "train_acc", "val_loss",
                                                                        "val_acc")})]},
    "seconds_per_epoch": _NUMBER_OR_NULL,  # median of the epochs after the first, or the only epoch
    "first_epoch_seconds": _NUMBER_OR_NULL,
    "samples_per_second": _NUMBER_OR_NULL,
    "initial_param_diff": _NUMBER_OR_NULL,  # 0 when the start is shared, as it must be
    "peak_rss_bytes": _INT_OR_NULL,
    "peak_device_bytes": _INT_OR_NULL,  # GPU only
    "import_seconds": _NUMBER_OR_NULL,
    "setup_seconds": _NUMBER_OR_NULL,
    "wall_seconds": _NUMBER_OR_NULL,
})

COMPARE_SCHEMA = _object({
    "schema": {"const": COMPARE_SCHEMA_ID},
    "command": {"type": "string"},
    "started": {"type": "string"},
    "finished": {"type": "string"},
    "config": _object({
        "model": {"type": "string"}, "device": {"type": "string"}, "seed": {"type": "integer"},
        "dataset": {"type": "string"}, "data_dir": _STRING_OR_NULL, "batch_size": {"type": "integer"},
        "limit_train": _INT_OR_NULL, "limit_val": _INT_OR_NULL, "epochs": {"type": "integer"},
        "lr": _NUMBER, "momentum": _NUMBER, "weight_decay": _NUMBER, "optimizer": {"type": "string"},
        "num_classes": _INT_OR_NULL,  # --num-classes, for a folder whose classes are not all in training
        "dropout_rng": {"enum": ["shared", "native"]},
        "devices": {"type": "integer", "minimum": 1},  # --devices: every backend data-parallel on this many
        "train_examples": {"type": "integer"}, "val_examples": {"type": "integer"},
        "backends": {"type": "array", "items": {"type": "string"}},
    }),
    "machine": _MACHINE,
    "reference_backend": _STRING_OR_NULL,  # the first backend that finished: the parameter differences are from it
    "backends": {"type": "object", "additionalProperties": _COMPARE_BACKEND},  # in the order asked for
})

_BENCH_RUN = _object({
    "name": {"type": "string"},  # a backend (torch, jax, tf, numpy), "classic", or "keras-<framework>"
    "kind": {"enum": ["crossframe", "classic", "keras"]},
    "framework": {"type": "string"},
    "model": {"type": "string"},
    "batch_size": {"type": "integer"},
    "status": _STATUS,
    "error": _STRING_OR_NULL,
    "device": _STRING_OR_NULL,
    "devices": {"type": "integer", "minimum": 1},  # how many devices the run was given (references: 1)
    "world_size": _INT_OR_NULL,  # how many replicas the engine really ran (as the worker saw it)
    "engine": _STRING_OR_NULL,  # what ran them on N > 1 (DistributedDataParallel ...); null on one device
    "versions": _VERSIONS,
    "detail": {"type": "object"},  # kind-specific: the classic pipeline's transforms, Keras's jit_compile
    "epoch_seconds": {"type": "array", "items": {"type": "array", "items": _NUMBER}},  # per round, per epoch
    "warmup_seconds": _NUMBER_OR_NULL,  # the first epoch (median over rounds)
    "steady_seconds": _NUMBER_OR_NULL,  # median of the epochs after the first, over all rounds
    "warmup_overhead_seconds": _NUMBER_OR_NULL,  # first minus steady: compilation and warm-up
    "samples_per_second": _NUMBER_OR_NULL,  # at the steady epoch
    "train_loss": _NUMBER_OR_NULL, "train_acc": _NUMBER_OR_NULL,  # of the last epoch: a sanity check
    "peak_rss_bytes": _INT_OR_NULL,
    "peak_device_bytes": _INT_OR_NULL,
    "import_seconds": _NUMBER_OR_NULL,
    "setup_seconds": _NUMBER_OR_NULL,
    "wall_seconds": _NUMBER_OR_NULL,
    "keras_reference": _STRING_OR_NULL,  # crossframe rows: the Keras run on the same framework
    "vs_classic": _NUMBER_OR_NULL,  # classic steady / this steady: > 1 is faster than the classic pipeline
    "vs_keras": _NUMBER_OR_NULL,  # Keras-on-the-same-framework steady / this steady
    "log": _STRING_OR_NULL,  # the worker's stderr
})

# --devices N > 1: one per model, batch size and crossframe backend; empty on one device
_SCALING = _object({
    "model": {"type": "string"}, "batch_size": {"type": "integer"}, "backend": {"type": "string"},
    "devices": {"type": "integer", "minimum": 2},
    "world_size": _INT_OR_NULL, "engine": _STRING_OR_NULL,  # of the run on N devices
    "samples_per_second_1": _NUMBER_OR_NULL,  # steady, on one device
    "samples_per_second_n": _NUMBER_OR_NULL,  # steady, on N devices
    "speedup": _NUMBER_OR_NULL,  # samples_per_second_n / samples_per_second_1
    "efficiency": _NUMBER_OR_NULL,  # samples_per_second_n / (devices * samples_per_second_1)
    "note": _STRING_OR_NULL,  # why a figure is missing: the refusal (numpy, BatchNorm ...) or the run's error
})

_TARGET = _object({
    "target": {"type": "string"},
    "met": {"type": ["boolean", "null"]},  # null: not measured in this run
    "detail": {"type": "string"},
})

BENCH_SCHEMA = _object({
    "schema": {"const": BENCH_SCHEMA_ID},
    "command": {"type": "string"},
    "started": {"type": "string"},
    "finished": {"type": "string"},
    "config": _object({
        "backends": {"type": "array", "items": {"type": "string"}},
        "models": {"type": "array", "items": {"type": "string"}},
        "batch_sizes": {"type": "array", "items": {"type": "integer"}},
        "references": {"type": "array", "items": {"type": "string"}},
        "epochs": {"type": "integer", "minimum": 2},
        "rounds": {"type": "integer", "minimum": 1},  # each run this many times, round-robin with the others
        "device": {"type": "string"},
        "dataset": {"type": "string"},
        "train_examples": {"type": "integer"},
        "seed": {"type": "integer"},
        "devices": {"type": "integer", "minimum": 1},  # --devices: the crossframe backends also on this many
    }),
    "machine": _MACHINE,
    "runs": {"type": "array", "items": _BENCH_RUN},
    "scaling": {"type": "array", "items": _SCALING},
    "targets": {"type": "array", "items": _TARGET},
})


def write_report(path, report: dict) -> None:
    """Write a report atomically, keys in the order built (``backends`` in the order asked for)."""
    write_text_atomic(path, json.dumps(report, indent=2) + "\n")
