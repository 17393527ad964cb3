import numpy as np
import pytest
import torch

from unlearnbench import UserError
from unlearnbench.splits import check_scenario, class_index, load_split, make_split, save_split


def _fake_cifar20(n_per_fine=4):
    from unlearnbench.data import CIFAR20_CLASSES, CIFAR100_CLASSES

    fine = torch.arange(100).repeat_interleave(n_per_fine)
    coarse = fine % 20
    return {"train_y": coarse, "test_y": coarse.clone(), "train_fine_y": fine, "test_fine_y": fine.clone(),
            "classes": list(CIFAR20_CLASSES), "fine_classes": list(CIFAR100_CLASSES)}


def _check_partition(split, data):
    n_train, n_test = len(data["train_y"]), len(data["test_y"])
    assert not set(split["forget"].tolist()) & set(split["retain"].tolist())
    assert sorted(split["forget"].tolist() + split["retain"].tolist()) == list(range(n_train))
    assert sorted(split["test_forget"].tolist() + split["test_retain"].tolist()) == list(range(n_test))


def test_full_class_by_name_and_index(digits):
    by_name = make_split({"kind": "full_class", "classes": ["3", "5"]}, digits, seed=0)
    by_index = make_split({"kind": "full_class", "classes": [3, 5]}, digits, seed=7)
    assert all(torch.equal(by_name[k], by_index[k]) for k in by_name)
    assert set(digits["train_y"][by_name["forget"]].tolist()) == {3, 5}
    assert len(by_name["forget"]) == int(((digits["train_y"] == 3) | (digits["train_y"] == 5)).sum())
    assert set(digits["test_y"][by_name["test_forget"]].tolist()) == {3, 5}
    _check_partition(by_name, digits)


def test_random_count_fraction_and_determinism(digits):
    a = make_split({"kind": "random", "count": 65}, digits, seed=1)
    b = make_split({"kind": "random", "count": 65}, digits, seed=1)
    c = make_split({"kind": "random", "count": 65}, digits, seed=2)
    assert len(a["forget"]) == 65 and torch.equal(a["forget"], b["forget"]) and not torch.equal(a["forget"], c["forget"])
    assert len(make_split({"kind": "random", "fraction": 0.1}, digits, seed=0)["forget"]) == 130
    assert len(a["test_forget"]) == 0 and len(a["test_retain"]) == len(digits["test_y"])
    _check_partition(a, digits)


def test_random_restricted_to_classes_is_the_non_iid_set(digits):
    split = make_split({"kind": "random", "count": 40, "classes": [2, 5]}, digits, seed=0)
    assert set(digits["train_y"][split["forget"]].tolist()) <= {2, 5} and len(split["forget"]) == 40


def test_class_balanced_draw_takes_the_same_number_from_every_class(digits):
    split = make_split({"kind": "random", "count": 43, "class_balanced": True}, digits, seed=0)
    counts = torch.bincount(digits["train_y"][split["forget"]], minlength=10)
    assert counts.sum() == 43 and counts.max() - counts.min() == 1 and (counts == 5).sum() == 3
    two = make_split({"kind": "random", "count": 40, "classes": [2, 5], "class_balanced": True}, digits, seed=0)
    assert torch.bincount(digits["train_y"][two["forget"]], minlength=10)[[2, 5]].tolist() == [20, 20]


def test_sub_class_keeps_superclass_labels():
    data = _fake_cifar20()
    split = make_split({"kind": "sub_class", "subclass": "rocket"}, data, seed=0)
    assert set(data["train_fine_y"][split["forget"]].tolist()) == {69}
    superclass = 69 % 20
    assert set(data["train_y"][split["forget"]].tolist()) == {superclass}  # labels stay the superclass
    # the other sub-classes of the same superclass are retained
    assert (data["train_y"][split["retain"]] == superclass).sum() == 4 * 4
    _check_partition(split, data)


def test_split_file_roundtrip(digits, tmp_path):
    split = make_split({"kind": "random", "count": 10}, digits, seed=0)
    save_split(split, tmp_path / "s.npz")
    back = load_split(tmp_path / "s.npz")
    assert all(np.array_equal(back[k], split[k].numpy()) for k in split)


def test_unknown_class_lists_valid_names():
    with pytest.raises(UserError, match="unknown class 'rockett'; valid: airplane, automobile"):
        check_scenario({"kind": "full_class", "classes": ["rockett"]}, "cifar10")
    with pytest.raises(UserError, match="unknown sub-class 'rockett'.*rocket"):
        check_scenario({"kind": "sub_class", "subclass": "rockett"}, "cifar20")
    assert class_index("ship", ("airplane", "ship")) == 1


@pytest.mark.parametrize(
    "scenario, message",
    [
        ({"kind": "random", "count": 5000}, "pool holds 1300"),
        ({"kind": "random", "count": 200, "classes": [1]}, "pool holds"),
        ({"kind": "full_class", "classes": list(range(10))}, "whole training set"),
    ],
)
def test_impossible_forget_sets_are_clear_errors(digits, scenario, message):
    with pytest.raises(UserError, match=message):
        make_split(scenario, digits, seed=0)


def test_scenario_checks_without_data():
    with pytest.raises(UserError, match="sub-classes"):
        check_scenario({"kind": "sub_class", "subclass": "rocket"}, "cifar100")
    with pytest.raises(UserError, match="exactly one of"):
        check_scenario({"kind": "random", "count": 3, "fraction": 0.1}, "digits")
    with pytest.raises(UserError, match="valid kinds"):
        check_scenario({"kind": "classwise"}, "digits")


def test_a_scenario_that_selects_nothing_is_refused_before_any_method_runs(digits):
    # why methods need no empty-forget-set check of their own: every split the workflow hands them is non-empty
    # (count >= 1 is the schema's; an empty index file is refused when read)
    with pytest.raises(UserError, match="rounds to 0"):
        make_split({"kind": "random", "fraction": 1e-6}, digits, seed=0)
    no_threes = {**digits, "train_y": torch.where(digits["train_y"] == 3, 4, digits["train_y"])}
    with pytest.raises(UserError, match="selects no training samples"):
        make_split({"kind": "full_class", "classes": ["3"]}, no_threes, seed=0)
