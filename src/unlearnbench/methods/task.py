"""What a method receives besides the model, and the kit it trains with: ``task.recipe(...)`` (a validated recipe
derived from the original's), ``task.loader(...)`` (seeded batches on the task's device), ``task.fit(...)`` (the
one training loop with the task's seed and compile setting) and ``task.untimed()`` (evaluation left out of the
method's time)."""

from __future__ import annotations

import time
import zlib
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..data import DatasetSpec, InMemoryLoader, training_loader
from ..recipe import Recipe
from ..train import fit, set_seed


@dataclass
class Subset:
    """Images (uint8 ``[n, C, H, W]``) and labels (``None`` where a method must not see them) of some samples."""

    x: torch.Tensor
    y: torch.Tensor | None
    index: torch.Tensor | None = None  # positions in the training set
    fine: torch.Tensor | None = None  # fine labels where the data set has them (CIFAR-20: the CIFAR-100 class)

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class TaskRecipe(Recipe):
    """The original model's recipe; calling it derives a method's recipe (``UnlearnTask.recipe``)."""

    def __call__(self, *, epochs: float, lr: float, batch_size: int | None = None, **overrides) -> Recipe:
        """The original's optimiser settings (optimizer, momentum, Nesterov, weight decay, label smoothing) with a
        method's ``epochs``, ``lr`` and ``overrides``; ``batch_size=None`` keeps the original's. The schedule is the
        method's own: ``cosine`` unless given, without the original's warm-up, milestones and cosine floor, and
        without its lookahead and BatchNorm-bias learning-rate scale (the fast recipe's; methods fine-tune plainly).
        Validated (``Recipe.check``): a bad value is one ``UserError``."""
        own = {"schedule": "cosine", "milestones": [], "warmup_epochs": 0.0, "min_lr": 0.0, "lookahead": 0,
               "norm_bias_lr_scale": 1.0}
        derived = Recipe(**{**asdict(self), **own, "epochs": epochs, "lr": lr,
                            "batch_size": self.batch_size if batch_size is None else batch_size, **overrides})
        derived.check()
        return derived


def stream_seed(seed: int, stream: str | None) -> int:
    """The seed of a named stream of batches: the task's seed itself for the default stream (``None``)."""
    return seed if stream is None else seed + zlib.crc32(stream.encode())


@dataclass
class UnlearnTask:
    """Everything a method may use besides the model."""

    forget: Subset
    retain: Subset
    spec: DatasetSpec
    recipe: TaskRecipe  # the original's training recipe (the retrain oracle reuses it); ``recipe(...)`` derives one
    initial_state: dict | None  # the weights the original model started from
    model_config: dict
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    compile: bool = False
    precision: str = "auto"  # auto | bf16 | fp32: the default of every fit inside the method (train.py)
    scenario: dict = field(default_factory=dict)
    mnemonic: dict | None = None  # the original's mnemonic codes and settings, when it was trained with them
    record: dict = field(default_factory=dict)  # what a method wants saved in run.json (e.g. per-epoch curves)
    test_forget: Subset | None = None  # test images of the forgotten classes (empty for random forgetting)
    test_retain: Subset | None = None  # test images of the remaining classes (the whole test set for random)
    untimed_seconds: float = 0.0  # seconds spent inside ``untimed()``, left out of the method's time

    def __post_init__(self):
        if not isinstance(self.recipe, TaskRecipe):
            self.recipe = TaskRecipe(**asdict(self.recipe))

    def loader(self, subset: Subset, batch_size: int, *, shuffle: bool = True, augment: bool = True,
               augment_mask: torch.Tensor | None = None, stream: str | None = None,
               seed: int | None = None) -> InMemoryLoader:
        """Batches of a subset on the task's device. Shuffled: the ragged last batch dropped, ``augment`` applies the
        data set's crop and flip (only to the samples in ``augment_mask``, if given), seeded with the task's seed,
        or a different seed per named ``stream`` (two streams read side by side, e.g. NegGrad+'s forget batches),
        or ``seed``. Unshuffled: every sample once, in order, never augmented."""
        if not shuffle:
            return InMemoryLoader(subset.x, subset.y, batch_size=batch_size, device=self.device)
        seed = stream_seed(self.seed, stream) if seed is None else seed
        return training_loader(subset.x, subset.y, self.spec, batch_size, seed=seed, device=self.device,
                               augment=augment, augment_mask=augment_mask)

    def fit(self, model: nn.Module, loader: InMemoryLoader, recipe: Recipe, **kw) -> list[dict]:
        """``train.fit`` seeded with the task's seed (``seed_generators`` just before) and with its compile setting;
        the precision is the task's (``run_method`` sets it). ``kw``: ``fit``'s loss, parameters, hooks, ``desc``."""
        self.seed_generators()
        return fit(model, loader, recipe, compile=self.compile, **kw)

    def seed_generators(self) -> None:
        """Seed torch's global generators (CPU and CUDA) with the task's seed: ``run_method`` does before the method,
        ``fit`` before training."""
        set_seed(self.seed)

    @contextmanager
    def untimed(self):
        """A block left out of the method's wall time (``method_seconds``, RTE), e.g. per-epoch evaluation: its
        seconds accumulate in ``untimed_seconds``, which the unlearning step subtracts (CUDA synchronised)."""
        cuda = self.device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            if cuda:
                torch.cuda.synchronize(self.device)
            self.untimed_seconds += time.perf_counter() - start

