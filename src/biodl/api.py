"""The Python API: :func:`load` a trained run once and score inputs in memory or from files
(:class:`Model`), and train, evaluate, predict and report for every recipe and data kind as
the CLI does (from :mod:`biodl.pipeline`), plus the sequence-file helpers. Example::

    import biodl
    model = biodl.load("biodl-demo")                      # a run of `biodl train` / `biodl demo`
    model.predict(["ACGTGGACAGCGCCTGGTGCT" * 5])           # id, logit_Bound, prob_Bound, called_Bound
    model.evaluate(["ACGT" * 25, "TTGA" * 25], labels=[1, 0])["metrics"]
    model.module                                           # the torch network (eval mode)

Walk-through: ``docs/python.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from biodl.errors import BiodlInputError
from biodl.kinds.base import prediction_frame, write_evaluation
from biodl.kinds.sequences.kind import load_table
from biodl.pipeline import evaluate, predict, report, train

if TYPE_CHECKING:
    import pandas as pd

RESOURCES = Path(__file__).parent / "resources"

__all__ = [
    "RESOURCES",
    "Model",
    "evaluate",
    "load",
    "load_table",
    "predict",
    "prediction_frame",
    "report",
    "train",
    "write_evaluation",
]


class Model:
    """A trained model, loaded once, that scores inputs as ``biodl predict`` and ``biodl
    evaluate`` do: a file of any format the CLI reads, or, for the kinds that take them,
    Python objects (a list of sequences or SMILES, a dict or Series of id -> item, a DataFrame;
    :attr:`memory_inputs` says which).

    Parameters
    ----------
    run
        A run directory of ``biodl train`` (or ``biodl demo``), or its ``model.pt``.
    device
        ``cpu``, ``cuda``, ``cuda:1``, ``mps``; :meth:`to` moves the model later.
    """

    def __init__(self, run: str | Path, device: str = "cpu") -> None:
        from biodl.io._util import check_path_arg
        from biodl.pipeline import _load, _run_state

        check_path_arg(run, "the run (a run directory of `biodl train`, or its model.pt)")
        path = Path(run)
        if not path.exists():
            raise BiodlInputError(
                "not found (give a run directory of `biodl train`, or its model.pt)", path=path
            )
        _run_state(path, "predict")
        self.path = path
        self.module, self.meta, self.kind, self.recipe = _load(path, device)
        self.device = self._where()  # where it is ("auto" resolved), as a string

    # ------------------------------------------------------------------ what it is
    @property
    def system(self) -> str:
        """The recipe the model was trained with (``deepbind``, ``neural-fp``, ...)."""
        return self.meta.recipe

    @property
    def task(self) -> str:
        """``binary``, ``multilabel``, ``multiclass`` or ``regression``."""
        return self.meta.task

    @property
    def label_names(self) -> list[str]:
        """The model's outputs, in order (D-GEX: its target genes)."""
        return list(self.meta.label_names or []) or self.kind.output_names(self.meta)

    @property
    def memory_inputs(self) -> str:
        """The Python objects :meth:`predict` takes besides a path ("" if files only)."""
        return self.kind.memory_inputs

    def __repr__(self) -> str:
        return (
            f"biodl.Model({str(self.path)!r}: {self.system}, {self.kind.name}, {self.task}, "
            f"{len(self.label_names)} output(s), device {self.device!r})"
        )

    def to(self, device: Any) -> Model:
        """Move the network to ``device`` (a name or a ``torch.device``); returns the model."""
        from biodl.train.predict import torch_device

        self.module.to(torch_device(str(device)))
        self.device = self._where()
        return self

    def _where(self) -> str:
        p = next(self.module.parameters(), None)
        return str(p.device) if p is not None else "cpu"

    # ------------------------------------------------------------------ use
    def _options(self, command: str, options: dict[str, Any]) -> dict[str, Any]:
        from biodl.pipeline import kind_options

        opts, _ = kind_options(self.recipe, self.kind, dict(options), command, None)
        return opts

    def _check(self, data: Any) -> None:
        """A ``str`` is a path: one that is no file but looks like an item gets the hint."""
        if isinstance(data, str) and not Path(data).exists() and self.kind.memory_inputs:
            listed = self.kind.memory_inputs.startswith("a list")
            hint = (
                " (in-memory inputs go in a list: model.predict([...]))"
                if listed
                else f" (in memory, give {self.kind.memory_inputs})"
            )
            raise BiodlInputError(f"file not found; a str is read as a file path{hint}", path=data[:80])

    def predict(self, data: Any, *, batch_size: int = 256, **options: Any) -> pd.DataFrame:
        """Predictions for ``data`` (a path, or the in-memory inputs of :attr:`memory_inputs`),
        as the DataFrame ``biodl predict`` writes: input order and ids kept (an id column:
        ``id``, or ``sample`` / ``chrom, pos`` / ... by kind), then the outputs as each kind
        writes them (sequences: ``logit_*``, ``prob_*`` and ``called_*`` at the model's
        thresholds per output; regression: ``pred_*``; molecules also ``smiles`` and, with
        ``skip_invalid``, ``problem``; each kind's page in docs/ lists its own). ``options``: the
        kind's predict options (``biodl train --system SYSTEM --help-options`` lists them), e.g.
        ``skip_invalid=True`` for molecules."""
        from biodl.pipeline import predict_loaded

        self._check(data)
        opts = self._options("predict", options)
        return predict_loaded(
            self.module,
            self.meta,
            self.kind,
            data,
            opts,
            device=self.device,
            batch_size=batch_size,
            quiet=True,
        )

    def evaluate(
        self,
        data: Any,
        labels: Any = None,
        *,
        out_dir: str | Path | None = None,
        batch_size: int = 256,
        **options: Any,
    ) -> dict[str, Any]:
        """Metrics on labelled ``data``: a file (its labels in it; feature tables: ``labels`` is
        the label file, as ``--labels``), or in-memory inputs with
        ``labels`` (one per item; ``(items, outputs)`` for several outputs; class names for a
        multi-class model), or a DataFrame holding the model's label column(s) (or the ones
        ``labels`` names). With ``out_dir``, also the files ``biodl evaluate`` writes.
        Returns ``{"metrics": ..., "n": ..., "task": ..., "data": ...}``."""
        from biodl.io._util import check_output_dir, command_inputs, note_model
        from biodl.pipeline import evaluate_table, is_path, read_inputs

        self._check(data)
        if is_path(data) and labels is not None and any(o.name == "labels" for o in self.kind.options):
            options, labels = {**options, "labels": labels}, None  # feature tables: the label file
        with command_inputs():  # as in the CLI: out_dir may not replace the inputs or the run's record
            note_model(self.path)
            if out_dir is not None:
                check_output_dir(out_dir)
            opts = self._options("evaluate", options)
            table = read_inputs(self.kind, self.meta, data, opts, labelled=True, quiet=True, labels=labels)
            return evaluate_table(
                self.kind,
                self.module,
                self.meta,
                table,
                out_dir=out_dir,
                device=self.device,
                options=opts,
                batch_size=batch_size,
                quiet=True,
            )


def load(run: str | Path, device: str = "cpu") -> Model:
    """Load a trained run once (:class:`Model`); ``biodl.load`` is the same function."""
    return Model(run, device=device)
