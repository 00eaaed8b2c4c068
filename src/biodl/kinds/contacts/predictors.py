"""One call per contact predictor, from an alignment to a ``(L, L)`` score matrix: MI+APC,
PSICOV-like, plmDCA, the ported DEEPCON network and a trained PconsC2 run."""

from __future__ import annotations

import contextlib
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BiodlInputError

METHODS = ("pconsc2", "plmdca", "psicov", "mi", "deepcon")
_DEEPCON_IN_WHEEL = "deepcon/weights-rdd-covariance.hdf5"


def load_deepcon(weights: str | Path, device: str = "cpu"):
    """The DEEPCON network with its trained weights, from the ``deepcon`` wheel
    (``deepcon-0.4.0-py3-none-any.whl``), its ``weights-rdd-covariance.hdf5`` or a state dict
    saved by ``biodl contacts convert-deepcon`` (loaded with ``weights_only=True``)."""
    import torch

    from biodl.models.contacts import DeepCovFCN, deepcon_state_dict
    from biodl.train.predict import torch_device

    p = Path(weights)
    if not p.is_file():
        raise BiodlInputError(
            "DEEPCON weights not found: give the deepcon wheel (pip download deepcon --no-deps), its "
            "weights-rdd-covariance.hdf5, or a file of `biodl contacts convert-deepcon`",
            path=p,
        )
    if p.stat().st_size == 0:
        raise BiodlInputError("empty file, not DEEPCON weights", path=p)
    net = DeepCovFCN()
    with open(p, "rb") as fh:
        head = fh.read(8)
    try:
        # a wheel and a torch.save file are both zip archives: the wheel holds the Keras HDF5
        with zipfile.ZipFile(p) if head.startswith(b"PK") else contextlib.nullcontext() as z:
            names = z.namelist() if z is not None else []
            wheel = p.suffix == ".whl" or any(n.endswith(".dist-info/WHEEL") for n in names)
            if wheel and _DEEPCON_IN_WHEEL not in names:
                raise BiodlInputError(f"no {_DEEPCON_IN_WHEEL} in this wheel", path=p)
            if wheel:
                with tempfile.TemporaryDirectory() as td:
                    sd = deepcon_state_dict(z.extract(_DEEPCON_IN_WHEEL, td), net)
            elif head.startswith(b"\x89HDF"):
                sd = deepcon_state_dict(p, net)
            else:
                sd = torch.load(p, map_location="cpu", weights_only=True)
                sd = sd.get("state_dict", sd)
        net.load_state_dict(sd)
    except (ValueError, KeyError, RuntimeError, OSError, AttributeError, pickle.UnpicklingError,
            zipfile.BadZipFile, EOFError) as e:  # fmt: skip
        if isinstance(e, BiodlInputError):
            raise
        raise BiodlInputError(f"not DEEPCON weights ({type(e).__name__}: {str(e)[:200]})", path=p) from None
    return net.eval().to(torch_device(device))


def deepcon_map(msa, net, device: str = "cpu") -> np.ndarray:
    """DEEPCON's symmetric probability map ``(L, L)`` of an alignment."""
    import torch

    from biodl.kinds.contacts.coevolution import deepcov_features

    dev = next(net.parameters()).device
    x = deepcov_features(msa, dev)[None]
    with torch.no_grad():
        return torch.sigmoid(net(x))[0].double().cpu().numpy()


def check_variation(msa, path) -> None:
    """Refuse an alignment with nothing to read coevolution from: one sequence, or sequences that
    are all the same (every score would be floating-point noise, ranked as contacts)."""
    if msa.n_seqs < 2:
        raise BiodlInputError(
            "the alignment has one sequence only: no coevolution to read (give the query's family "
            "alignment, e.g. from HHblits or jackhmmer)",
            path=path,
        )
    varying = int((msa.codes != msa.codes[:1]).any(axis=0).sum())
    if varying < 2:  # coevolution is between two columns that vary; every score would be noise
        what = "are all the same (no column varies)" if not varying else "differ in one column only"
        raise BiodlInputError(
            f"the alignment's {msa.n_seqs} sequences {what}: no coevolution to read (give the query's "
            "family alignment, e.g. from HHblits or jackhmmer)",
            path=path,
        )


def resolve_method(
    method: str | None, model: str | Path | None = None, weights: str | Path | None = None
) -> str:
    """The contact method to run: ``method`` if given, else ``pconsc2`` with a ``model``,
    ``deepcon`` with ``weights``, else ``plmdca``.

    Raises
    ------
    BiodlInputError
        An unknown method, or a ``model`` / ``weights`` that the method would not use.
    """
    if model is not None and weights is not None:
        raise BiodlInputError(
            "give --model (a pconsc2 run) or --weights (deepcon), not both: they are two methods"
        )
    if method is None:
        method = "pconsc2" if model is not None else "deepcon" if weights is not None else "plmdca"
    method = method.lower()
    if method not in METHODS:
        raise BiodlInputError(f"unknown contact method {method!r} (one of {', '.join(METHODS)})")
    if model is not None and method != "pconsc2":
        raise BiodlInputError(
            f"--model (a run of `biodl train --system pconsc2`) is used by --method pconsc2 only, "
            f"not {method}: leave --method out, or drop --model"
        )
    if weights is not None and method != "deepcon":
        raise BiodlInputError(
            f"--weights (DEEPCON's) are used by --method deepcon only, not {method}: "
            "leave --method out, or drop --weights"
        )
    return method


def predict_map(
    msa,
    method: str | None = None,
    *,
    model: str | Path | None = None,
    weights: str | Path | None = None,
    device: str = "cpu",
    options: dict[str, Any] | None = None,
    progress=None,
) -> np.ndarray:
    """The ``(L, L)`` contact scores of ``method`` for an :class:`~biodl.kinds.contacts.io.MSA`
    of at least two sequences; ``progress`` (a callable) is told the steps and iterations.

    ``pconsc2`` needs ``model`` (a run of ``biodl train --system pconsc2``), ``deepcon``
    ``weights`` (see :func:`load_deepcon`); without ``method`` it is inferred from them (see
    :func:`resolve_method`). ``options``: ``identity``, ``plm_iter``, ``psicov_iter`` (a
    PconsC2 run uses its own)."""
    from biodl.kinds.contacts import coevolution as co

    o = dict(options or {})
    method = resolve_method(method, model, weights)
    check_variation(msa, msa.source)
    if method == "deepcon":
        if weights is None:
            raise BiodlInputError("--method deepcon needs --weights (the deepcon wheel or its HDF5 file)")
        return deepcon_map(msa, load_deepcon(weights, device), device)
    if method == "pconsc2":
        if model is None:
            raise BiodlInputError("--method pconsc2 needs --model, a run of `biodl train --system pconsc2`")
        import torch

        from biodl.kinds.contacts.kind import ContactData, coevolution_maps, stack_features
        from biodl.train import load_model
        from biodl.train.checkpoint import data_as

        net, meta = load_model(model, device=device)
        if meta.recipe != "pconsc2":
            raise BiodlInputError(f"--model is a {meta.recipe} run, not pconsc2", path=model)
        d = data_as(ContactData, meta.data)
        maps, w, _ = coevolution_maps(msa, d.identity, d.plm_iter, d.psicov_iter, device, progress)
        x = torch.from_numpy(stack_features(msa, maps, w, d.min_sep))[None]
        with torch.no_grad():
            return torch.sigmoid(net(x.to(next(iter(net.buffers())).device)))[0].double().cpu().numpy()
    ident = o.get("identity", 0.8)
    if progress is not None:
        progress("sequence weights")
    w = co.sequence_weights(msa, ident, device)
    if method == "mi":
        return co.mutual_information(msa, w, device=device)
    if method == "psicov":
        return co.psicov(msa, w, max_iter=o.get("psicov_iter", 10), device=device, progress=progress)
    return co.plmdca(msa, w, max_iter=o.get("plm_iter", 50), device=device, progress=progress)
