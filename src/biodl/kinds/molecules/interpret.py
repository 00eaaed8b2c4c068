"""Which substructures switch on a fingerprint bit (Duvenaud et al. 2015, section 4.2).

In a neural fingerprint every atom ``a`` writes, in every round ``r``, a softmax over the
bits; that assignment depends only on the atoms within ``r`` bonds of ``a``. The fragments
that most activate bit ``k`` are therefore the radius-``r`` neighbourhoods with the largest
assignment to ``k``. They are drawn with RDKit (the neighbourhood highlighted inside its
molecule) and can be added to an HTML report as a :class:`~biodl.report.html.Section`.

Bits to show: for a linear head, the bits with the largest positive and negative weights
(the paper's "most predictive" features); for a network head, the bits whose fingerprint
value correlates most strongly (positively and negatively) with the model's prediction on
the molecules given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem

from biodl.errors import BiodlInputError
from biodl.kinds.molecules.featurize import GraphBatch, mols_to_graphs

__all__ = [
    "Fragment",
    "bit_scores",
    "draw_fragments",
    "remove_stale_pictures",
    "select_bits",
    "substructure_section",
    "top_fragments",
]

PICTURE = re.compile(r"bit\d+\.png")  # the name of every picture substructure_section writes


@dataclass
class Fragment:
    """One atom neighbourhood and its activation of a fingerprint bit."""

    bit: int
    activation: float
    mol_index: int
    atom: int
    radius: int
    atoms: list[int]
    bonds: list[int]
    smiles: str
    fragment_smiles: str


def _net(model: torch.nn.Module):
    fp = getattr(model, "fingerprint", None)
    if fp is None or not hasattr(fp, "atom_activations"):
        raise BiodlInputError(
            "substructures need a neural-fp model (circular fingerprints have no learned bits)"
        )
    return fp


@torch.no_grad()
def _activations(model, mols: Sequence[Chem.Mol], batch_size: int = 128):
    """Per molecule: fingerprint ``(L,)`` and per-round atom activations ``(R+1, n_atoms, L)``."""
    fpnet = _net(model)
    model.eval()
    graphs = mols_to_graphs(mols, bool(getattr(model, "implicit_h", True)))
    p = next(model.parameters(), None)
    dev = p.device if p is not None else torch.device("cpu")  # a GPU model: its inputs go there
    fps, acts = [], []
    for s in range(0, len(graphs), batch_size):
        chunk = graphs[s : s + batch_size]
        g = GraphBatch.from_graphs(chunk).to(dev)
        a = torch.stack(fpnet.atom_activations(g)).cpu()  # (R+1, N, L), atoms in batch order
        fps.append(fpnet(g).cpu())
        mol, index = g.atom_mol.cpu(), g.atom_index.cpu()
        for j in range(len(chunk)):
            sel = (mol == j).nonzero(as_tuple=True)[0]
            order = torch.argsort(index[sel])
            acts.append(a[:, sel[order]].numpy())
    return torch.cat(fps).numpy(), acts


def bit_scores(model, mols: Sequence[Chem.Mol], output: int = 0) -> np.ndarray:
    """How predictive every fingerprint bit is, ``(L,)``: the linear head's weight of the bit, or
    (network head) the Pearson correlation between the bit and the prediction over ``mols``."""
    head = getattr(model, "head", None)
    w = getattr(head, "linear_weight", None)
    if w is not None:
        score = w.detach()[output].cpu().numpy().astype(float)
    else:
        fps, _ = _activations(model, mols)
        with torch.no_grad():
            dev = next(model.head.parameters()).device
            pred = model.head(torch.from_numpy(fps).to(dev))[:, output].cpu().numpy()
        fc = fps - fps.mean(0)
        pc = pred - pred.mean()
        denom = np.sqrt((fc**2).sum(0) * (pc**2).sum()) + 1e-12
        score = (fc * pc[:, None]).sum(0) / denom
    return np.asarray(score, float)


def select_bits(model, mols: Sequence[Chem.Mol], n: int = 2, output: int = 0) -> list[tuple[int, float]]:
    """The most predictive bits: ``[(bit, score), ...]``, half positive, half negative
    (score: :func:`bit_scores`); at most every bit of the fingerprint, each once."""
    score = bit_scores(model, mols, output)
    n = min(n, len(score))  # more than the fingerprint has: every bit, not some twice
    order = np.argsort(score)
    pos = [int(i) for i in order[::-1][: (n + 1) // 2]]
    neg = [int(i) for i in order[: n // 2]]
    return [(b, float(score[b])) for b in pos + neg]


def top_fragments(
    model, mols: Sequence[Chem.Mol], bit: int, k: int = 6, smiles: Sequence[str] | None = None
) -> list[Fragment]:
    """The ``k`` atom neighbourhoods (at most one per molecule) that most activate ``bit``."""
    fps, acts = _activations(model, mols)
    L = fps.shape[1]
    if not 0 <= bit < L:
        raise BiodlInputError(f"bit {bit} is out of range (the fingerprint has {L} bits)")
    best = []
    for mi, a in enumerate(acts):
        if a.shape[1] == 0:
            continue
        v = a[:, :, bit]  # (R+1, n_atoms)
        r, at = np.unravel_index(int(np.argmax(v)), v.shape)
        best.append((float(v[r, at]), mi, int(at), int(r)))
    best.sort(key=lambda t: -t[0])
    out = []
    for act, mi, at, r in best[:k]:
        mol = mols[mi]
        bonds = list(Chem.FindAtomEnvironmentOfRadiusN(mol, r, at)) if r > 0 else []
        atoms = sorted(
            {at}
            | {
                x
                for b in bonds
                for x in (mol.GetBondWithIdx(b).GetBeginAtomIdx(), mol.GetBondWithIdx(b).GetEndAtomIdx())
            }
        )
        frag = Chem.MolFragmentToSmiles(mol, atomsToUse=atoms, bondsToUse=bonds or None, canonical=True)
        smi = smiles[mi] if smiles is not None else Chem.MolToSmiles(mol)
        out.append(Fragment(bit, act, mi, at, r, atoms, bonds, smi, frag))
    return out


def draw_fragments(
    fragments: Sequence[Fragment], mols: Sequence[Chem.Mol], path: str | Path, per_row: int = 3
) -> Path:
    """Draw the molecules of ``fragments`` with each neighbourhood highlighted (PNG)."""
    from rdkit.Chem import Draw

    from biodl.report.plots import write_bytes_atomic

    if not fragments:
        raise BiodlInputError("no fragments to draw")
    img = Draw.MolsToGridImage(
        [mols[f.mol_index] for f in fragments],
        molsPerRow=per_row,
        subImgSize=(300, 240),
        legends=[
            f"bit {f.bit}: {f.activation:.2f} (r={f.radius}) {f.fragment_smiles}"[:60] for f in fragments
        ],
        highlightAtomLists=[f.atoms for f in fragments],
        highlightBondLists=[f.bonds for f in fragments],
        returnPNG=True,
    )
    data = img if isinstance(img, bytes) else _pil_png(img)
    return write_bytes_atomic(path, data)


def _pil_png(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def remove_stale_pictures(out_dir: str | Path, bits: Sequence[int]) -> list[str]:
    """Remove the pictures of an earlier call from ``out_dir``: files named ``bit<k>.png`` (that
    name only; nothing else is touched) for ``k`` not in ``bits``. Says which on standard error;
    returns their names."""
    from biodl.io._util import note

    od = Path(out_dir)
    keep = {f"bit{b}.png" for b in bits}
    stale = sorted(
        (p for p in od.iterdir() if PICTURE.fullmatch(p.name) and p.name not in keep and not p.is_dir()),
        key=lambda p: int(p.name[3:-4]),
    )
    removed = []
    for p in stale:
        try:
            p.unlink()
            removed.append(p.name)
        except FileNotFoundError:
            pass
        except OSError as e:
            note(f"[biodl] warning: could not remove {p}, a picture of an earlier call: {e.strerror or e}")
    if removed:
        note(
            f"[biodl] note: removed {len(removed)} picture(s) of bits an earlier call drew from {od}: "
            f"{', '.join(removed)}"
        )
    return removed


def substructure_section(
    model,
    mols: Sequence[Chem.Mol],
    out_dir: str | Path,
    bits: Sequence[int] | None = None,
    n_bits: int = 2,
    per_bit: int = 6,
    smiles: Sequence[str] | None = None,
    output: int = 0,
):
    """Draw the top fragments of selected bits and return an HTML report section.

    Parameters
    ----------
    model
        A trained :class:`~biodl.models.neural_fp.NeuralFPNet`.
    mols
        Molecules to search (e.g. the training set).
    out_dir
        Where ``bit<k>.png`` and ``substructures.tsv`` are written.
    bits
        Bits to show (default: :func:`select_bits` with ``n_bits``); their ``score`` is
        :func:`bit_scores`' all the same.
    per_bit
        Fragments per bit.

    Pictures ``bit<k>.png`` of bits not shown this time, left in ``out_dir`` by an earlier call,
    are removed (:func:`remove_stale_pictures`), so the folder holds one call's output.

    Returns
    -------
    (Section, pandas.DataFrame)
        The report section (text, table of fragments, one image per bit) and the fragment
        table (also written to ``out_dir/substructures.tsv``).
    """
    import pandas as pd

    from biodl.io._util import atomic_write_text, output_dir
    from biodl.report.html import Section
    from biodl.train.ensemble import Ensemble

    od = Path(out_dir)
    member_note = ""
    if isinstance(model, Ensemble):  # members learn their own bits: show the first member's
        member_note = (
            f" The model is an ensemble of {model.size} networks with bits of their own; "
            "member 1's are shown."
        )
        model = model.members[0]

    output_dir(od)
    earlier = (od / "substructures.tsv").exists()
    if bits:
        score = bit_scores(model, mols, output)
        want = list(dict.fromkeys(int(b) for b in bits))  # in the order given, once each
        bad = [b for b in want if not 0 <= b < len(score)]
        if bad:
            raise BiodlInputError(
                f"bit(s) {', '.join(map(str, bad))} out of range: the fingerprint has {len(score)} bits "
                f"(0 to {len(score) - 1})"
            )
        chosen = [(b, float(score[b])) for b in want]
    else:
        chosen = select_bits(model, mols, n_bits, output)
    images, rows = [], []
    for b, score in chosen:
        frags = top_fragments(model, mols, b, per_bit, smiles)
        png = draw_fragments(frags, mols, od / f"bit{b}.png")
        images.append((png, f"Fragments most activating bit {b} (score {score:+.3f})"))
        for f in frags:
            rows.append(
                {
                    "bit": b,
                    "score": score,
                    "activation": f.activation,
                    "radius": f.radius,
                    "fragment": f.fragment_smiles,
                    "molecule": f.smiles,
                    "atom": f.atom,
                }
            )
    df = pd.DataFrame(rows)
    atomic_write_text(od / "substructures.tsv", df.to_csv(sep="\t", index=False, float_format="%.4g"))
    if earlier:  # the folder holds an earlier call's output: drop its pictures of other bits
        remove_stale_pictures(od, [b for b, _ in chosen])
    head = getattr(getattr(model, "head", None), "kind", "mlp")
    how = (
        "bits with the highest and the lowest weight in the linear output layer"
        if head == "linear"
        else "bits whose value has the highest and the lowest correlation with the prediction"
    )
    text = [
        "Each fingerprint bit is a soft, learned substructure detector. Shown are the atom "
        "neighbourhoods (highlighted; radius r bonds around the central atom) that most activate "
        f"selected bits ({how}), at most one per molecule, as in Duvenaud et al. 2015, Fig. 4." + member_note,
    ]
    if len(df):
        text.append(
            f"Table: the {min(3, per_bit)} most activating fragments of each bit (pictures: up to {per_bit}; "
            "all in substructures.tsv)."
        )
    table = (
        df.groupby("bit").head(3)[["bit", "score", "activation", "radius", "fragment"]].reset_index(drop=True)
        if len(df)
        else None
    )
    return Section("Substructures that activate fingerprint bits", text=text, table=table, images=images), df
