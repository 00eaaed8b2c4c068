"""Molecule featurisation as in Duvenaud et al. (2015), batched graphs, circular fingerprints.

Atom features (62, as in the paper and its reference code): one-hot element (43 elements +
"other"), one-hot degree (0-5), one-hot total number of hydrogens (0-4), one-hot implicit
valence (0-5) and an aromaticity flag. Bond features (6): one-hot bond type (single,
double, triple, aromatic), conjugated, in a ring. Hydrogens are implicit.

Batched graphs are plain PyTorch: the atoms of all molecules of a minibatch are stacked into
one ``(n_atoms, 62)`` matrix, bonds into ``(n_bonds, 6)``, and an ``(2, n_bonds)`` index plus
an atom-to-molecule vector describe the graph; the network sums over neighbours and over the
atoms of a molecule with ``index_add_``.

Why not PyTorch Geometric? The neural fingerprint needs exactly two sparse operations (sum
over neighbours, sum over atoms per molecule), both a single ``index_add_``. PyG (and its
optional ``torch_scatter``/``torch_sparse`` wheels) is compiled against specific torch
versions and would pin or break biodl's ``torch`` pin for no gain in speed at these graph
sizes (10-60 heavy atoms); plain tensors also keep the batches picklable, device-movable
with ``.to`` and checkpointable without extra dependencies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem, rdBase

__all__ = [
    "ATOM_FDIM",
    "BOND_FDIM",
    "ELEMENTS",
    "GraphBatch",
    "MolGraph",
    "atom_features",
    "bond_features",
    "collate_molecules",
    "mol_to_graph",
    "mols_to_graphs",
    "morgan_fingerprints",
]

ELEMENTS: tuple[str, ...] = (
    "C",
    "N",
    "O",
    "S",
    "F",
    "Si",
    "P",
    "Cl",
    "Br",
    "Mg",
    "Na",
    "Ca",
    "Fe",
    "As",
    "Al",
    "I",
    "B",
    "V",
    "K",
    "Tl",
    "Yb",
    "Sb",
    "Sn",
    "Ag",
    "Pd",
    "Co",
    "Se",
    "Ti",
    "Zn",
    "H",
    "Li",
    "Ge",
    "Cu",
    "Au",
    "Ni",
    "Cd",
    "In",
    "Mn",
    "Zr",
    "Cr",
    "Pt",
    "Hg",
    "Pb",
)
"""Elements with their own one-hot slot (any other element falls in a final "other" slot)."""

_ELEMENT_INDEX = {e: i for i, e in enumerate(ELEMENTS)}
MAX_DEGREE = 5
ATOM_FDIM = len(ELEMENTS) + 1 + (MAX_DEGREE + 1) + 5 + 6 + 1
"""Length of an atom feature vector (62)."""
BOND_FDIM = 6
"""Length of a bond feature vector."""

_BOND_TYPES = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}


def _implicit_valence(atom: Chem.Atom) -> int:
    vt = getattr(Chem, "ValenceType", None)
    if vt is not None:
        return int(atom.GetValence(vt.IMPLICIT))
    return int(atom.GetImplicitValence())  # pragma: no cover - older RDKit


def atom_features(atom: Chem.Atom) -> np.ndarray:
    """The 62 features of one atom (float32; see the module docstring).

    Values beyond the one-hot ranges (degree > 5, more than 4 hydrogens, implicit valence
    > 5) fall in the last slot of their block.
    """
    f = np.zeros(ATOM_FDIM, dtype=np.float32)
    f[_ELEMENT_INDEX.get(atom.GetSymbol(), len(ELEMENTS))] = 1
    o = len(ELEMENTS) + 1
    f[o + min(atom.GetDegree(), MAX_DEGREE)] = 1
    o += MAX_DEGREE + 1
    f[o + min(atom.GetTotalNumHs(), 4)] = 1
    o += 5
    f[o + min(_implicit_valence(atom), 5)] = 1
    o += 6
    f[o] = float(atom.GetIsAromatic())
    return f


def bond_features(bond: Chem.Bond) -> np.ndarray:
    """The 6 features of one bond: single, double, triple, aromatic, conjugated, in ring.

    Bond types other than these four (dative, ...) have an all-zero type block.
    """
    f = np.zeros(BOND_FDIM, dtype=np.float32)
    t = _BOND_TYPES.get(bond.GetBondType())
    if t is not None:
        f[t] = 1
    f[4] = float(bond.GetIsConjugated())
    f[5] = float(bond.IsInRing())
    return f


@dataclass
class MolGraph:
    """One molecule as arrays.

    Attributes
    ----------
    atoms
        ``(n_atoms, 62)`` float32 atom features.
    bonds
        ``(n_bonds, 6)`` float32 bond features.
    edges
        ``(n_bonds, 2)`` int64 atom indices of each bond (each bond once).
    degree
        ``(n_atoms,)`` int64 number of heavy-atom neighbours.
    """

    atoms: np.ndarray
    bonds: np.ndarray
    edges: np.ndarray
    degree: np.ndarray

    @property
    def n_atoms(self) -> int:
        return int(self.atoms.shape[0])


def hydrogens_implicit(mol: Chem.Mol) -> Chem.Mol:
    """``mol`` with the hydrogens written in brackets (``[C@@H]``, ``[CH]``; or left on heavy
    atoms by an SDF's ``RemoveHs``) made implicit wherever RDKit computes the same count, so that
    the atom features do not depend on the notation: ``CC[C@@H](C)CO`` and ``CCC(C)CO`` are one
    input (the implicit-valence feature was 0 for the first, 1 for the second: the same compound
    scored differently by source). A hydrogen only a bracket can give (pyrrole's ``[nH]``) stays."""
    atoms = [a.GetIdx() for a in mol.GetAtoms() if a.GetNumExplicitHs() or a.GetNoImplicit()]
    if not atoms:
        return mol
    m = Chem.RWMol(mol)
    with rdBase.BlockLogs():  # (RDKit's valence warnings for a tried count: said nowhere else)
        _implicit_where_same(m, atoms)
    return m.GetMol()


def _implicit_where_same(m: Chem.RWMol, atoms: list[int]) -> None:
    for i in atoms:
        a = m.GetAtomWithIdx(i)
        total, explicit, no_implicit = a.GetTotalNumHs(), a.GetNumExplicitHs(), a.GetNoImplicit()
        a.SetNumExplicitHs(0)
        a.SetNoImplicit(False)
        a.UpdatePropertyCache(strict=False)
        if a.GetTotalNumHs() != total:  # the bracket's count is not the computed one: kept
            a.SetNumExplicitHs(explicit)
            a.SetNoImplicit(no_implicit)
            a.UpdatePropertyCache(strict=False)


def mol_to_graph(mol: Chem.Mol, implicit_h: bool = True) -> MolGraph:
    """Featurise one RDKit molecule (hydrogens implicit; ``implicit_h``: bracket hydrogens made
    implicit first, :func:`hydrogens_implicit`; ``False``: as written, as models trained before
    2026-12-07 read them)."""
    if implicit_h:
        mol = hydrogens_implicit(mol)
    atoms = np.stack([atom_features(a) for a in mol.GetAtoms()]) if mol.GetNumAtoms() else None
    if atoms is None:
        atoms = np.zeros((0, ATOM_FDIM), np.float32)
    bl = list(mol.GetBonds())
    if bl:
        bonds = np.stack([bond_features(b) for b in bl])
        edges = np.array([(b.GetBeginAtomIdx(), b.GetEndAtomIdx()) for b in bl], dtype=np.int64)
    else:
        bonds = np.zeros((0, BOND_FDIM), np.float32)
        edges = np.zeros((0, 2), np.int64)
    degree = np.array([a.GetDegree() for a in mol.GetAtoms()], dtype=np.int64)
    return MolGraph(atoms, bonds, edges, degree)


def mols_to_graphs(mols: Sequence[Chem.Mol], implicit_h: bool = True) -> list[MolGraph]:
    """Featurise molecules (see :func:`mol_to_graph`)."""
    return [mol_to_graph(m, implicit_h) for m in mols]


def morgan_fingerprints(mols: Sequence[Chem.Mol], radius: int = 2, n_bits: int = 1024) -> np.ndarray:
    """Binary extended-connectivity (Morgan / ECFP-like) fingerprints from RDKit.

    Parameters
    ----------
    mols
        RDKit molecules.
    radius
        Morgan radius (ECFP4 = radius 2).
    n_bits
        Fingerprint length (bits are hashed into this many slots).

    Returns
    -------
    numpy.ndarray
        ``(n_molecules, n_bits)`` uint8 0/1.
    """
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=int(radius), fpSize=int(n_bits))
    out = np.zeros((len(mols), int(n_bits)), dtype=np.uint8)
    for i, m in enumerate(mols):
        out[i] = gen.GetFingerprintAsNumPy(m)
    return out


@dataclass
class GraphBatch:
    """A minibatch of molecular graphs stacked into one disconnected graph.

    Atoms are ordered by degree (stable, so within a degree by molecule and atom index), so
    that the per-degree weights of the neural fingerprint apply to contiguous slices.

    Attributes
    ----------
    atoms
        ``(N, 62)`` float32 atom features of all molecules.
    bonds
        ``(M, 6)`` float32 bond features.
    edge_index
        ``(2, M)`` int64 atom indices (into ``atoms``) of the two ends of each bond.
    degree
        ``(N,)`` int64 atom degrees (non-decreasing).
    atom_mol
        ``(N,)`` int64 index of the molecule each atom belongs to.
    atom_index
        ``(N,)`` int64 index of each atom within its RDKit molecule.
    degree_counts
        Number of atoms of each degree 0..5 (degrees above 5 are counted as 5).
    n_mols
        Number of molecules ``B``.
    """

    atoms: torch.Tensor
    bonds: torch.Tensor
    edge_index: torch.Tensor
    degree: torch.Tensor
    atom_mol: torch.Tensor
    atom_index: torch.Tensor
    degree_counts: tuple[int, ...]
    n_mols: int

    def to(self, device: torch.device | str) -> GraphBatch:
        """The batch on ``device`` (Lightning moves batches with this)."""
        return GraphBatch(
            self.atoms.to(device),
            self.bonds.to(device),
            self.edge_index.to(device),
            self.degree.to(device),
            self.atom_mol.to(device),
            self.atom_index.to(device),
            self.degree_counts,
            self.n_mols,
        )

    def __len__(self) -> int:
        return self.n_mols

    @property
    def shape(self) -> tuple[int]:
        """``(n_mols,)``, so code that asks ``x.shape[0]`` for the batch size works."""
        return (self.n_mols,)

    @classmethod
    def from_graphs(cls, graphs: Sequence[MolGraph]) -> GraphBatch:
        """Stack molecules into one batch (atoms sorted by degree, bond indices remapped)."""
        if not graphs:
            return cls(
                torch.zeros(0, ATOM_FDIM),
                torch.zeros(0, BOND_FDIM),
                torch.zeros(2, 0, dtype=torch.long),
                torch.zeros(0, dtype=torch.long),
                torch.zeros(0, dtype=torch.long),
                torch.zeros(0, dtype=torch.long),
                (0,) * (MAX_DEGREE + 1),
                0,
            )
        n = np.array([g.n_atoms for g in graphs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(n)[:-1]])
        atoms = np.concatenate([g.atoms for g in graphs])
        bonds = np.concatenate([g.bonds for g in graphs])
        edges = np.concatenate([g.edges + o for g, o in zip(graphs, offsets, strict=True)])
        degree = np.minimum(np.concatenate([g.degree for g in graphs]), MAX_DEGREE)
        atom_mol = np.repeat(np.arange(len(graphs), dtype=np.int64), n)
        atom_index = np.arange(len(atoms), dtype=np.int64) - np.repeat(offsets, n)
        order = np.argsort(degree, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        counts = tuple(int(c) for c in np.bincount(degree, minlength=MAX_DEGREE + 1))
        return cls(
            torch.from_numpy(atoms[order]),
            torch.from_numpy(bonds),
            torch.from_numpy(np.ascontiguousarray(rank[edges].T)),
            torch.from_numpy(degree[order]),
            torch.from_numpy(atom_mol[order]),
            torch.from_numpy(atom_index[order]),
            counts,
            len(graphs),
        )


def collate_molecules(items: Sequence[tuple]) -> tuple:
    """DataLoader ``collate_fn`` for molecule datasets.

    Items are ``(x, y)`` pairs where ``x`` is a :class:`MolGraph` (neural fingerprints) or a
    fingerprint tensor (circular fingerprints). Returns ``(GraphBatch or (B, L) tensor,
    (B, n_targets) tensor)``.
    """
    xs, ys = zip(*items, strict=True) if items else ((), ())
    y = torch.stack([torch.as_tensor(v) for v in ys]) if ys else torch.zeros(0, 0)
    if xs and isinstance(xs[0], MolGraph):
        return GraphBatch.from_graphs(xs), y
    return torch.stack([torch.as_tensor(v) for v in xs]), y
