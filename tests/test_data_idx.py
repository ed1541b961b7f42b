"""IDX reading and writing: every type code, raw and gzip, and every malformed case."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest
from crossframe.common.errors import DataError
from crossframe.data import read_idx, write_idx
from crossframe.data.idx import idx_bytes, sha256_decompressed, sha256_file
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]
CODES = {"uint8": 0x08, "int8": 0x09, "int16": 0x0B, "int32": 0x0C, "float32": 0x0D, "float64": 0x0E}


def sample(dtype: str, shape=(3, 4, 5)) -> np.ndarray:
    rng = np.random.default_rng(0)
    if dtype.startswith("float"):
        return rng.standard_normal(shape).astype(dtype) * 1e3
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_every_dtype(tmp_path, dtype, gz):
    a = sample(dtype)
    path = write_idx(tmp_path / ("a.idx.gz" if gz else "a.idx"), a)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    assert b.flags.writeable and b.flags.c_contiguous
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_header_is_big_endian_idx(dtype):
    a = sample(dtype, (2, 3))
    buf = idx_bytes(a)
    assert buf[:4] == bytes([0, 0, CODES[dtype], 2])
    assert buf[4:12] == (2).to_bytes(4, "big") + (3).to_bytes(4, "big")
    assert buf[12:] == a.astype(np.dtype(dtype).newbyteorder(">")).tobytes()


def test_gzip_detected_by_magic_not_name(tmp_path):
    a = sample("uint8")
    gz_named_raw = tmp_path / "raw-but-called.gz"
    gz_named_raw.write_bytes(idx_bytes(a))
    raw_named_gz = tmp_path / "gzip-but-called-ubyte"
    raw_named_gz.write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(gz_named_raw), a)
    np.testing.assert_array_equal(read_idx(raw_named_gz), a)


def test_decompressed_hash_ignores_compression(tmp_path):
    a = sample("uint8")
    raw = write_idx(tmp_path / "a", a)
    gz1 = tmp_path / "b.gz"
    gz1.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=1))
    gz9 = tmp_path / "c.gz"
    gz9.write_bytes(gzip.compress(raw.read_bytes(), compresslevel=9, mtime=12345))
    expected = hashlib.sha256(raw.read_bytes()).hexdigest()
    assert sha256_decompressed(raw) == sha256_decompressed(gz1) == sha256_decompressed(gz9) == expected
    assert sha256_file(gz1) != sha256_file(gz9)  # the .gz bytes differ


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(dtype=st.sampled_from(DTYPES), shape=hnp.array_shapes(min_dims=1, max_dims=4, max_side=5)))
def test_round_trip_property(tmp_path_factory, a):
    path = tmp_path_factory.mktemp("p") / "a.gz"
    np.testing.assert_array_equal(read_idx(write_idx(path, a)), a)


# ----------------------------------------------------------------- malformed files

def good_bytes() -> bytes:
    return idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


MALFORMED = {
    "bad-magic": (lambda b: b"\x01" + b[1:], "bad IDX magic"),
    "unknown-type": (lambda b: b[:2] + b"\x07" + b[3:], "unknown IDX type code 0x07"),
    "zero-dims": (lambda b: b[:3] + b"\x00", "0 dimensions"),
    "short-header": (lambda b: b[:9], "truncated IDX header"),
    "too-short": (lambda b: b[:3], "too short"),
    "truncated-data": (lambda b: b[:-1], "truncated"),
    "trailing-garbage": (lambda b: b + b"xyz", "3 unexpected trailing bytes"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_raises_dataerror_naming_file(tmp_path, case, gz):
    damage, expected = MALFORMED[case]
    buf = damage(good_bytes())
    path = tmp_path / f"bad-{case}-idx3-ubyte{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(buf) if gz else buf)
    with pytest.raises(DataError) as e:
        read_idx(path)
    assert str(path) in str(e.value)
    assert expected in str(e.value)


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(idx_bytes(sample("uint8", (50, 28, 28))))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="gzip stream is truncated or corrupt") as e:
        read_idx(path)
    assert str(path) in str(e.value)
    with pytest.raises(DataError, match="gzip") as e:  # the hash helper says the same
        sha256_decompressed(path)
    assert str(path) in str(e.value)


def test_corrupt_gzip_stream(tmp_path):
    data = bytearray(gzip.compress(idx_bytes(sample("uint8", (50, 28, 28)))))
    data[-6] ^= 0xFF  # inside the CRC32 / size trailer
    path = tmp_path / "crc.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="gzip") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_idx(tmp_path / "nope.gz")


@pytest.mark.parametrize("bad", [np.zeros((2, 2), np.int64), np.zeros((), np.uint8), np.zeros(3, bool)])
def test_write_rejects_what_idx_cannot_hold(tmp_path, bad):
    with pytest.raises(DataError):
        write_idx(tmp_path / "x", bad)
    assert not (tmp_path / "x").exists()
