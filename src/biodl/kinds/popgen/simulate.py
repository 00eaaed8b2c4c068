"""Coalescent simulations as training data (msprime): the scenarios and the sharded, resumable,
seeded writer behind ``biodl popgen simulate``.

Scenarios
---------
``flagel-rho``
    Flagel, Brandvain & Schrider (2019)'s recombination task, their exact prior (ms there,
    msprime here): 50 haploid chromosomes of 20,001 bp, mu = 1.5e-8 per bp per generation,
    constant size Ne drawn from {1000, 2000, 5000, 10000, 15000, 20000, 50000}, per-bp
    recombination rate r = 10^U(-8, -6); theta = 4 Ne mu L and rho = 4 Ne r (L - 1) (the
    whole region). Parameters stored: ``rho``, ``theta``, ``ne``, ``r``.
``sheehan-song-3epoch``
    Sheehan & Song (2016)'s 3-epoch size history, centred on their Zambian *D. melanogaster*
    estimates (stdpopsim's DroMel ``African3Epoch_1S16``: N = 544,200 now, 145,300 in the
    bottleneck, 652,700 ancestral; changes 2e5 and 2.2e6 generations ago; mu = 8.4e-9). Each size is
    log-uniform within a factor 4 of the published one, T1 log-uniform in [5e4, 8e5] and
    T2 - T1 in [5e5, 8e6] generations. 20 haploid chromosomes of 10 kb, r = 1e-8 (a uniform map).
    Parameters: ``N1`` (now), ``N2`` (bottleneck), ``N3`` (ancestral), ``T1``, ``T2``.
``selection``
    Neutral / hard sweep / soft sweep, one class in three: a sweep of a beneficial allele at the
    centre of a 100 kb region (msprime ``SweepGenicSelection``, s = 10^U(-2.5, -1)), ending
    ``tau`` = U(0, 0.02) x 4N generations ago; hard sweeps start at frequency 1/(2N), soft ones
    at U(0.02, 0.1) (from standing variation). Constant N = 10,000, mu = r = 1e-8, 20 haploid
    chromosomes. Parameters: ``class`` (0, 1, 2), ``s``, ``start_frequency``, ``tau``.

Every simulation ``i`` of a dataset draws its parameters and msprime seeds from
``numpy.random.SeedSequence([seed, i])``: the same ``seed`` gives the same matrices whatever the
chunk size or the number of worker processes. Shards of ``chunk`` simulations are written
atomically (temporary file + rename) as they finish; a rerun skips the finished ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from biodl.errors import BiodlError, BiodlInputError

DATASET_FORMAT = "biodl-popgen-1"

#: Sheehan & Song 2016's Zambian estimates, as in stdpopsim's DroMel African3Epoch_1S16
#: (checked against the stdpopsim catalog in tests/test_popgen.py).
ZAMBIA = {"N1": 544_200.0, "N2": 145_300.0, "N3": 652_700.0, "T1": 200_000.0, "T2": 2_200_000.0}
DROMEL_MU = 8.4e-9
FLAGEL_NE = (1000, 2000, 5000, 10000, 15000, 20000, 50000)
SELECTION_CLASSES = ("neutral", "hard", "soft")


@dataclass(frozen=True)
class Prior:
    """How a scenario draws (or derives) one stored parameter, for ``biodl popgen scenarios``.

    Attributes
    ----------
    dist
        ``log-uniform``, ``uniform``, ``choice`` (equal chances) or ``derived`` (computed from the
        drawn parameters).
    low, high
        The range of the values simulated (a sweep's range for ``s``, ``start_frequency`` and
        ``tau`` of the selection scenario, which are 0 for neutral simulations).
    text
        The rule in words, as the simulator applies it.
    unit
        Unit of the values (empty: none).
    values
        The values of a ``choice``.
    """

    dist: str
    low: float
    high: float
    text: str
    unit: str = ""
    values: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "distribution": self.dist,
            "low": float(f"{self.low:.10g}"),  # 4000, not 3999.9999999999995
            "high": float(f"{self.high:.10g}"),
        }
        if self.values:
            d["values"] = list(self.values)
        return {**d, "unit": self.unit, "rule": self.text}


@dataclass(frozen=True)
class Scenario:
    """One simulation scenario.

    Attributes
    ----------
    name, title
        Registry name and one line about it.
    task
        ``regression`` or ``multiclass`` (the default task of its targets).
    n_haplotypes
        Default number of sampled haploid chromosomes.
    length
        Sequence length (bp).
    params
        Names of the parameters stored per simulation (``class`` for a class index).
    default_target
        Targets ``biodl train`` infers when ``--target`` is not given.
    priors
        How each parameter of ``params`` is drawn or derived (:class:`Prior`).
    classes
        Class names of a classification scenario.
    draw
        ``draw(rng, fixed) -> {param: value}``: parameters from the prior (``fixed`` overrides).
    run
        ``run(params, n_haplotypes, seeds) -> tree sequence with mutations``.
    """

    name: str
    title: str
    task: str
    n_haplotypes: int
    length: float
    params: tuple[str, ...]
    default_target: tuple[str, ...]
    draw: Callable[[np.random.Generator, dict[str, float]], dict[str, float]]
    run: Callable[[dict[str, float], int, tuple[int, int]], Any]
    classes: tuple[str, ...] = ()
    fixable: tuple[str, ...] = field(default_factory=tuple)
    priors: dict[str, Prior] = field(default_factory=dict, hash=False)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))


def _mutate(ts, rate: float, seed: int):
    import msprime

    return msprime.sim_mutations(
        ts, rate=rate, model=msprime.BinaryMutationModel(), discrete_genome=False, random_seed=seed
    )


# ------------------------------------------------------------------ Flagel et al. 2019
FLAGEL_L = 20_001
FLAGEL_MU = 1.5e-8
FLAGEL_LOG10_R = (-8.0, -6.0)  # r = 10^U(-8, -6) per bp per generation


def _flagel_draw(rng, fixed):
    ne = float(fixed.get("ne", rng.choice(FLAGEL_NE)))
    r = float(fixed.get("r", 10 ** rng.uniform(*FLAGEL_LOG10_R)))
    return {
        "rho": 4 * ne * r * (FLAGEL_L - 1),
        "theta": 4 * ne * FLAGEL_MU * FLAGEL_L,
        "ne": ne,
        "r": r,
    }


def _flagel_run(p, n, seeds):
    import msprime

    ts = msprime.sim_ancestry(
        samples=[msprime.SampleSet(n, ploidy=1)],
        ploidy=2,  # diploid time scale: theta = 4 Ne mu L as in ms
        population_size=p["ne"],
        sequence_length=FLAGEL_L,
        recombination_rate=p["r"],
        discrete_genome=False,
        random_seed=seeds[0],
    )
    return _mutate(ts, FLAGEL_MU, seeds[1])


# ------------------------------------------------------------------ Sheehan & Song 2016
SS_L = 10_000
SS_R = 1e-8
SS_FACTOR = 4.0  # each size log-uniform within this factor of the published one
SS_T1 = (5e4, 8e5)  # T1 log-uniform in this range (generations)
SS_DT = (5e5, 8e6)  # T2 - T1 log-uniform in this range


def _ss_draw(rng, fixed):
    p = {
        k: float(fixed[k]) if k in fixed else _loguniform(rng, v / SS_FACTOR, v * SS_FACTOR)
        for k, v in ZAMBIA.items()
        if k[0] == "N"
    }
    p["T1"] = float(fixed.get("T1", _loguniform(rng, *SS_T1)))
    p["T2"] = float(fixed.get("T2", p["T1"] + _loguniform(rng, *SS_DT)))
    if p["T2"] <= p["T1"]:
        raise BiodlInputError(f"T2 ({p['T2']:g}) must be older than T1 ({p['T1']:g})")
    return p


def three_epoch_demography(p: dict[str, float]):
    """The msprime demography of a 3-epoch size history (sizes N1, N2, N3; changes at T1, T2)."""
    import msprime

    d = msprime.Demography()
    d.add_population(name="pop", initial_size=p["N1"])
    d.add_population_parameters_change(time=p["T1"], initial_size=p["N2"], population="pop")
    d.add_population_parameters_change(time=p["T2"], initial_size=p["N3"], population="pop")
    return d


def _ss_run(p, n, seeds):
    import msprime

    ts = msprime.sim_ancestry(
        samples=[msprime.SampleSet(n, ploidy=1)],
        ploidy=2,
        demography=three_epoch_demography(p),
        sequence_length=SS_L,
        recombination_rate=SS_R,
        discrete_genome=False,
        random_seed=seeds[0],
    )
    return _mutate(ts, DROMEL_MU, seeds[1])


# ------------------------------------------------------------------ selection
SEL_N = 10_000
SEL_L = 100_000
SEL_RATE = 1e-8
SEL_LOG10_S = (-2.5, -1.0)  # s = 10^U(-2.5, -1)
SEL_SOFT_START = (0.02, 0.1)  # a soft sweep's start frequency, U(0.02, 0.1)
SEL_TAU_4N = (0.0, 0.02)  # the sweep ended U(0, 0.02) x 4N generations ago


def _sel_draw(rng, fixed):
    c = int(fixed.get("class", rng.integers(0, 3)))
    if c not in (0, 1, 2):
        raise BiodlInputError(f"class must be 0 (neutral), 1 (hard) or 2 (soft), got {c}")
    s = float(fixed.get("s", 10 ** rng.uniform(*SEL_LOG10_S)))
    start = 1 / (2 * SEL_N) if c == 1 else float(rng.uniform(*SEL_SOFT_START))
    tau = float(fixed.get("tau", rng.uniform(*SEL_TAU_4N) * 4 * SEL_N))
    if c == 0:
        s, start, tau = 0.0, 0.0, 0.0
    return {"class": float(c), "s": s, "start_frequency": start, "tau": tau}


def _sel_run(p, n, seeds):
    import msprime

    kw = dict(
        samples=[msprime.SampleSet(n, ploidy=1)],
        ploidy=2,
        population_size=SEL_N,
        sequence_length=SEL_L,
        recombination_rate=SEL_RATE,
        discrete_genome=False,
        random_seed=seeds[0],
    )
    if p["class"] != 0:
        sweep = msprime.SweepGenicSelection(
            position=SEL_L / 2,
            start_frequency=p["start_frequency"],
            end_frequency=1 - 1 / (2 * SEL_N),
            s=p["s"],
            dt=1e-6,
        )
        model = [sweep, msprime.StandardCoalescent()]
        if p["tau"] > 0:
            model = [msprime.StandardCoalescent(duration=p["tau"]), *model]
        kw["model"] = model
    return _mutate(msprime.sim_ancestry(**kw), SEL_RATE, seeds[1])


def _n(v: float) -> str:
    """A number for the priors' rules, to 6 significant digits: ``2,176,800``, ``0.02``, ``1e-08``."""
    x = float(f"{v:.6g}")
    if x == int(x) and abs(x) < 1e12:
        return f"{int(x):,}"
    return f"{x:.6g}" if abs(x) >= 1e-3 else f"{x:.3g}"


_FLAGEL_PRIORS = {
    "rho": Prior(
        "derived",
        4 * min(FLAGEL_NE) * 10 ** FLAGEL_LOG10_R[0] * (FLAGEL_L - 1),
        4 * max(FLAGEL_NE) * 10 ** FLAGEL_LOG10_R[1] * (FLAGEL_L - 1),
        "4 ne r (L - 1), L = 20,001 bp",
        "whole region",
    ),
    "theta": Prior(
        "derived",
        4 * min(FLAGEL_NE) * FLAGEL_MU * FLAGEL_L,
        4 * max(FLAGEL_NE) * FLAGEL_MU * FLAGEL_L,
        f"4 ne mu L, mu = {FLAGEL_MU:g}",
        "whole region",
    ),
    "ne": Prior(
        "choice",
        min(FLAGEL_NE),
        max(FLAGEL_NE),
        f"{', '.join(map(_n, FLAGEL_NE))}, equal chances",
        "diploid individuals",
        values=tuple(float(v) for v in FLAGEL_NE),
    ),
    "r": Prior(
        "log-uniform",
        10 ** FLAGEL_LOG10_R[0],
        10 ** FLAGEL_LOG10_R[1],
        f"10^U({FLAGEL_LOG10_R[0]:g}, {FLAGEL_LOG10_R[1]:g})",
        "per bp per generation",
    ),
}
_SS_PRIORS = {
    **{
        k: Prior(
            "log-uniform",
            v / SS_FACTOR,
            v * SS_FACTOR,
            f"within x{SS_FACTOR:g} of {_n(v)} (published)",
            "diploid individuals",
        )
        for k, v in ZAMBIA.items()
        if k[0] == "N"
    },
    "T1": Prior("log-uniform", *SS_T1, "", "generations ago"),
    "T2": Prior(
        "derived",
        SS_T1[0] + SS_DT[0],
        SS_T1[1] + SS_DT[1],
        f"T1 + log-uniform({_n(SS_DT[0])}, {_n(SS_DT[1])})",
        "generations ago",
    ),
}
_SEL_PRIORS = {
    "class": Prior(
        "choice", 0.0, 2.0, "0 neutral, 1 hard, 2 soft sweep, equal chances", values=(0.0, 1.0, 2.0)
    ),
    "s": Prior(
        "log-uniform",
        10 ** SEL_LOG10_S[0],
        10 ** SEL_LOG10_S[1],
        f"10^U({SEL_LOG10_S[0]:g}, {SEL_LOG10_S[1]:g}); 0 when neutral",
    ),
    "start_frequency": Prior(
        "derived",
        1 / (2 * SEL_N),
        SEL_SOFT_START[1],
        f"hard: 1/(2N) = {_n(1 / (2 * SEL_N))}; soft: U({_n(SEL_SOFT_START[0])}, {_n(SEL_SOFT_START[1])}); "
        "0 when neutral",
    ),
    "tau": Prior(
        "uniform",
        SEL_TAU_4N[0] * 4 * SEL_N,
        SEL_TAU_4N[1] * 4 * SEL_N,
        f"U({_n(SEL_TAU_4N[0])}, {_n(SEL_TAU_4N[1])}) x 4N, N = {SEL_N:,}; 0 when neutral",
        "generations ago (sweep end)",
    ),
}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "flagel-rho",
            "Flagel et al. 2019 recombination prior: 50 chromosomes, 20,001 bp, rho = 4 Ne r (L-1)",
            "regression",
            50,
            FLAGEL_L,
            ("rho", "theta", "ne", "r"),
            ("rho",),
            _flagel_draw,
            _flagel_run,
            fixable=("ne", "r"),
            priors=_FLAGEL_PRIORS,
        ),
        Scenario(
            "sheehan-song-3epoch",
            "Sheehan & Song 2016 3-epoch sizes around DroMel African3Epoch_1S16: 20 chromosomes, 10 kb",
            "regression",
            20,
            SS_L,
            ("N1", "N2", "N3", "T1", "T2"),
            ("N1", "N2", "N3"),
            _ss_draw,
            _ss_run,
            fixable=("N1", "N2", "N3", "T1", "T2"),
            priors=_SS_PRIORS,
        ),
        Scenario(
            "selection",
            "neutral / hard sweep / soft sweep at the centre of 100 kb: 20 chromosomes, N = 10,000",
            "multiclass",
            20,
            SEL_L,
            ("class", "s", "start_frequency", "tau"),
            ("class",),
            _sel_draw,
            _sel_run,
            classes=SELECTION_CLASSES,
            fixable=("class", "s", "tau"),
            priors=_SEL_PRIORS,
        ),
    )
}


#: What ``--fix`` accepts per scenario: parameter -> (smallest value, whether it is excluded,
#: prior range). Values outside the prior are simulated, with a warning (a model trained on the
#: prior extrapolates to them); invalid ones are refused before anything is written.
_FIX_RULES: dict[str, dict[str, tuple[float, bool, tuple[float, float]]]] = {
    name: {k: (0.0, k not in ("class", "tau"), (sc.priors[k].low, sc.priors[k].high)) for k in sc.fixable}
    for name, sc in SCENARIOS.items()
}


def check_fixed(scenario: Scenario, fixed: dict[str, Any]) -> list[str]:
    """Refuse ``--fix`` values a simulation (or training on it) cannot use -- not a number, not
    positive where the scenario needs it (rates, sizes and times are on a log scale in training),
    a class that is not 0, 1 or 2, ``T2`` not older than ``T1`` -- and return warnings for values
    outside the scenario's prior.

    Raises
    ------
    BiodlInputError
        Naming ``--fix`` and the parameter.
    """
    import math

    bad = [k for k in fixed if k not in scenario.fixable]
    if bad:
        raise BiodlInputError(
            f"scenario {scenario.name} cannot fix {', '.join(bad)} "
            f"(it can fix: {', '.join(scenario.fixable)})"
        )
    rules = _FIX_RULES.get(scenario.name, {})
    warnings = []
    for k, v in fixed.items():
        try:
            if isinstance(v, bool) or not isinstance(v, (int, float, str)):
                raise TypeError
            v = float(v)
        except (TypeError, ValueError):
            raise BiodlInputError(f"--fix {k}={v}: the value must be a number") from None
        if not math.isfinite(v):
            raise BiodlInputError(f"--fix {k}={v:g}: the value must be a finite number")
        if k not in rules:
            continue
        lo, strict, (plo, phi) = rules[k]
        if k == "class":
            if v not in (0.0, 1.0, 2.0):
                raise BiodlInputError(f"--fix class={v:g}: class must be 0 (neutral), 1 (hard) or 2 (soft)")
            continue
        if v < lo or (strict and v == lo):
            raise BiodlInputError(
                f"--fix {k}={v:g}: {k} must be {'>' if strict else '>='} {lo:g} in scenario {scenario.name}"
            )
        if not plo <= v <= phi:
            warnings.append(f"--fix {k}={v:g} is outside the scenario's prior ({plo:g} to {phi:g})")
    if "T2" in fixed:
        t1 = float(fixed["T1"]) if "T1" in fixed else None
        t2 = float(fixed["T2"])
        if t1 is not None and t2 <= t1:
            raise BiodlInputError(f"--fix T2={t2:g} must be older than T1 ({t1:g})")
        t1_max = _FIX_RULES["sheehan-song-3epoch"]["T1"][2][1]
        if t1 is None and t2 <= t1_max:
            raise BiodlInputError(
                f"--fix T2={t2:g} may be younger than the T1 drawn from its prior (up to {t1_max:g}): give "
                f"T2 > {t1_max:g}, or fix T1 too"
            )
    return warnings


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name`` (a clear error listing them otherwise)."""
    if name not in SCENARIOS:
        raise BiodlInputError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def sim_seeds(seed: int, index: int) -> tuple[np.random.Generator, tuple[int, int]]:
    """The parameter generator and the (ancestry, mutation) msprime seeds of simulation ``index``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))
    a, m = rng.integers(1, 2**31 - 1, size=2)
    return rng, (int(a), int(m))


def simulate_one(
    scenario: Scenario, seed: int, index: int, n_haplotypes: int, fixed: dict[str, float] | None = None
) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """One simulation: ``(params, genotypes (S, n_haplotypes) int8 0/1, positions (S,) float64 bp)``."""
    rng, seeds = sim_seeds(seed, index)
    p = scenario.draw(rng, dict(fixed or {}))
    ts = scenario.run(p, n_haplotypes, seeds)
    g = ts.genotype_matrix().astype(np.int8, copy=False)
    pos = np.asarray(ts.tables.sites.position, dtype=np.float64)
    return p, g, pos


# ------------------------------------------------------------------ datasets on disk
def shard_path(out: Path, k: int) -> Path:
    return Path(out) / f"shard-{k:05d}.npz"


#: The arrays of a shard.
SHARD_ARRAYS = ("gt", "pos", "offsets", "params", "stats", "index")


def _shard_ok(path: Path, start: int, stop: int) -> bool:
    """Whether ``path`` is the finished shard of simulations ``start..stop - 1``: every array
    is read (a shard damaged inside one array, not only one cut short, is simulated again)."""
    if not path.exists():
        return False
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in SHARD_ARRAYS}
        idx = arrays["index"]
        return len(idx) == stop - start and int(idx[0]) == start and int(idx[-1]) == stop - 1
    except Exception:  # a truncated, damaged or foreign file: simulate it again
        return False


class _WorkerDied(Exception):
    """A worker process of the simulation pool ended (killed by a signal, the out-of-memory
    killer): its shard would never come back, and ``imap_unordered`` would wait for ever."""


def _pool_results(pool, tasks: list[Any], every: float = 2.0, fn=None):
    """``pool.imap_unordered(fn, tasks)`` (``fn``: :func:`_run_shard`), checking at each result,
    and every ``every`` seconds without one, that no worker has died (:class:`_WorkerDied`): a
    multiprocessing Pool replaces a dead worker but never gives its task back."""
    import multiprocessing as mp

    it = pool.imap_unordered(fn or _run_shard, tasks)
    workers = set(getattr(pool, "_pool", ()))

    def check() -> None:  # the pool goes on with new workers, but the dead one's shard is lost
        workers.update(getattr(pool, "_pool", ()))
        if any(w.exitcode not in (None, 0) for w in workers):
            raise _WorkerDied

    for _ in range(len(tasks)):
        while True:
            try:
                result = it.next(timeout=every)
            except mp.TimeoutError:
                check()
                continue
            check()  # stop at once, not after every other shard (a worker killed for memory)
            yield result
            break


def _abandon(pool) -> None:
    """Stop a pool one of whose workers died: its other workers are killed and the pool is left
    to the daemon threads (``terminate`` can wait for ever on a queue lock the dead worker held)."""
    from multiprocessing import pool as mp_pool

    handler = getattr(pool, "_worker_handler", None)
    if handler is not None:  # no new workers in place of the killed ones
        handler._state = mp_pool.TERMINATE
    for w in list(getattr(pool, "_pool", ())):
        with contextlib.suppress(Exception):
            w.kill()
    fin = getattr(pool, "_terminate", None)
    if fin is not None and hasattr(fin, "cancel"):
        fin.cancel()  # no terminate at exit either


def _worker_start(parent: int) -> None:
    """A simulation worker leaves Ctrl-C to the main process (which stops the pool and says
    so): the terminal sends SIGINT to every process of the job, and workers interrupted in their
    imports or simulations would each print a traceback. A worker whose main process is gone
    (killed) exits within a second instead of simulating on, or waiting, as an orphan."""
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # already so when started by simulate_dataset

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="biodl-parent-watch").start()


def _run_shard(task: dict[str, Any]) -> tuple[int, float]:
    """Simulate one shard and write it atomically (runs in a worker process)."""
    from biodl.kinds.popgen.stats import compute_stats

    sc = get_scenario(task["scenario"])
    start, stop, n_hap = task["start"], task["stop"], task["n_haplotypes"]
    t0 = time.perf_counter()
    gts, poss, params, stats = [], [], [], []
    for i in range(start, stop):
        p, g, pos = simulate_one(sc, task["seed"], i, n_hap, task["fixed"])
        gts.append(g)
        poss.append(pos)
        params.append([p[k] for k in sc.params])
        stats.append(compute_stats(g, pos, sc.length))
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in poss])]).astype(np.int64)
    arrays = dict(
        gt=np.concatenate(gts, axis=0) if gts else np.zeros((0, n_hap), np.int8),
        pos=np.concatenate(poss) if poss else np.zeros(0),
        offsets=offsets,
        params=np.asarray(params, np.float64).reshape(stop - start, len(sc.params)),
        stats=np.asarray(stats, np.float32),
        index=np.arange(start, stop, dtype=np.int64),
    )
    path = Path(task["path"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return stop - start, time.perf_counter() - t0


def _config(scenario: Scenario, n: int, seed: int, chunk: int, n_hap: int, fixed: dict) -> dict[str, Any]:
    from biodl.kinds.popgen.stats import STATS_VERSION, stat_names

    return {
        "format": DATASET_FORMAT,
        "scenario": scenario.name,
        "title": scenario.title,
        "n": int(n),
        "seed": int(seed),
        "chunk": int(chunk),
        "n_haplotypes": int(n_hap),
        "length": float(scenario.length),
        "params": list(scenario.params),
        "default_target": list(scenario.default_target),
        "task": scenario.task,
        "classes": list(scenario.classes),
        "fixed": {k: float(v) for k, v in fixed.items()},
        "stats_version": STATS_VERSION,
        "stat_names": stat_names(n_hap),
    }


_SAME = ("format", "scenario", "seed", "chunk", "n_haplotypes", "fixed", "stats_version")
PENDING = ".dataset.json.pending"


def _read_config(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError:
        raise BiodlInputError(f"{path.name} is not JSON; give another --out", path=path) from None


def _shard_number(path: Path) -> int | None:
    k = path.stem.split("-")[-1]
    return int(k) if k.isdigit() else None


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ShardProgress:
    """Finished shards of ``biodl popgen simulate`` on standard error
    (:class:`~biodl.io._util.StatusLine`): on a terminal one line rewritten in place as each
    shard finishes; elsewhere a whole line for a finished shard at most every ``plain_every``
    seconds. The line: ``[biodl] flagel-rho: 7 of 40 shard(s) done (1,750 of 10,000
    simulations), 62 s, about 5 min left``. When the last shard is done the terminal's line is
    cleared: the caller's summary line follows."""

    def __init__(
        self,
        name: str,
        shards: int,
        sims: int,
        show: bool,
        stream=None,
        plain_every: float = 30.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        from biodl.io._util import StatusLine

        self.line = StatusLine(show, stream, 0.0, plain_every, clock)
        self.name, self.shards, self.sims = name, shards, sims
        self.done_shards = self.done_sims = 0

    def shard_done(self, n: int) -> None:
        self.done_shards += 1
        self.done_sims += n
        if not self.line.show:
            return
        if self.done_shards >= self.shards:  # the summary line comes next
            self.line.clear()
            return
        now = self.line.clock()
        elapsed = now - self.line.t0
        left = elapsed * (self.sims - self.done_sims) / max(self.done_sims, 1)
        self.line.update(
            f"{self.name}: {self.done_shards} of {self.shards} shard(s) done ({self.done_sims:,} of "
            f"{self.sims:,} simulations), {_duration(elapsed)}, about {_duration(left)} left",
            now,
        )

    def end_line(self) -> None:
        """End a line left open on the terminal (an error stopped the run)."""
        self.line.end_line()


#: The lock a simulation holds in its dataset folder (two at once mixed their shards).
SIMULATE_LOCK = ".biodl-simulate.lock"


def simulate_dataset(scenario: str, n: int, seed: int, out: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`_simulate_dataset` holding the dataset folder's lock: a second simulation into the
    same ``out`` while one runs is refused, naming the process (two with other seeds both
    finished and left a dataset of mixed shards)."""
    from biodl.io._util import directory_lock

    with directory_lock(Path(out), SIMULATE_LOCK, "biodl popgen simulate", "dataset"):
        return _simulate_dataset(scenario, n, seed, out, **kwargs)


def _simulate_dataset(
    scenario: str,
    n: int,
    seed: int,
    out: str | Path,
    *,
    chunk: int = 250,
    workers: int | None = None,
    n_haplotypes: int | None = None,
    fixed: dict[str, float] | None = None,
    progress: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    """Simulate ``n`` datasets of ``scenario`` into ``out`` (``dataset.json`` + npz shards).

    Parameters
    ----------
    scenario
        A name of :data:`SCENARIOS`.
    n
        Number of simulations.
    seed
        Seed; simulation ``i`` depends only on ``(seed, i)``.
    out
        Dataset directory. Finished shards are kept (a rerun resumes, a larger ``n`` adds
        simulations); a directory of another scenario, seed, chunk size, sample size or fixed
        parameters, or holding more simulations than ``n``, is refused: shards are never deleted.
        ``dataset.json`` is written once the first shard of the call is done.
    chunk
        Simulations per shard (memory is bounded by ``chunk`` x ``workers`` matrices).
    workers
        Worker processes (default: the CPU cores; 1 simulates in this process).
    n_haplotypes
        Sampled haploid chromosomes (default: the scenario's).
    fixed
        Parameters fixed instead of drawn (e.g. ``{"ne": 5000}``: Flagel's theta = 6 test set);
        checked by :func:`check_fixed` before anything is written.
    progress
        Report finished shards on standard error (:class:`ShardProgress`); a line saying what is
        simulated, how and where comes first whatever ``progress`` is (not with ``quiet``).

    Returns
    -------
    dict
        ``dataset.json``'s content plus ``simulated`` (this call), ``skipped`` (shards kept),
        ``seconds`` (wall) and ``cpu_seconds`` (summed over workers).
    """
    from biodl.io._util import atomic_write_text, output_dir
    from biodl.kinds.base import log

    sc = get_scenario(scenario)
    if n < 1:
        raise BiodlInputError(f"--n must be at least 1, got {n}")
    if chunk < 1:
        raise BiodlInputError(f"--chunk must be at least 1, got {chunk}")
    from biodl.train.fit import check_seed

    check_seed(seed)
    fixed = dict(fixed or {})
    warnings = check_fixed(sc, fixed)
    fixed = {k: float(v) for k, v in fixed.items()}
    n_hap = int(sc.n_haplotypes if n_haplotypes is None else n_haplotypes)
    if n_hap < 4:
        raise BiodlInputError(f"--samples must be at least 4 haplotypes, got {n_hap}")
    for w in warnings:
        log(f"[biodl] warning: {w}: a model trained on the prior extrapolates to it", quiet)
    out = output_dir(Path(out))
    cfg = _config(sc, n, seed, chunk, n_hap, fixed)
    meta_path, pending_path = out / "dataset.json", out / PENDING
    n_shards = (n + chunk - 1) // chunk
    shards = sorted(out.glob("shard-*.npz"))
    other = sorted(
        e.name
        for e in out.iterdir()
        if not e.name.startswith(".") and e.name != "dataset.json" and not e.name.startswith("shard-")
    )
    if other:  # a dataset is not mixed into a folder of other files (a run, the user's data)
        raise BiodlInputError(
            f"holds other files ({', '.join(other[:5])}{', ...' if len(other) > 5 else ''}); a dataset is "
            "written into a new or empty folder, or one of an earlier `biodl popgen simulate`: give "
            "another --out",
            path=out,
        )
    prev = _read_config(meta_path) if meta_path.exists() else None
    if prev is None and shards:
        # dataset.json is written once the first shard is done; a run killed just before left the
        # configuration it started with in PENDING
        prev = _read_config(pending_path) if pending_path.exists() else None
        if prev is None:
            raise BiodlInputError(
                f"holds {len(shards)} simulation shard(s) but no dataset.json: they are of an unknown "
                "dataset; give another --out or remove them",
                path=out,
            )
    if prev is not None:
        diff = [k for k in _SAME if prev.get(k) != cfg[k]]
        if diff:

            def said(v: Any) -> str:  # --fix values as typed (ne=5000), none as "none"
                if isinstance(v, dict):
                    return (
                        ",".join(f"{a}={b:g}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items())
                        or "none"
                    )
                return repr(v)

            shown = ", ".join(f"{k} {said(prev.get(k))} here, {said(cfg[k])} asked" for k in diff)
            raise BiodlInputError(
                f"holds another dataset ({shown}); give another --out or remove it", path=out
            )
    beyond = [q for q in shards if _shard_number(q) is None or _shard_number(q) >= n_shards]
    held = max(int(prev.get("n", 0)) if prev is not None else 0, n)
    if held > n or beyond:
        held_txt = (
            f"is a dataset of {held} simulations"
            if held > n
            else f"holds shard(s) beyond --n {n} ({beyond[0].name})"
        )
        raise BiodlInputError(
            f"{held_txt}; --n {n} would drop "
            + (f"{held - n} of them" if held > n else "them")
            + f": give --n {held if held > n else 'as large as before'} or more (a larger --n adds "
            "simulations, the finished ones are kept), or another --out (finished shards are never "
            "deleted)",
            path=out,
        )
    # the configuration goes to dataset.json once the first shard of this call is written (or now,
    # when every shard is done): a run failing before that leaves no dataset behind, and a corrected
    # rerun into the same --out is not refused
    atomic_write_text(pending_path, json.dumps(cfg, indent=2) + "\n")

    def publish() -> None:
        atomic_write_text(meta_path, json.dumps(cfg, indent=2) + "\n")
        pending_path.unlink(missing_ok=True)

    tasks, skipped = [], 0
    for k in range(n_shards):
        start, stop = k * chunk, min(n, (k + 1) * chunk)
        p = shard_path(out, k)
        if _shard_ok(p, start, stop):
            skipped += 1
            continue
        tasks.append(
            dict(
                scenario=sc.name,
                seed=int(seed),
                start=start,
                stop=stop,
                n_haplotypes=n_hap,
                fixed=fixed,
                path=str(p),
            )
        )
    if not tasks:
        publish()
    workers = max(1, min(int(workers or os.cpu_count() or 1), max(len(tasks), 1)))
    if skipped:
        log(f"[biodl] {out}: {skipped} of {n_shards} shard(s) already finished, kept", quiet)
    t0 = time.perf_counter()
    cpu = 0.0
    todo = sum(t["stop"] - t["start"] for t in tasks)
    if tasks:
        log(
            f"[biodl] simulating {todo:,} {sc.name} simulation(s) in {len(tasks)} shard(s) of up to "
            f"{chunk:,} with {workers} process(es) into {out}",
            quiet,
        )
    bar = ShardProgress(sc.name, len(tasks), todo, progress and not quiet)
    written = 0
    try:
        if workers == 1:
            for t in tasks:
                done, sec = _run_shard(t)
                written += 1
                if written == 1:
                    publish()
                cpu += sec
                bar.shard_done(done)
        else:
            import multiprocessing as mp

            # a Pool, not concurrent.futures: on Ctrl-C (or an error) terminate() stops the
            # workers at once, where an executor would first finish every queued shard
            import signal

            # workers start with Ctrl-C ignored (a disposition kept across exec), so one pressed
            # while they import is not a traceback from each of them
            was = signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                pool = mp.get_context("spawn").Pool(
                    workers, initializer=_worker_start, initargs=(os.getpid(),)
                )
            finally:
                signal.signal(signal.SIGINT, was)
            abandoned = False
            try:
                for done, sec in _pool_results(pool, tasks):
                    written += 1
                    if written == 1:
                        publish()
                    cpu += sec
                    bar.shard_done(done)
            except _WorkerDied:
                abandoned = True
                _abandon(pool)
                raise BiodlError(
                    f"a simulation process died (killed, or out of memory?): {skipped + written} of "
                    f"{n_shards} shard(s) of {out} are finished, none half kept; rerun the same command "
                    "to simulate the rest (fewer --workers need less memory)"
                ) from None
            finally:
                if not abandoned:
                    pool.terminate()  # every shard is done here, or the call is stopping
                    pool.join()
    except (KeyboardInterrupt, SystemExit):  # Ctrl-C, or SIGTERM (the CLI's handler exits)
        from biodl.io._util import said_interrupted

        bar.end_line()
        said_interrupted()
        log(
            f"[biodl] interrupted: {skipped + written} of {n_shards} shard(s) of {out} are finished "
            f"({len(tasks) - written} left; a shard being written is never half kept); rerun the same "
            "command to simulate the rest",
            False,
        )
        raise
    finally:
        bar.end_line()
    wall = time.perf_counter() - t0
    if tasks:
        log(
            f"[biodl] simulated {todo} {sc.name} simulation(s) in {wall:.1f} s ({workers} process(es), "
            f"{1000 * cpu / max(todo, 1):.1f} ms CPU each) into {out}",
            quiet,
        )
    return {**cfg, "simulated": todo, "skipped": skipped, "seconds": wall, "cpu_seconds": cpu}


def dataset_config(path: str | Path) -> dict[str, Any]:
    """``dataset.json`` of a simulated dataset directory (a clear error if it is not one)."""
    p = Path(path)
    meta = p / "dataset.json"
    if p.exists() and not p.is_dir() and not p.is_file():
        from biodl.io._util import check_file

        check_file(p)  # a pipe (<(...)): said as such
    if not p.exists():  # before the dataset rule: a mistyped VCF name is not a call to simulate
        raise BiodlInputError(
            "not found (a dataset directory of `biodl popgen simulate`, or a VCF to predict on)", path=p
        )
    if not p.is_dir() or not meta.exists():
        raise BiodlInputError(
            "not a simulated dataset (a directory with dataset.json; make one with `biodl popgen simulate`)",
            path=p,
        )
    from biodl.io._util import note_input

    note_input(meta)  # an input: no --out may write over it (nor over a shard, see read_dataset)
    try:
        cfg = json.loads(meta.read_text())
    except (ValueError, UnicodeDecodeError):
        raise BiodlInputError("dataset.json is not JSON", path=meta) from None
    if not isinstance(cfg, dict):
        raise BiodlInputError(
            f"not a dataset description (a JSON {type(cfg).__name__}, not an object)", path=meta
        )
    if cfg.get("format") != DATASET_FORMAT:
        raise BiodlInputError(
            f"unknown dataset format {cfg.get('format')!r} (expected {DATASET_FORMAT})", path=meta
        )

    def count(v) -> bool:  # a whole number >= 1 (JSON's true is no count)
        return isinstance(v, int) and not isinstance(v, bool) and v >= 1

    # the keys every reader uses, checked here rather than failing deep inside one (edited, damaged)
    for key, ok, what in (
        ("n", count, "a number of simulations >= 1"),
        ("chunk", count, "a shard size >= 1"),
        ("n_haplotypes", count, "an integer >= 1"),
        (
            "length",
            lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
            "a length > 0",
        ),
        (
            "params",
            lambda v: isinstance(v, list) and v and all(isinstance(x, str) for x in v),
            "a list of names",
        ),
        ("scenario", lambda v: isinstance(v, str), "a scenario name"),
    ):
        if key not in cfg:
            raise BiodlInputError(f"dataset.json has no {key!r} ({what}): damaged or edited", path=meta)
        if not ok(cfg[key]):
            raise BiodlInputError(f"dataset.json: {key} must be {what}, got {cfg[key]!r}", path=meta)
    return cfg


__all__ = [
    "SCENARIOS",
    "Prior",
    "Scenario",
    "ShardProgress",
    "ZAMBIA",
    "check_fixed",
    "dataset_config",
    "get_scenario",
    "sim_seeds",
    "simulate_dataset",
    "simulate_one",
    "three_epoch_demography",
]
