import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from unlearnbench import UserError
from unlearnbench.data import (
    DATASETS, InMemoryLoader, balanced_subset, get_spec, load_dataset, prepare_dataset, random_crop, random_flip,
    save_dataset, training_loader,
)


def test_digits_is_uint8_and_stratified(digits):
    assert digits["train_x"].dtype == torch.uint8 and digits["train_x"].shape[1:] == (1, 8, 8)
    assert len(digits["train_y"]) == 1300 and len(digits["test_y"]) == 497
    assert digits["train_x"].max() == 255
    counts = torch.bincount(digits["train_y"])
    assert counts.min() >= 120 and counts.max() <= 140
    assert digits["classes"] == list(get_spec("digits").classes)


def test_dataset_artifact_roundtrip(digits, tmp_path):
    save_dataset(digits, tmp_path / "d.pt")
    back = load_dataset(tmp_path / "d.pt")
    assert torch.equal(back["train_x"], digits["train_x"]) and back["classes"] == digits["classes"]


def test_corrupt_dataset_artifact_is_a_clear_error(tmp_path):
    (tmp_path / "d.pt").write_bytes(b"not a tensor file")
    with pytest.raises(UserError, match="delete it and rerun"):
        load_dataset(tmp_path / "d.pt")


def test_random_crop_is_a_shifted_window_of_the_padded_image():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.uint8).reshape(2, 1, 5, 5)
    gen = torch.Generator().manual_seed(0)
    out = random_crop(x, 2, gen)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    assert out.shape == x.shape and out.dtype == torch.uint8
    for i in range(2):
        windows = [padded[i, :, dy:dy + 5, dx:dx + 5] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_random_crop_covers_all_offsets():
    x = torch.zeros(2000, 1, 3, 3, dtype=torch.uint8)
    x[:, :, 1, 1] = 1  # the centre pixel moves with the offset
    out = random_crop(x, 1, torch.Generator().manual_seed(0))
    positions = {tuple(torch.nonzero(o[0]).flatten().tolist()) for o in out}
    assert len(positions) == 9  # every shift in [-1, 1]^2 occurs


def test_random_flip_flips_about_half():
    x = torch.arange(4, dtype=torch.uint8).reshape(1, 1, 1, 4).repeat(1000, 1, 1, 1)
    out = random_flip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 3).float().mean().item()
    assert 0.4 < flipped < 0.6
    assert all(torch.equal(o, x[0]) or torch.equal(o, x[0].flip(-1)) for o in out)


def test_loader_batches_cover_every_sample_once():
    x = torch.arange(10, dtype=torch.uint8).reshape(10, 1, 1, 1)
    loader = InMemoryLoader(x, torch.arange(10), batch_size=4, shuffle=True, seed=1)
    assert len(loader) == 3
    ys = torch.cat([y for _, y in loader])
    assert sorted(ys.tolist()) == list(range(10))
    xb, _ = next(iter(loader))
    assert xb.dtype == torch.float32 and xb.max() <= 10 / 255 + 1e-6


def test_training_loader_drops_the_ragged_batch_but_keeps_a_small_set():
    spec = get_spec("digits")
    x = torch.zeros(9, 1, 8, 8, dtype=torch.uint8)
    assert [len(y) for _, y in training_loader(x, torch.zeros(9), spec, 4, seed=0, device="cpu")] == [4, 4]
    assert [len(y) for _, y in training_loader(x[:3], torch.zeros(3), spec, 4, seed=0, device="cpu")] == [3]


def test_augment_mask_limits_augmentation():
    x = torch.randint(0, 255, (64, 1, 6, 6), dtype=torch.uint8)
    mask = torch.zeros(64, dtype=torch.bool)
    loader = InMemoryLoader(x, None, batch_size=64, crop_padding=2, flip=True, augment_mask=mask)
    xb, _ = next(iter(loader))
    assert torch.equal(xb, x.float() / 255)


def test_empty_set_is_a_clear_error():
    with pytest.raises(UserError, match="empty"):
        InMemoryLoader(torch.zeros(0, 1, 2, 2), None, batch_size=4)


def test_balanced_subset_is_balanced_and_seeded():
    labels = torch.arange(10).repeat_interleave(50)
    a, b = balanced_subset(labels, 100, seed=3), balanced_subset(labels, 100, seed=3)
    assert torch.equal(a, b) and torch.bincount(labels[a]).tolist() == [10] * 10
    assert not torch.equal(a, balanced_subset(labels, 100, seed=4))
    with pytest.raises(UserError, match="subset of 501"):
        balanced_subset(labels, 501, seed=0)


def test_unknown_dataset_and_source_are_clear_errors():
    with pytest.raises(UserError, match="valid data sets: cifar10"):
        get_spec("cifar11")
    with pytest.raises(UserError, match="valid sources"):
        prepare_dataset("digits", "internet")


def test_missing_torchvision_data_without_network_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="could not load cifar10 .* source: imagefolder"):
        prepare_dataset("cifar10", "torchvision", root=tmp_path, download=False)


def _write_cifar100_pickles(folder, n):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    fine = np.arange(n) % 100
    for split in ("train", "test"):
        entry = {"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "fine_labels": fine.tolist(),
                 "coarse_labels": (fine % 20).tolist()}
        with open(folder / split, "wb") as f:
            pickle.dump(entry, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": list(DATASETS["cifar100"].classes)}, f)


@pytest.mark.parametrize("name", ["cifar100", "cifar20"])
def test_cifar100_and_cifar20_labels_from_the_torchvision_files(tmp_path, monkeypatch, name):
    import torchvision.datasets.cifar as tv_cifar

    _write_cifar100_pickles(tmp_path / "cifar-100-python", 200)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda *args, **kwargs: True)  # the files are not the real ones
    data = prepare_dataset(name, "torchvision", root=tmp_path, download=False)
    assert data["train_x"].shape == (200, 3, 32, 32)
    fine = torch.arange(200) % 100
    if name == "cifar100":
        assert torch.equal(data["train_y"], fine)
    else:  # superclass labels for training, fine labels kept for sub-class scenarios
        assert torch.equal(data["train_y"], fine % 20) and torch.equal(data["train_fine_y"], fine)
        assert data["fine_classes"][69] == "rocket"


def test_imagefolder_copy(tmp_path):
    root = tmp_path / "copy"
    for split, n in (("train", 3), ("test", 2)):
        for c in get_spec("cifar10").classes:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(root / split / c / f"{i:04d}.png")
    data = prepare_dataset("cifar10", "imagefolder", path=root, root=tmp_path / "cache", train_size=20)
    assert data["train_x"].shape == (20, 3, 32, 32) and len(data["test_y"]) == 20
    assert torch.bincount(data["train_y"]).tolist() == [2] * 10


def test_imagefolder_with_wrong_classes_is_a_clear_error(tmp_path):
    (tmp_path / "train" / "cats").mkdir(parents=True)
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "train" / "cats" / "0.png")
    with pytest.raises(UserError, match="name the folders after the classes"):
        prepare_dataset("cifar10", "imagefolder", path=tmp_path)
