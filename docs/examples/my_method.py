"""Uniform forgetting, a toy method for docs/adding_a_method.md: fine-tune on the retain set with cross-entropy while
pushing the model's predictions on the forget set towards the uniform distribution (loss = CE(D_r) +
beta * CE(uniform, D_f)). Not a paper's method, so docs/deviations.md has no section for it."""

from __future__ import annotations  # annotations are read as text (constraints, the torch-free catalog)

import torch.nn.functional as F

from ..values import Positive, PositiveInt
from .registry import Paper, register_method
from .task import UnlearnTask

TOY = Paper("unlearnbench, docs/adding_a_method.md", "Uniform forgetting (a toy)",
            implements="retain cross-entropy plus beta times the cross-entropy to the uniform on the forget set")


@register_method(paper=TOY)
def my_method(model, task: UnlearnTask, *, epochs: Positive = 2, lr: Positive = 0.01, beta: Positive = 1.0,
              batch_size: PositiveInt = 64):
    """CE on retain batches plus ``beta`` x CE between the uniform distribution and the model on forget batches
    (a second, seeded stream of batches read beside the retain set)."""
    recipe = task.recipe(epochs=epochs, lr=lr, batch_size=batch_size)  # the original's optimiser, validated
    forget = task.loader(task.forget, batch_size, stream="forget").forever()

    def loss(m, x, y):
        xf, _ = next(forget)
        return F.cross_entropy(m(x), y) - beta * F.log_softmax(m(xf), dim=1).mean()

    task.fit(model, task.loader(task.retain, batch_size), recipe, loss_fn=loss, desc="my_method")
    return model
