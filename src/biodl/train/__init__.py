"""Training engine: training plans, the one runner (:func:`fit`), the DataModule and split,
the one inference loop (:func:`predict`), run metadata and model files, metrics.

Importing this package imports Lightning; the CLI and the registry import it lazily.
"""

from biodl.train.checkpoint import (
    RunMeta,
    load_model,
    read_model_meta,
    read_run_json,
    save_model,
    write_run_json,
)
from biodl.train.datamodule import DataModule, EpochSampler, split_indices
from biodl.train.fit import FitResult, TrainConfig, fit, fit_model, seed_all
from biodl.train.metrics import MONITOR, compute_metrics
from biodl.train.plans import TrainingPlan, masked_loss
from biodl.train.predict import cpu_threads, predict, predict_tensor, torch_device

__all__ = [
    "MONITOR",
    "DataModule",
    "EpochSampler",
    "FitResult",
    "RunMeta",
    "TrainConfig",
    "TrainingPlan",
    "compute_metrics",
    "cpu_threads",
    "fit",
    "fit_model",
    "load_model",
    "masked_loss",
    "predict",
    "predict_tensor",
    "read_model_meta",
    "read_run_json",
    "save_model",
    "seed_all",
    "split_indices",
    "torch_device",
    "write_run_json",
]
