import pytest

from unlearnbench import UserError
from unlearnbench.config import apply_scale, deep_merge


def test_deep_merge_recurses_into_dicts_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": 2}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": 2}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}  # unchanged


def test_scales_merge_a_reduced_grid_into_its_own_results_folder():
    config = {"name": "ssd", "seeds": [0, 1, 2], "datasets": {"cifar10": {"source": "torchvision"}},
              "scales": {"reduced": {"seeds": [0], "datasets": {"cifar10": {"train_size": 5000}}}}}
    assert apply_scale(config) is config
    reduced = apply_scale({**config, "scale": "reduced"})
    assert reduced["name"] == "ssd-reduced" and reduced["seeds"] == [0]
    assert reduced["datasets"]["cifar10"] == {"source": "torchvision", "train_size": 5000}
    with pytest.raises(UserError, match="scale 'tiny' is not defined under 'scales'; defined: full, reduced"):
        apply_scale({**config, "scale": "tiny"})


def test_a_scale_drops_an_experiment_set_to_null():
    config = {"name": "del", "experiments": {"cifar": {"dataset": "cifar10"}, "svhn": {"dataset": "svhn"}},
              "report": {"match": [{"experiment": "cifar"}, {"experiment": "svhn"}]},
              "scales": {"reduced": {"experiments": {"svhn": None, "cifar": {"dataset": "cifar10_small"}}}}}
    reduced = apply_scale({**config, "scale": "reduced"})
    assert reduced["experiments"] == {"cifar": {"dataset": "cifar10_small"}}
    assert reduced["report"]["match"] == [{"experiment": "cifar"}]
