"""Training engine: Lightning training plan, metrics, Trainer factory, checkpoints."""

from biodl.train.engine import FitResult, TrainConfig, export_model, fit, load_model, predict_logits, seed_all
from biodl.train.metrics import compute_metrics
from biodl.train.module import TaskModule, masked_loss

__all__ = [
    "FitResult",
    "TaskModule",
    "TrainConfig",
    "compute_metrics",
    "export_model",
    "fit",
    "load_model",
    "masked_loss",
    "predict_logits",
    "seed_all",
]
