"""Data sets as cached uint8 tensors, served from memory (on the GPU when there is one).

Every data set is decoded once into a dict of tensors (``prepare_dataset``), saved as one artifact and loaded
with ``weights_only=True``. Batches are slices of a random permutation; augmentation (random crop with zero
padding, horizontal flip) runs on the device on uint8 batches. Models receive float pixels in [0, 1]; the
per-data-set normalisation lives in ``DatasetSpec`` and is applied inside the model (``models.ImageClassifier``),
so that methods working in pixel space (NatMU's hybrids, mnemonic codes, UNSIR's noise) never need to undo it.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import UserError
from .io import atomic_torch_save
from .datasets import (  # noqa: F401  (the metadata moved to the torch-free datasets.py; public here too)
    CIFAR10_CLASSES, CIFAR20_CLASSES, CIFAR100_CLASSES, DATASETS, DIGITS, SOURCES, DatasetSpec, get_spec,
)


# ----------------------------------------------------------------------------------------------------------------
# Decoding each source once into uint8 tensors
# ----------------------------------------------------------------------------------------------------------------


def prepare_dataset(
    name: str,
    source: str = "torchvision",
    *,
    root: str | Path = "data",
    path: str | Path | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
    seed: int = 0,
) -> dict:
    """Decode a data set into ``{train_x, train_y, test_x, test_y, classes[, train_fine_y, test_fine_y]}``.

    Images are uint8 ``[N, C, H, W]``, labels int64. ``train_size``/``test_size`` keep a class-balanced, seeded
    subset (reduced-scale runs); indices of forget sets then refer to the subset.
    """
    spec = get_spec(name)
    if source == "sklearn":
        if name != "digits":
            raise UserError(f"source 'sklearn' provides only 'digits', not {name!r}; use source: torchvision")
        data = _load_digits()
    elif source == "torchvision":
        data = _load_torchvision(name, Path(root), download)
    elif source == "imagefolder":
        if path is None:
            raise UserError(f"data set {name!r} has source 'imagefolder' but no 'path'; set datasets.<key>.path")
        data = _load_imagefolder(spec, Path(path), Path(root))
    else:
        raise UserError(f"unknown data source {source!r}; valid sources: {', '.join(SOURCES)}")
    for split, size in (("train", train_size), ("test", test_size)):
        if size is not None:
            keep = balanced_subset(data[f"{split}_y"], size, seed=seed)
            for key in [k for k in data if k.startswith(split + "_")]:
                data[key] = data[key][keep]
    data["classes"] = list(spec.classes)
    if spec.fine_classes is not None:
        data["fine_classes"] = list(spec.fine_classes)
    return data


def save_dataset(data: dict, path: str | Path) -> None:
    atomic_torch_save(data, path)


def load_dataset(path: str | Path) -> dict:
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise UserError(f"data artifact {path} cannot be read ({err}); delete it and rerun to rebuild it") from None


def balanced_subset(labels: torch.Tensor, size: int, *, seed: int) -> torch.Tensor:
    """Sorted indices of a seeded subset with (as nearly as possible) equal counts per class."""
    if size > len(labels):
        raise UserError(f"subset of {size} requested from a split of {len(labels)} samples; lower train_size/test_size")
    gen = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    per_class = [torch.nonzero(labels == c).flatten() for c in classes]
    per_class = [idx[torch.randperm(len(idx), generator=gen)] for idx in per_class]
    # round-robin over classes so that the first `size` picks are balanced
    order = torch.cat([torch.stack([idx[i] for idx in per_class if i < len(idx)]) for i in range(max(map(len, per_class)))])
    return order[:size].sort().values


def _load_digits() -> dict:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)[:, None]  # [1797, 1, 8, 8]
    x_tr, x_te, y_tr, y_te = train_test_split(images, digits.target, test_size=497, stratify=digits.target, random_state=0)
    return _as_tensors(x_tr, y_tr, x_te, y_te)


def _as_tensors(x_tr, y_tr, x_te, y_te, **extra) -> dict:
    def images(x):  # a copy with plain NCHW strides (see to_float)
        return torch.as_tensor(np.asarray(x), dtype=torch.uint8).clone(memory_format=torch.contiguous_format)

    out = {
        "train_x": images(x_tr),
        "train_y": torch.as_tensor(np.asarray(y_tr), dtype=torch.int64),
        "test_x": images(x_te),
        "test_y": torch.as_tensor(np.asarray(y_te), dtype=torch.int64),
    }
    out.update({k: torch.as_tensor(np.asarray(v), dtype=torch.int64) for k, v in extra.items()})
    return out


def _load_torchvision(name: str, root: Path, download: bool) -> dict:
    import torchvision.datasets as tvd

    def fetch(cls, files: str, splits=({"train": True}, {"train": False})):
        try:
            return tuple(cls(root, download=False, **split) for split in splits)
        except Exception as err:  # noqa: BLE001 - missing and corrupt files alike
            if not download:
                raise UserError(
                    f"could not load {name} from {root} ({err}); put the torchvision files ({files}) there "
                    f"(or set data_root), set datasets.<key>.download: true to fetch them, or point datasets.<key> "
                    f"at a local ImageFolder copy with source: imagefolder"
                ) from None
        announce = f"downloading {name} into {root} (not found there; set datasets.<key>.download: false to forbid)"
        logging.getLogger(__name__).warning(announce)
        print(announce, file=sys.stderr, flush=True)
        try:
            return tuple(cls(root, download=True, **split) for split in splits)
        except Exception as err:  # noqa: BLE001 - download and integrity failures alike
            raise UserError(
                f"could not download {name} into {root} ({err}); put the torchvision files ({files}) there "
                f"(or set data_root), or point datasets.<key> at a local ImageFolder copy with source: imagefolder"
            ) from None

    if name == "cifar10":
        tr, te = fetch(tvd.CIFAR10, "cifar-10-batches-py/ or cifar-10-python.tar.gz")
        return _as_tensors(tr.data.transpose(0, 3, 1, 2), tr.targets, te.data.transpose(0, 3, 1, 2), te.targets)
    if name in ("cifar100", "cifar20"):
        tr, te = fetch(tvd.CIFAR100, "cifar-100-python/ or cifar-100-python.tar.gz")
        # torchvision reads only the fine labels; the superclass labels are in the same pickles.
        folder = Path(tr.root) / tr.base_folder
        coarse = {split: _read_pickle(folder / split)["coarse_labels"] for split in ("train", "test")}
        x_tr, x_te = tr.data.transpose(0, 3, 1, 2), te.data.transpose(0, 3, 1, 2)
        if name == "cifar100":
            return _as_tensors(x_tr, tr.targets, x_te, te.targets)
        return _as_tensors(x_tr, coarse["train"], x_te, coarse["test"], train_fine_y=tr.targets, test_fine_y=te.targets)
    if name == "mnist":
        tr, te = fetch(tvd.MNIST, "MNIST/raw/*-ubyte[.gz]")
        return _as_tensors(tr.data[:, None].numpy(), tr.targets, te.data[:, None].numpy(), te.targets)
    if name == "svhn":  # torchvision gives [N, 3, 32, 32] and maps digit 0 (label 10 in the files) to 0; no 'extra'
        tr, te = fetch(tvd.SVHN, "train_32x32.mat and test_32x32.mat", ({"split": "train"}, {"split": "test"}))
        return _as_tensors(tr.data, tr.labels, te.data, te.labels)
    raise UserError(f"data set {name!r} is not available through torchvision; use source: sklearn")


def _read_pickle(path: Path) -> dict:
    """A CIFAR-100 batch file: a pickle, trusted after torchvision's MD5 check (README, "Data and trust")."""
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _load_imagefolder(spec: DatasetSpec, path: Path, root: Path) -> dict:
    """Read ``train/<class>/*`` and ``test/<class>/*`` from a folder or a .tar.gz of one (extracted under root)."""
    if not path.exists():
        raise UserError(f"ImageFolder copy of {spec.name} not found at {path}; fix datasets.<key>.path")
    if path.is_file():
        path = _extract(path, root / f"{spec.name}-imagefolder")
    if not (path / "train").is_dir():  # allow one wrapping folder, as tarballs often have
        inner = [p for p in path.iterdir() if (p / "train").is_dir()]
        if not inner:
            raise UserError(f"{path} has no train/ and test/ folders; expected ImageFolder layout train/<class>/*.jpg")
        path = inner[0]
    arrays = {}
    for split in ("train", "test"):
        files, labels = _class_files(spec, path / split)
        arrays[split] = (np.stack([_decode(spec, f) for f in files]), labels)
    return _as_tensors(*arrays["train"], *arrays["test"])


def _extract(archive: Path, cache: Path) -> Path:
    """Extract a .tar(.gz) once into ``cache/<sha256 of the archive, 16 hex>``, so that a changed archive is
    extracted anew; members outside the folder (``../``, absolute paths, links out) are refused."""
    import hashlib
    import shutil
    import tempfile

    digest = hashlib.sha256()
    with open(archive, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    folder = cache / digest.hexdigest()[:16]
    if folder.is_dir():
        return folder
    cache.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".extracting-"))
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        try:
            os.replace(tmp, folder)
        except OSError:
            if not folder.is_dir():  # else another job extracted the same archive first
                raise
    except tarfile.FilterError as err:
        raise UserError(f"archive {archive} holds a member that would land outside its folder ({err}); "
                        "rebuild the archive with relative paths") from None
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise UserError(f"archive {archive} cannot be read as a .tar.gz ({type(err).__name__}: {err}); "
                        "it may be truncated: copy it again or point path at the extracted folder") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _class_files(spec: DatasetSpec, split: Path) -> tuple[list[Path], list[int]]:
    """Image files of ``split/<class>/`` in the data set's class order, with their labels; every class folder must
    exist and hold images, and no other folder may be there."""
    if not split.is_dir():
        raise UserError(f"{split} not found; an ImageFolder copy needs train/<class>/ and test/<class>/ folders")
    folders = {p.name for p in split.iterdir() if p.is_dir() and not p.name.startswith(".")}
    missing = [c for c in spec.classes if c not in folders]
    if missing:
        raise UserError(f"{split} has no folder for class(es) {missing[:5]} of {spec.name}; "
                        f"name the folders after the classes: {', '.join(spec.classes[:5])}, ...")
    extra = sorted(folders - set(spec.classes))
    if extra:
        raise UserError(f"{split} has folder(s) {extra[:5]} that are not classes of {spec.name}; remove them")
    files, labels = [], []
    for label, name in enumerate(spec.classes):
        images = sorted(p for p in (split / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        if not images:
            raise UserError(f"class folder {split / name} holds no images ({', '.join(IMAGE_SUFFIXES)}); add its images")
        files += images
        labels += [label] * len(images)
    return files, labels


def _decode(spec: DatasetSpec, file: Path) -> np.ndarray:
    """One image as uint8 ``[C, H, W]``, checked against the data set's channels and size."""
    from PIL import Image

    try:
        with Image.open(file) as image:
            pixels = np.asarray(image.convert("RGB" if spec.channels == 3 else "L"))
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{file} is not a readable image ({err}); replace or remove it") from None
    if pixels.shape[:2] != (spec.size, spec.size):
        raise UserError(f"{file} is {pixels.shape[1]}x{pixels.shape[0]} pixels, but {spec.name} images are "
                        f"{spec.size}x{spec.size}; resize the copy or pick the matching data set")
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


# ----------------------------------------------------------------------------------------------------------------
# Serving batches from memory
# ----------------------------------------------------------------------------------------------------------------


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Per-sample random crop after zero padding (torchvision's ``RandomCrop(size, padding)``), vectorised."""
    if padding == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (padding,) * 4).permute(0, 2, 3, 1)  # [n, h+2p, w+2p, c]
    dy, dx = torch.randint(0, 2 * padding + 1, (2, n, 1), device=x.device, generator=generator)
    rows = dy + torch.arange(h, device=x.device)  # [n, h]
    cols = dx + torch.arange(w, device=x.device)  # [n, w]
    batch = torch.arange(n, device=x.device)[:, None, None]
    return padded[batch, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Horizontal flip of each sample with probability 1/2."""
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 pixels to float in [0, 1] (float inputs, e.g. blended images, are copied), with plain NCHW strides.

    The explicit memory format matters: a one-channel batch whose strides also read as channels_last makes oneDNN
    choose channels_last kernels, and in torch 2.14 the CPU backward of a strided 1x1 convolution in that layout
    returns wrong weight gradients (docs/deviations.md, "Known library issues"). Training converts to
    channels_last deliberately, where the kernels are correct (``train.uses_channels_last``).
    """
    pixels = x.to(torch.float32, memory_format=torch.contiguous_format, copy=True)
    return pixels.div_(255) if x.dtype == torch.uint8 else pixels


def training_loader(x, y, spec: DatasetSpec, batch_size: int, *, seed: int, device, augment: bool = True,
                    augment_mask: torch.Tensor | None = None) -> "InMemoryLoader":
    """Shuffled batches with the data set's training augmentation (crop with padding, flip where it applies).

    The ragged last batch is dropped (a set smaller than one batch still gives one batch), so that BatchNorm never
    sees a batch of one.
    """
    return InMemoryLoader(
        x, y, batch_size=batch_size, shuffle=True, drop_last=True, seed=seed, device=device,
        crop_padding=spec.crop_padding if augment else 0, flip=spec.flip and augment, augment_mask=augment_mask,
    )


class InMemoryLoader:
    """Batches of ``(x, y)`` from tensors held on ``device``, with on-device augmentation.

    ``x`` is uint8 (or float in [0, 1]); batches come out as float in [0, 1]. ``augment_mask`` (optional, bool per
    sample) limits augmentation to some samples (NatMU augments retain images but not its hybrids).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None,
        *,
        batch_size: int,
        shuffle: bool = False,
        crop_padding: int = 0,
        flip: bool = False,
        augment_mask: torch.Tensor | None = None,
        drop_last: bool = False,
        seed: int = 0,
        device: torch.device | str = "cpu",
    ):
        if len(x) == 0:
            raise UserError("cannot build batches from an empty set of samples; check the forget scenario")
        self.device = torch.device(device)
        self.x = x.to(self.device)
        self.y = None if y is None else y.to(self.device)
        self.augment_mask = None if augment_mask is None else augment_mask.to(self.device)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.crop_padding, self.flip = crop_padding, flip
        self.generator = torch.Generator(device=self.device).manual_seed(seed)

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last and n >= self.batch_size else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.x)
        order = torch.randperm(n, device=self.device, generator=self.generator) if self.shuffle else None
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            idx = slice(start, min(start + self.batch_size, n)) if order is None else order[start : start + self.batch_size]
            x = self.x[idx]
            if self.crop_padding or self.flip:
                augmented = x
                if self.crop_padding:
                    augmented = random_crop(augmented, self.crop_padding, self.generator)
                if self.flip:
                    augmented = random_flip(augmented, self.generator)
                x = augmented if self.augment_mask is None else torch.where(
                    self.augment_mask[idx][:, None, None, None], augmented, x
                )
            yield to_float(x), (None if self.y is None else self.y[idx])

    def forever(self):
        """Endless batches, reshuffled and re-augmented on every pass (a second set cycled beside the first)."""
        while True:
            yield from self
