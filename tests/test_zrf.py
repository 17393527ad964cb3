"""ZRF: SSD's definition (``zrf_code``: the forgotten classes' test images, or D_f in random scenarios) and the
textbook one (``zrf``: D_f), both against the incompetent teacher that Bad Teacher distils from."""

import math

import numpy as np
import torch

from unlearnbench.metrics import METRICS, Evaluation


def split(forget, test_forget, n_train=4, n_test=4):
    forget, test_forget = np.asarray(forget, int), np.asarray(test_forget, int)
    return {"forget": forget, "retain": np.setdiff1d(np.arange(n_train), forget),
            "test_forget": test_forget, "test_retain": np.setdiff1d(np.arange(n_test), test_forget)}


def pair(test_forget):
    """A run and an incompetent teacher that agree on the training images and on test image 0, and differ on test
    image 1 (run (0.8, 0.2), teacher (0.5, 0.5)) and on training image 0 (run (1, 0) up to 1e-12)."""
    s = split([0], test_forget)
    half = np.full((4, 2), 0.5)
    run_train, run_test = half.copy(), half.copy()
    run_train[0], run_test[1] = [1 - 1e-12, 1e-12], [0.8, 0.2]
    y = np.zeros(4, int)
    run = Evaluation(np.log(run_train), np.log(run_test), y, y, s)
    run.incompetent = Evaluation(np.log(half), np.log(half), y, y, s)
    return run


def test_zrf_code_reads_the_forgotten_classes_test_images_in_class_scenarios():
    kl_mp = 0.65 * math.log(0.65 / 0.8) + 0.35 * math.log(0.35 / 0.2)
    kl_mq = 0.65 * math.log(0.65 / 0.5) + 0.35 * math.log(0.35 / 0.5)
    # test_forget = images 0 and 1: the code's JSDiv sums over both rows and divides by rows x classes = 4
    assert np.isclose(METRICS["zrf_code"].fn(pair([0, 1])), 1 - (kl_mp + kl_mq) / 2 / 4)
    assert METRICS["zrf_code"].fn(pair([0])) == 1  # the differing training image 0 is not read
    # the textbook zrf stays on the forget training image: per-example JS((1, 0), (1/2, 1/2)) with m = (3/4, 1/4)
    js = (math.log(4 / 3) + (math.log(2 / 3) + math.log(2)) / 2) / 2
    assert np.isclose(METRICS["zrf"].fn(pair([0, 1])), 1 - js, atol=1e-9)


def test_zrf_code_reads_the_forget_set_in_random_scenarios():
    # no test-set forget part: SSD's random harness passes forget_train_dl as forget_valid_dl
    kl_mp = 0.75 * math.log(0.75) + 0.25 * math.log(0.25 / 1e-12)  # KL(m || (1, 1e-12)), the 1 - 1e-12 rounded
    kl_mq = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    assert np.isclose(METRICS["zrf_code"].fn(pair([])), 1 - (kl_mp + kl_mq) / 2 / 2, rtol=1e-6)


def test_the_metrics_incompetent_teacher_is_bad_teachers(digits, tmp_path, monkeypatch):
    from unlearnbench.checkpoint import build_model, model_config
    from unlearnbench.data import get_spec, save_dataset
    from unlearnbench.methods import Subset, UnlearnTask, run_method
    from unlearnbench.methods import bad_teacher as bad_teacher_module
    from unlearnbench.methods import task as task_module
    from unlearnbench.steps.references import incompetent_logits
    from unlearnbench.train import Recipe, predict_logits

    data = {**digits, "train_x": digits["train_x"][:60], "train_y": digits["train_y"][:60],
            "test_x": digits["test_x"][:20], "test_y": digits["test_y"][:20]}
    save_dataset(data, tmp_path / "data.pt")
    model = {"name": "resnet18", "dataset": "digits", "options": {"width": 2}}
    config = model_config(**model)
    incompetent_logits(str(tmp_path / "data.pt"), model, 3, str(tmp_path / "incompetent.npz"), device="cpu")

    teachers = []
    draw = bad_teacher_module.incompetent_teacher
    monkeypatch.setattr(bad_teacher_module, "incompetent_teacher", lambda *a: teachers.append(draw(*a)) or teachers[-1])
    monkeypatch.setattr(task_module, "fit", lambda *a, **k: None)  # the teacher is all this test needs
    forget = data["train_y"] == 3
    task = UnlearnTask(
        forget=Subset(data["train_x"][forget], data["train_y"][forget]),
        retain=Subset(data["train_x"][~forget], data["train_y"][~forget]), spec=get_spec("digits"),
        recipe=Recipe(epochs=1), initial_state=None, model_config=config, seed=3,
        scenario={"kind": "full_class", "classes": ["3"]},
    )
    student = draw(config, 0)  # any model of the experiment
    run_method("bad_teacher", student, task, {"batch_size": 8})
    assert len(teachers) == 1
    cached = np.load(tmp_path / "incompetent.npz")["train_logits"]
    np.testing.assert_array_equal(predict_logits(teachers[0], data["train_x"]).numpy(), cached)
    # its own seed: not the original's initial weights (drawn with the run's seed), and other seeds differ
    torch.manual_seed(3)
    initial = build_model(config)
    assert not torch.equal(next(initial.parameters()), next(teachers[0].parameters()))
    assert not torch.equal(next(draw(config, 4).parameters()), next(teachers[0].parameters()))
