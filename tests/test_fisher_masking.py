import pytest
import torch
from torch import nn

from unlearnbench import UserError
from unlearnbench.checkpoint import model_config
from unlearnbench.data import get_spec, training_loader
from unlearnbench.methods import Subset, UnlearnTask, run_method
from unlearnbench.methods.fisher_masking import (
    maskable_weights, mean_channel_activation, slice_scores, top_fraction, zero_channels, zero_connections,
)
from unlearnbench.models import create_model
from unlearnbench.train import Recipe, fit, predict_logits

RECIPE = Recipe(epochs=12, batch_size=64, lr=0.05, weight_decay=5e-4, schedule="cosine", warmup_epochs=1)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 2, bias=False)  # 3 x 2 = 6 kernel slices
        self.bn = nn.BatchNorm2d(3)
        self.fc = nn.Linear(4, 2)  # 8 weights

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).flatten(1))


def test_the_highest_kernel_slices_are_zeroed_by_their_kernel_mean():
    net = ConvNet()
    nn.init.constant_(net.conv.weight, 1.0)
    nn.init.constant_(net.fc.weight, 1.0)
    weights = maskable_weights(net)
    assert list(weights) == ["conv.weight", "fc.weight"]
    conv = torch.zeros(3, 2, 2, 2)
    conv[1, 0] = 5.0  # slice mean 5: first
    conv[2, 1] = 3.0  # slice mean 3: third
    conv[0, 0, 0, 0] = 8.0  # one large entry, slice mean 2: below the cut
    fc = torch.zeros(2, 4)
    fc[0, 3] = 4.0  # second
    fc[1, 2] = 1.0
    scores = slice_scores({"conv.weight": conv, "fc.weight": fc}, weights)
    assert scores["conv.weight"][0, 0] == 2.0 and scores["conv.weight"].shape == (3, 2)
    zero_connections(weights, top_fraction(scores, 0.25))  # floor(0.25 * 14) = 3 units
    zeroed_slices = {(o, i) for o in range(3) for i in range(2) if net.conv.weight[o, i].abs().sum() == 0}
    assert zeroed_slices == {(1, 0), (2, 1)}
    assert (net.conv.weight.abs().sum() == 4 * 4)  # the other 4 slices of 2x2 ones are intact
    assert torch.nonzero(net.fc.weight == 0).tolist() == [[0, 3]]


def test_activation_mask_silences_whole_channels_and_their_batchnorm():
    net = ConvNet().eval()
    zero_channels(net, {"conv.weight": torch.tensor([False, True, False])})
    assert net.conv.weight[1].abs().sum() == 0 and net.conv.weight[0].abs().sum() > 0
    assert net.bn.weight[1] == 0 and net.bn.bias[1] == 0 and net.bn.weight[0] == 1
    out = net.bn(net.conv(torch.randn(5, 2, 3, 3)))
    assert out[:, 1].abs().max() == 0


def test_activation_mask_reads_channels_after_batchnorm_by_default():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1, bias=False)
            self.bn = nn.BatchNorm2d(2).eval()
            self.head = nn.Linear(2 * 3 * 3, 2)

        def forward(self, x):
            return self.head(self.bn(self.conv(x)).flatten(1))

    net = Net()
    with torch.no_grad():
        net.conv.weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))  # channel 1 is larger before BN
        net.bn.weight.copy_(torch.tensor([3.0, 1.0]))  # channel 0 is larger after BN (running mean 0, var 1)
    x = torch.full((4, 1, 3, 3), 255, dtype=torch.uint8)
    after = mean_channel_activation(net, x, 4, "cpu")
    before = mean_channel_activation(net, x, 4, "cpu", after_bn=False)
    assert list(after) == list(before) == ["conv.weight"]  # the classifier is never scored
    assert top_fraction(after, 0.5)["conv.weight"].tolist() == [True, False]
    assert top_fraction(before, 0.5)["conv.weight"].tolist() == [False, True]


def _task(digits, forget_class=3, width=4):
    forget, test_forget = digits["train_y"] == forget_class, digits["test_y"] == forget_class
    return UnlearnTask(
        forget=Subset(digits["train_x"][forget], digits["train_y"][forget]),
        retain=Subset(digits["train_x"][~forget], digits["train_y"][~forget]),
        spec=get_spec("digits"), recipe=RECIPE, initial_state=None,
        model_config=model_config("resnet18", "digits", {"width": width}),
        scenario={"kind": "full_class", "classes": [str(forget_class)]},
        test_forget=Subset(digits["test_x"][test_forget], digits["test_y"][test_forget]),
        test_retain=Subset(digits["test_x"][~test_forget], digits["test_y"][~test_forget]),
    )


@pytest.mark.parametrize("hparams", [{"rho": 0.0}, {"rho": 1.0}, {"rho": -0.1}, {"rho": 1e-9}, {"mask": "magnitude"}, {"fisher_batch_size": 0}])
def test_bad_hyperparameters_are_user_errors_before_any_weight_changes(digits, hparams):
    model = create_model("resnet18", "digits", width=4)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError, match="fisher_masking|rho"):
        run_method("fisher_masking", model, _task(digits), {"mask": "random", **hparams} if "mask" not in hparams else hparams)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_random_mask_zeroes_exactly_floor_rho_n_connections_reproducibly(digits):
    def masked():
        model = create_model("resnet18", "digits", width=4)
        nn.init.constant_(model.head.weight, 1.0)
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.constant_(m.weight, 1.0)
        task = _task(digits)
        return run_method("fisher_masking", model, task, {"mask": "random", "rho": 0.1}), task

    (a, task), (b, _) = masked(), masked()
    weights = maskable_weights(a)
    units = sum(w.shape[0] * w.shape[1] for w in weights.values())
    zeroed = sum(int((w.flatten(2) if w.ndim > 2 else w[..., None]).abs().sum(-1).eq(0).sum()) for w in weights.values())
    assert zeroed == int(0.1 * units)
    assert all(torch.equal(w, maskable_weights(b)[n]) for n, w in weights.items())
    assert task.record["history"][0]["epoch"] == 0 and len(task.record["history"]) == 1


@pytest.fixture(scope="module")
def original(digits):
    torch.manual_seed(0)
    model = create_model("resnet18", "digits", width=8)
    fit(model, training_loader(digits["train_x"], digits["train_y"], get_spec("digits"), 64, seed=0, device="cpu"), RECIPE)
    return model.state_dict()


def _test_accuracies(model, digits, forget_class=3):
    pred, y = predict_logits(model, digits["test_x"]).argmax(1), digits["test_y"]
    hit = pred == y
    return hit[y == forget_class].float().mean().item(), hit[y != forget_class].float().mean().item()


def test_fisher_mask_forgets_a_class_and_keeps_the_rest_then_fine_tuning_records_each_epoch(digits, original):
    model = create_model("resnet18", "digits", width=8)
    model.load_state_dict(original)
    forget_before, retain_before = _test_accuracies(model, digits)
    assert forget_before > 0.8
    task = _task(digits, width=8)
    model = run_method("fisher_masking", model, task, {"rho": 0.002, "finetune_epochs": 2, "lr": 0.02})
    forget_after, retain_after = _test_accuracies(model, digits)
    assert forget_after <= 0.05  # was above 0.8
    assert retain_after >= retain_before - 0.05
    history = task.record["history"]  # the official curves: test accuracy on the remaining / forgotten classes
    assert [h["epoch"] for h in history] == [0, 1, 2]
    assert set(history[0]) == {"epoch", "test_retain_acc", "test_forget_acc", "forget_acc"}
    assert history[-1]["test_retain_acc"] == pytest.approx(retain_after) and history[-1]["test_forget_acc"] == pytest.approx(forget_after)
    assert history[0]["test_forget_acc"] <= 0.05 and history[0]["test_retain_acc"] >= 0.9  # masked, not fine-tuned
    assert all(h["forget_acc"] <= 0.05 and h["test_forget_acc"] <= 0.05 for h in history)
    assert task.untimed_seconds > 0  # the curves were evaluated outside the method's timed part


def test_time_spent_inside_untimed_is_left_out_of_the_method_seconds(digits, tmp_path):
    import json
    import time

    from unlearnbench.checkpoint import build_model, save_checkpoint
    from unlearnbench.data import save_dataset
    from unlearnbench.methods import METHODS, register_method
    from unlearnbench.steps.unlearn import unlearn
    from unlearnbench.splits import make_split, save_split

    @register_method(name="sleeps_half_untimed")
    def sleeps(model, task):
        time.sleep(0.3)
        with task.untimed():
            time.sleep(0.6)
        return model

    data = {**digits, "train_x": digits["train_x"][:100], "train_y": digits["train_y"][:100],
            "test_x": digits["test_x"][:20], "test_y": digits["test_y"][:20]}
    scenario = {"kind": "full_class", "classes": ["3"]}
    model = {"name": "resnet18", "dataset": "digits", "options": {"width": 2}}
    config = model_config(**model)
    save_dataset(data, tmp_path / "data.pt")
    save_split(make_split(scenario, data, seed=0), tmp_path / "split.npz")
    save_checkpoint(tmp_path / "original.pt", build_model(config), config)
    try:
        unlearn(str(tmp_path / "original.pt"), str(tmp_path / "data.pt"), str(tmp_path / "split.npz"),
                {"method": "sleeps_half_untimed"}, model, {"epochs": 1}, scenario, 0, str(tmp_path / "m.pt"),
                str(tmp_path / "run.json"), str(tmp_path / "logits.npz"), device="cpu")
    finally:
        METHODS.pop("sleeps_half_untimed")
    run = json.loads((tmp_path / "run.json").read_text())
    assert 0.3 <= run["seconds"] < 0.75  # the timed sleep only, not the 0.6 s inside untimed()
    assert 0.6 <= run["untimed_seconds"] < 1.0
