"""Hostile and broken files: hypothesis-made corruptions of every file crossframe reads.

For each file type — IDX (raw and gzip), a parameter ``.npz``, a ``.safetensors``,
``checkpoint.npz``, ``config.json`` and ``metrics.jsonl`` — the examples cut the file at
every class of offset, flip bits, set header fields to their extremes and swap in the
wrong dtypes, then read it through crossframe's own readers. Every example must end in a
value or a :class:`UserError` (what the command line prints as one line, exit 2): any other
exception is a traceback a user would see, and fails.

They run in a child process whose address space is capped with ``resource.setrlimit``, so a
reader that believes a header and allocates what it promises fails there. The readers turn
a failed allocation into a UserError too ("more memory than this process can have"), so
that message counts as a failure here: every refusal must come from a size check made
before the allocation. The child also reads a 2 GiB gzip bomb and a 2 GiB sparse raw file
and reports its peak RSS (VmHWM), which must stay far below what the files would inflate to.

Examples are derandomized and no database is kept, so CI runs the same ones every time.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import CLI_TIMEOUT, custom_dataset

#: The child's address space: some 150 MiB are the interpreter, NumPy and crossframe.
ADDRESS_SPACE = 768 << 20
#: The child's peak RSS must stay below this, bombs included.
PEAK_RSS = 320 << 20
EXAMPLES = 60  # per file type and kind of damage
OUT_OF_MEMORY = "more memory than this process can have"
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))
EXTREMES = [0, 1, 2, 3, 255, 256, 2**16, 2**31 - 1, 2**31, 2**32 - 1]


def test_corrupt_files_are_user_errors_within_a_memory_cap(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_fuzz_files; "
            f"sys.exit(test_fuzz_files.main({str(tmp_path)!r}))")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=CLI_TIMEOUT)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert "peak RSS" in result.stdout


def test_a_gzip_bomb_through_the_command_line(tmp_path):
    """The issue's bomb: 2 MiB of gzip that inflates to 2 GiB behind an honest header for 256
    images. ``crossframe train`` refuses it in one line, exit 2, its peak RSS far below the
    2 GiB, under an address-space cap that the old reader (4.2 GB) would break."""
    from crossframe.data.idx import idx_bytes

    folder = custom_dataset(tmp_path / "data")
    header = idx_bytes(np.zeros((256, 28, 28), np.uint8))
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(header) + gzip.compress(bytes(1 << 20)) * 2048)
    peak_file = tmp_path / "peak"
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_fuzz_files as t; "
            f"sys.exit(t.capped_cli({str(peak_file)!r}, sys.argv[1:]))")
    argv = ["train", "--backend", "numpy", "--model", "softmax", "--dataset", folder, "--out", tmp_path / "run",
            "--no-progress"]
    result = subprocess.run([sys.executable, "-c", code, *map(str, argv)], capture_output=True, text=True,
                            timeout=CLI_TIMEOUT, env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert "train-images-idx3-ubyte.gz: more than 16,777,216 unexpected trailing bytes after the 200704" in result.stderr
    peak = int(peak_file.read_text())
    assert peak < 256 << 20, f"peak RSS {peak / 2**20:.0f} MiB"


def peak_rss() -> int:
    """This process's peak RSS in bytes. VmHWM, not getrusage's ru_maxrss: Linux carries the
    latter over from the process that forked us (pytest, with every framework loaded)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def capped_cli(peak_file: str, argv: list[str]) -> int:
    """``crossframe ARGV`` (what ``python -m crossframe`` runs) under the address-space cap;
    the peak RSS goes to ``peak_file``."""
    from crossframe.common.cli import main

    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    try:
        return main(argv)
    finally:
        Path(peak_file).write_text(str(peak_rss()))


# --------------------------------------------------------------------------- the child


class Samples:
    """Good files of every type, written by crossframe itself, and one reader per type."""

    def __init__(self, root: Path) -> None:
        import crossframe
        from crossframe.common.checkpoint import save_arrays

        self.data = custom_dataset(root / "data", n_train=40, n_test=20, size=(4, 4), gz=True)
        self.raw = custom_dataset(root / "raw", n_train=40, n_test=20, size=(4, 4), gz=False)
        self.run = root / "run"
        model = crossframe.classifier("numpy", "softmax", input_shape=(1, 4, 4), lr=0.1, momentum=0.5)
        crossframe.Trainer(1, progress=False, out_dir=self.run).fit(model, crossframe.load_data(self.data))
        self.params = root / "params.npz"
        shutil.copy(self.run / "params.npz", self.params)
        self.safetensors = root / "params.safetensors"
        save_arrays(self.safetensors, model.get_params())
        self.spec = model.spec
        self.good = {path: path.read_bytes() for path in self.files()}

    def files(self) -> list[Path]:
        return [self.data / "train-images-idx3-ubyte.gz", self.raw / "train-labels-idx1-ubyte", self.params,
                self.safetensors, self.run / "checkpoint.npz", self.run / "config.json", self.run / "metrics.jsonl"]

    def read(self, path: Path, blob: bytes):
        """Put ``blob`` where ``path`` is, read it as crossframe does, put the good file back."""
        from crossframe.common.checkpoint import check_params, load_params
        from crossframe.common.runfolder import RunFolder
        from crossframe.data import load_data

        path.write_bytes(blob)
        try:
            if path.parent in (self.data, self.raw):
                return load_data(path.parent)
            if path in (self.params, self.safetensors):
                return check_params(load_params(path), self.spec)
            if path.name == "metrics.jsonl":
                return RunFolder(self.run).read_metrics()
            return RunFolder(self.run).read_run()
        finally:
            path.write_bytes(self.good[path])


    def use(self, value) -> None:
        """Do with a value that was read what crossframe does next: it must not fail there
        (a reader that let a bad value through shows up here as a traceback)."""
        import crossframe
        from crossframe.common.trainer import format_epoch
        from crossframe.data import DataModule

        if isinstance(value, DataModule):
            X, y = next(iter(value.train_batches(0)))
            assert np.isfinite(X).all() and 0 <= y.min() and y.max() < value.num_classes
        elif isinstance(value, tuple):  # read_run: (config, checkpoint)
            config, state = value
            model = crossframe.classifier("numpy", config["model"], num_classes=config["num_classes"],
                                          input_shape=tuple(config["input_shape"]), lr=config["lr"],
                                          momentum=config["momentum"], optimizer=config["optimizer"])
            model.restore_state(state.params, state.optimizer if state.epoch else None)
            [format_epoch(record, config["epochs"]) for record in state.history]
            json.dumps(config, allow_nan=False)
        elif isinstance(value, list):  # metrics.jsonl
            [format_epoch(record, len(value)) for record in value]


def expect_value_or_user_error(samples: Samples, path: Path, blob: bytes) -> None:
    from crossframe.common.errors import UserError

    try:
        value = samples.read(path, blob)
    except UserError as err:
        assert OUT_OF_MEMORY not in str(err), f"{path.name}: a header was believed: {err}"
        assert "\n" not in str(err), f"{path.name}: a message of several lines: {err}"
    else:
        samples.use(value)


# --------------------------------------------------------------------------- damage to any file


def truncations(good: bytes):
    """Cut at the start, inside the first bytes (magic, header), the middle, and near the end."""
    n = len(good)
    classes = sorted({0, 1, 2, 3, 4, 8, 12, 16, 64, n // 2, n - 8, n - 1} & set(range(n)))
    return st.one_of(st.sampled_from(classes), st.integers(0, n - 1)).map(lambda cut: good[:cut])


def bit_flips(good: bytes):
    """Flips anywhere, and often in the first and last 256 bytes, where the headers are (IDX,
    .npy and safetensors headers, zip local headers; the zip directory and the gzip trailer)."""
    n = len(good)
    where = st.one_of(st.integers(0, min(255, n - 1)), st.integers(max(0, n - 256), n - 1), st.integers(0, n - 1))
    return st.lists(st.tuples(where, st.integers(0, 7)), min_size=1, max_size=8).map(lambda flips: _flip(good, flips))


def _flip(good: bytes, flips) -> bytes:
    out = bytearray(good)
    for at, bit in flips:
        out[at] ^= 1 << bit
    return bytes(out)


def fuzz_truncations_and_bit_flips(samples: Samples) -> None:
    for path in samples.files():
        good = samples.good[path]

        @FUZZ
        @given(blob=st.one_of(truncations(good), bit_flips(good), st.binary(max_size=256)))
        def damaged(blob):
            expect_value_or_user_error(samples, path, blob)

        damaged()


# --------------------------------------------------------------------------- header extremes and wrong dtypes


def idx_headers():
    """IDX headers of any type code and up to 4 dimensions of extreme sizes, then a few bytes."""
    return st.tuples(st.integers(0, 255), st.lists(st.sampled_from(EXTREMES), max_size=4), st.binary(max_size=64),
                     st.booleans())


def fuzz_idx_headers(samples: Samples) -> None:
    path = samples.raw / "train-labels-idx1-ubyte"

    @FUZZ
    @given(header=idx_headers())
    def idx(header):
        code, dims, body, compress = header
        blob = bytes([0, 0, code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + body
        expect_value_or_user_error(samples, path, gzip.compress(blob) if compress else blob)

    idx()


#: .npy "descr" fields, as written in the header: dtypes of every kind, and some that are none.
DTYPES = ["'<f4'", "'<f8'", "'>f4'", "'<f2'", "'|b1'", "'<c8'", "'<c16'", "'|O'", "'<U5'", "'|S3'", "'|V8'", "'<i8'",
          "'|u1'", "'<M8[s]'", "[('a', '<f4')]", "('<f4', (2,))", "'<U1000000000000'", "'not a dtype'", "'<f4",
          "__import__('os')", "{", "1e999"]


def npy(descr: str, shape, fortran: bool, body: bytes, version: bytes = b"\x01\x00") -> bytes:
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %r, }" % (descr, fortran, tuple(shape))
    header = header.ljust(118) + "\n"
    size = struct.pack("<H" if version[0] == 1 else "<I", len(header))
    return b"\x93NUMPY" + version + size + header.encode("latin1") + body


def npz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for name, data in members.items():
            archive.writestr(name + ".npy", data)
    return buf.getvalue()


def fuzz_npz_headers_and_dtypes(samples: Samples) -> None:
    from crossframe.common.checkpoint import load_params

    names = list(load_params(samples.params))

    @FUZZ
    @given(name=st.sampled_from(names), descr=st.sampled_from(DTYPES),
           shape=st.lists(st.sampled_from(EXTREMES + [-1]), max_size=3), fortran=st.booleans(),
           body=st.binary(max_size=64), version=st.sampled_from([b"\x01\x00", b"\x02\x00", b"\x03\x00", b"\x09\x09"]))
    def npz_member(name, descr, shape, fortran, body, version):
        members = {n: npy("'<f4'", (), False, b"\0" * 4) for n in names}
        members[name] = npy(descr, shape, fortran, body, version)
        expect_value_or_user_error(samples, samples.params, npz(members))

    npz_member()

    @FUZZ
    @given(file_size=st.sampled_from([0, 1, 2**20, 2**32 - 1, 2**40]), stored=st.booleans())
    def zip_sizes(file_size, stored):
        """A zip directory that lies about a member's inflated size."""
        blob = bytearray(samples.good[samples.params])
        directory = blob.rfind(b"PK\x01\x02")
        struct.pack_into("<I", blob, directory + 24, min(file_size, 2**32 - 1))
        if not stored:
            struct.pack_into("<H", blob, directory + 10, zipfile.ZIP_DEFLATED)
        expect_value_or_user_error(samples, samples.params, bytes(blob))

    zip_sizes()


SAFETENSORS_DTYPES = ["F32", "F64", "F16", "BF16", "BOOL", "C64", "I64", "U8", "F8_E4M3", "X", ""]


def fuzz_safetensors_headers(samples: Samples) -> None:
    good = samples.good[samples.safetensors]
    n = struct.unpack("<Q", good[:8])[0]
    header, body = json.loads(good[8:8 + n]), good[8 + n:]
    names = [k for k in header if k != "__metadata__"]

    @FUZZ
    @given(name=st.sampled_from(names), dtype=st.sampled_from(SAFETENSORS_DTYPES),
           shape=st.lists(st.sampled_from(EXTREMES), max_size=3),
           offsets=st.lists(st.sampled_from(EXTREMES + [2**63, 2**64 - 1]), min_size=2, max_size=2),
           length=st.sampled_from([0, 1, 7, 2**31, 2**63, 2**64 - 1]), use_length=st.booleans())
    def entry(name, dtype, shape, offsets, length, use_length):
        edited = {**header, name: {"dtype": dtype, "shape": shape, "data_offsets": offsets}}
        text = json.dumps(edited).encode()
        blob = struct.pack("<Q", length if use_length else len(text)) + text + body
        expect_value_or_user_error(samples, samples.safetensors, blob)

    entry()


def json_values():
    leaves = st.one_of(st.none(), st.booleans(), st.sampled_from(EXTREMES + [-1, -(2**63), 10**30]),
                       st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=8))
    return st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=6)


def fuzz_config_values(samples: Samples) -> None:
    path = samples.run / "config.json"
    config = json.loads(samples.good[path])

    @FUZZ
    @given(key=st.sampled_from(sorted(config)), value=json_values(), drop=st.booleans())
    def config_value(key, value, drop):
        edited = {k: v for k, v in config.items() if k != key} if drop else {**config, key: value}
        expect_value_or_user_error(samples, path, json.dumps(edited).encode())

    config_value()


def fuzz_checkpoint_entries(samples: Samples) -> None:
    from crossframe.common.arrayfile import FLOATS, INTEGERS, read_arrays

    path = samples.run / "checkpoint.npz"
    arrays = read_arrays(path, kinds=FLOATS + INTEGERS, text=("history", "settings"))
    dtypes = ["float32", "float64", "float16", "int64", "int8", "uint64", "bool", "complex64", "<U4"]

    @FUZZ
    @given(name=st.sampled_from(sorted(arrays)), dtype=st.sampled_from(dtypes),
           shape=st.lists(st.integers(0, 3), max_size=2), fill=st.sampled_from([0, 1, -5, 2**40, 1e39, -1e39]),
           drop=st.booleans(), text=json_values())
    def entry(name, dtype, shape, fill, drop, text):
        edited = dict(arrays)
        if drop:
            del edited[name]
        elif name in ("history", "settings"):
            edited[name] = np.asarray(json.dumps(text))
        else:
            with np.errstate(all="ignore"):
                edited[name] = np.full(shape, fill).astype(dtype)
        buf = io.BytesIO()
        np.savez(buf, **edited)
        expect_value_or_user_error(samples, path, buf.getvalue())

    entry()


def fuzz_metrics_lines(samples: Samples) -> None:
    path = samples.run / "metrics.jsonl"
    lines = samples.good[path].decode().splitlines()

    @FUZZ
    @given(line=st.integers(0, len(lines) - 1), value=json_values(), key=st.sampled_from(sorted(json.loads(lines[0]))))
    def record(line, value, key):
        edited = list(lines)
        edited[line] = json.dumps({**json.loads(lines[line]), key: value})
        expect_value_or_user_error(samples, path, ("\n".join(edited) + "\n").encode())

    record()


# --------------------------------------------------------------------------- bombs


def bombs(samples: Samples, root: Path) -> None:
    """A 2 MiB gzip of 2 GiB and a 2 GiB sparse raw file, each behind an honest 40-image header
    (one that cannot be honest, too): refused, with nothing inflated beyond a few MiB."""
    from crossframe.common.errors import UserError
    from crossframe.data.idx import idx_bytes

    header = idx_bytes(np.zeros((40, 4, 4), np.uint8))
    member = gzip.compress(bytes(1 << 20), compresslevel=9)
    bomb = gzip.compress(header) + member * 2048  # gzip members follow each other: 2 GiB inflated
    for name, blob in (("honest header", bomb), ("lying header", gzip.compress(b"\0\0\x08\x03" + struct.pack(
            ">III", 2**20, 2**10, 2**10)) + member * 2048)):
        try:
            samples.read(samples.data / "train-images-idx3-ubyte.gz", blob)
            raise AssertionError(f"the gzip bomb ({name}) was read")
        except UserError as err:
            assert OUT_OF_MEMORY not in str(err), err
            print(f"gzip bomb, {name}: {err}")
    from crossframe.data import load_data

    path = samples.raw / "train-images-idx3-ubyte"
    good = path.read_bytes()
    with open(path, "wb") as f:
        f.write(header)
        f.truncate(2 << 30)  # sparse: 2 GiB on paper, nothing on disk
    try:
        load_data(samples.raw)
        raise AssertionError("the sparse file was read")
    except UserError as err:
        assert OUT_OF_MEMORY not in str(err), err
        print(f"sparse raw file: {err}")
    finally:
        path.write_bytes(good)


FUZZERS = (fuzz_truncations_and_bit_flips, fuzz_idx_headers, fuzz_npz_headers_and_dtypes, fuzz_safetensors_headers,
           fuzz_config_values, fuzz_checkpoint_entries, fuzz_metrics_lines)


def main(folder: str) -> int:
    """The child: cap the address space, build the samples, run every fuzzer and the bombs."""
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    root = Path(tempfile.mkdtemp(dir=folder))
    samples = Samples(root)
    failed = 0
    for fuzz in (*FUZZERS, lambda s: bombs(s, root)):
        try:
            fuzz(samples)
        except BaseException:  # noqa: BLE001 - report every fuzzer's failure, then fail
            failed += 1
            traceback.print_exc()
    peak = peak_rss()
    print(f"peak RSS {peak / 2**20:.0f} MiB (bound {PEAK_RSS / 2**20:.0f} MiB)")
    return 1 if failed or peak > PEAK_RSS else 0
