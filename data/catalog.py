"""The datasets crossframe knows by name: file names, mirrors, class names, checksums.

Checksums are SHA-256. ``sha256`` is the hash of the DECOMPRESSED IDX bytes: it identifies
the data whatever the compression (Debian recompresses the published ``.gz`` files, so their
``.gz`` hashes differ). Where only the hash of the published ``.gz`` is known
(``gz_sha256``), a file can be verified only in that exact ``.gz`` form.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The four files of an MNIST-format dataset, in a fixed order.
FILE_KEYS = ("train_images", "train_labels", "test_images", "test_labels")

#: The MNIST file names, shared by every MNIST-format dataset (custom folders included).
MNIST_FILENAMES: dict[str, str] = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset. ``filename`` is the published (``.gz``) name."""

    key: str
    filename: str
    sha256: str | None = None  # of the decompressed IDX bytes
    gz_sha256: str | None = None  # of the published .gz file itself

    @property
    def raw_filename(self) -> str:
        """The decompressed name (``.gz`` stripped)."""
        return self.filename[:-3] if self.filename.endswith(".gz") else self.filename

    @property
    def checkable(self) -> bool:
        return bool(self.sha256 or self.gz_sha256)


@dataclass(frozen=True)
class DatasetSpec:
    """A known dataset. ``mirrors`` are base URLs tried in order (file name appended)."""

    name: str
    files: dict[str, FileSpec]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    description: str = ""
    apt_package: str | None = None
    homepage: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def file_list(self) -> list[FileSpec]:
        return [self.files[k] for k in FILE_KEYS]


def mnist_files(
    sha256: dict[str, str] | None = None, gz_sha256: dict[str, str] | None = None
) -> dict[str, FileSpec]:
    """FileSpecs under the MNIST names with the given checksums (keys from FILE_KEYS)."""
    sha256, gz_sha256 = sha256 or {}, gz_sha256 or {}
    return {
        k: FileSpec(k, MNIST_FILENAMES[k], sha256.get(k), gz_sha256.get(k)) for k in FILE_KEYS
    }


FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files=mnist_files(
        sha256={
            "train_images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train_labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test_images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test_labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        }
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
    ),
    class_names=(
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ),
    description="Zalando article images, 28x28 grayscale, 10 classes (60k train, 10k test)",
    apt_package="dataset-fashion-mnist",
    homepage="https://github.com/zalandoresearch/fashion-mnist",
)

MNIST = DatasetSpec(
    name="mnist",
    files=mnist_files(
        sha256={
            "train_images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train_labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "test_images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test_labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        }
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    class_names=tuple(str(i) for i in range(10)),
    description="handwritten digits, 28x28 grayscale, 10 classes (60k train, 10k test)",
    homepage="http://yann.lecun.com/exdb/mnist/",
)

KMNIST = DatasetSpec(
    name="kmnist",
    files=mnist_files(
        gz_sha256={
            "train_images": "51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            "train_labels": "e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            "test_images": "edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            "test_labels": "20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        }
    ),
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    # Romanised hiragana お き す つ な は ま や れ を (ASCII, so every plot font can draw them).
    class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),
    description="Kuzushiji (cursive Japanese) characters, 28x28 grayscale, 10 classes",
    homepage="https://github.com/rois-codh/kmnist",
)

#: name -> spec. Looked up at call time, so tests may add a fake dataset with
#: ``monkeypatch.setitem(KNOWN_DATASETS, "fake", spec)``.
KNOWN_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (FASHION_MNIST, MNIST, KMNIST)
}
