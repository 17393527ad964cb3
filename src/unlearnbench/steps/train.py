"""Step of ``workflow/rules/train.smk``: train the original model of an experiment and seed."""

from __future__ import annotations

import time

from ..checkpoint import build_model, model_config, save_checkpoint
from ..data import get_spec, load_dataset, training_loader
from ..methods.mnemonic_code import code_pixels, make_codes, mnemonic_loss, mnemonic_settings
from ..train import Recipe, fit, resolve_device, set_seed


def train_original(
    data_path: str, model: dict, train: dict, seed: int, out: str, device: str = "auto", compile: bool = False,
    mnemonic: dict | None = None, precision: str = "auto",
) -> None:
    """Train the original model on the whole training set; the checkpoint keeps its initial weights.

    ``mnemonic`` (``{t_mix, distribution, seed}``) trains with mnemonic codes (``methods.mnemonic_code``) and stores the
    codes in the checkpoint's ``meta["mnemonic"]``. A pretrained model (``vit_b_16``) starts from its pretrained
    weights, which ``meta["pretrained"]`` names and the stored initial weights hold (the retrain oracle starts there
    too).
    """
    train_model(load_dataset(data_path), model, train, seed, out, device, compile, mnemonic, precision)


def train_model(
    data: dict, model: dict, train: dict, seed: int, out: str, device: str = "auto", compile: bool = False,
    mnemonic: dict | None = None, precision: str = "auto",
) -> None:
    """``train_original`` on the loaded data set ``data`` (U-LiRA's shadow originals: a part of the training set)."""
    dev = resolve_device(device)
    recipe = Recipe.from_dict(train)
    config = model_config(model["name"], model["dataset"], model.get("options"))
    spec = get_spec(config["dataset"])
    meta, loss_fn = {"seed": seed}, None
    if mnemonic is not None:
        settings = mnemonic_settings(mnemonic, seed)
        codes = make_codes(spec.num_classes, (spec.channels, spec.size, spec.size),
                           distribution=settings["distribution"], seed=settings["seed"])
        loss_fn = mnemonic_loss(code_pixels(codes, spec).to(dev), settings["t_mix"], seed=seed,
                                label_smoothing=recipe.label_smoothing)
        meta["mnemonic"] = {**settings, "codes": codes}
    set_seed(seed)
    net = build_model(config, pretrained=True)
    if net.pretrained is not None:
        meta["pretrained"] = net.pretrained
    initialised = net.init_from_data(data["train_x"])  # the fast net's whitening (stored with the initial weights)
    if initialised is not None:
        meta["init_from_data"] = initialised
    initial = {k: v.clone() for k, v in net.state_dict().items()}
    loader = training_loader(data["train_x"], data["train_y"], spec, recipe.batch_size, seed=seed, device=dev,
                             augment=recipe.augment)
    start = time.perf_counter()
    history = fit(net, loader, recipe, loss_fn=loss_fn, compile=compile, precision=precision, desc="original")
    save_checkpoint(out, net, config, initial_state=initial,
                    meta={**meta, "seconds": time.perf_counter() - start, "history": history})
