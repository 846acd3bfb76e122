# trainlab_plugin_example/workload.py
import torch
from torch import nn

from trainlab.registry import register_workload
from trainlab.spec import Batch, Target, Workload


@register_workload("plugin_blobs")
class Blobs(Workload):
    """Two Gaussian blobs in 8 dimensions, a small MLP, accuracy >= 0.9."""

    name = "plugin_blobs"
    target = Target("accuracy", 0.9, higher_is_better=True)
    max_runtime = 5.0  # seconds of timed training
    eval_period = 0.1  # seconds of timed training between evaluations
    step_hint = 100  # updates a tuned baseline needs: the schedules' unit
    batch_size_hint = 32

    def __init__(self, device="cpu"):
        self.device = torch.device(device)
        gen = torch.Generator().manual_seed(1234)  # fixed data: the workload never changes
        labels = torch.randint(2, (1024,), generator=gen)
        inputs = torch.randn(1024, 8, generator=gen) + labels[:, None] * 1.5
        self.splits = {
            "train": (inputs[:512], labels[:512]),
            "valid": (inputs[512:768], labels[512:768]),
            "test": (inputs[768:], labels[768:]),
        }

    @property
    def train_size(self):
        return 512

    def get_examples(self, indices):
        x, y = self.splits["train"]
        return Batch(x[indices].to(self.device), y[indices].to(self.device), indices)

    def init_model(self, seed):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2)).to(self.device)

    def loss_from_outputs(self, outputs, batch, label_smoothing=0.0, soft_targets=None):
        if soft_targets is not None:
            return -(soft_targets * outputs.log_softmax(-1)).sum(-1)
        return nn.functional.cross_entropy(
            outputs, batch.targets, reduction="none", label_smoothing=label_smoothing
        )

    @torch.no_grad()
    def evaluate(self, model, split="valid"):
        was_training = model.training
        model.eval()
        x, y = (t.to(self.device) for t in self.splits[split])
        logits = model(x)
        model.train(was_training)
        return {
            "accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "loss": nn.functional.cross_entropy(logits, y).item(),
        }
