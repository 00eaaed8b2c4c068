"""Randomized deep feature selection: stability selection over DFS fits (after DECRES's
``randomized_dfs``, Li, Chen & Wasserman 2016, and Meinshausen & Buehlmann's randomized lasso).

Each run fits DFS at the chosen penalty on a random subsample of the training rows, with every
feature's L1 penalty multiplied by ``1 / U(alpha, 1)`` (so which of two correlated features
survives is decided afresh each run); a feature's stability is the fraction of runs that keep
it. Features kept by most runs are the ones the data really needs.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import torch


def randomized_dfs(
    kind, ctx, meta, splits, n_runs: int, alpha: float = 0.5, fraction: float = 0.5
) -> pd.DataFrame:
    """Selection frequency of every feature over ``n_runs`` randomized DFS fits.

    Parameters
    ----------
    kind
        The features kind (its :meth:`~biodl.kinds.base.DataKind.fit` trains each run).
    ctx, meta, splits
        The run's training context, meta (``model_kwargs`` with the chosen penalty) and splits.
    n_runs
        Number of randomized fits (each in ``ctx.out/stability/run<k>``).
    alpha
        Penalty weights are ``1 / U(alpha, 1)``.
    fraction
        Fraction of the training rows each run sees.

    Returns
    -------
    pandas.DataFrame
        ``feature``, ``frequency`` (0-1), ``runs``; most stable first.
    """
    from biodl.kinds.base import DataKind
    from biodl.train.fit import seed_all

    names = meta.data["features"]
    rng = np.random.default_rng([ctx.config.seed, 4242])
    counts = np.zeros(len(names))
    n = len(splits.train)
    for b in range(n_runs):
        rows = np.sort(rng.choice(n, max(2, int(round(fraction * n))), replace=False))
        weights = 1.0 / rng.uniform(alpha, 1.0, len(names))
        sub = replace(splits, train=splits.train.subset(rows))
        seed_all(ctx.config.seed + 1 + b)
        model = ctx.recipe.build(**meta.model_kwargs)
        model.scale.fit(torch.from_numpy(sub.train.x))
        model.l1_scale.copy_(torch.from_numpy(weights).float())
        model, _, _ = DataKind.fit(
            kind, replace(ctx, out=ctx.out / "stability" / f"run{b}"), model, meta, sub
        )
        counts += model.selected().cpu().numpy()
        ctx.log(f"randomized DFS {b + 1}/{n_runs}: {int(model.selected().sum())} features kept")
    out = pd.DataFrame({"feature": names, "frequency": counts / max(n_runs, 1), "runs": n_runs})
    return out.sort_values("frequency", ascending=False, kind="stable").reset_index(drop=True)
