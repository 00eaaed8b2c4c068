"""Protein contact networks: PconsC2's layered random forests (stored as tensors, evaluated
in torch) and the DeepCov / DEEPCON fully convolutional network on 441-channel covariance.

Pure modules, no I/O: :func:`deepcon_state_dict` turns DEEPCON's Keras HDF5 weights into a
state dict of :class:`DeepCovFCN` (h5py only, no TensorFlow).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


# ------------------------------------------------------------------------------ random forests
def pair_windows(maps: torch.Tensor, window: int = 11) -> torch.Tensor:
    """Every ``window x window`` patch of each map around each pair: ``(C, L, L)`` ->
    ``(L * L, C * window^2)`` (zero outside the map), the pair ``(i, j)`` at row ``i L + j``."""
    C, L, _ = maps.shape
    pad = window // 2
    cols = F.unfold(maps[None].float(), kernel_size=window, padding=pad)  # (1, C*w*w, L*L)
    return cols[0].T.contiguous()


class TreeForest(nn.Module):
    """A fitted binary-classification random forest (scikit-learn trees) as tensors.

    Parameters
    ----------
    n_trees
        Trees in the forest.
    n_nodes
        Nodes of the largest tree (others are padded).
    depth
        Depth of the deepest tree (the number of steps of the evaluation).

    Shapes: ``(n, n_features)`` -> ``(n,)`` the mean over trees of the leaf's positive fraction.
    """

    def __init__(self, n_trees: int, n_nodes: int, depth: int):
        super().__init__()
        self.depth = int(depth)
        self.register_buffer("feature", torch.zeros(n_trees, n_nodes, dtype=torch.int32))
        self.register_buffer("threshold", torch.zeros(n_trees, n_nodes))
        self.register_buffer("left", torch.full((n_trees, n_nodes), -1, dtype=torch.int32))
        self.register_buffer("right", torch.full((n_trees, n_nodes), -1, dtype=torch.int32))
        self.register_buffer("value", torch.zeros(n_trees, n_nodes))

    @staticmethod
    def shape_of(forest) -> tuple[int, int, int]:
        """``(n_trees, n_nodes, depth)`` of a fitted scikit-learn forest."""
        est = forest.estimators_
        return len(est), max(e.tree_.node_count for e in est), max(e.tree_.max_depth for e in est)

    @torch.no_grad()
    def set_forest(self, forest) -> None:
        """Copy a fitted ``RandomForestClassifier`` (classes 0 / 1) into the buffers."""
        for t, e in enumerate(forest.estimators_):
            tr = e.tree_
            m = tr.node_count
            self.feature[t, :m] = torch.as_tensor(np.maximum(tr.feature, 0), dtype=torch.int32)
            # scikit-learn goes left when x <= threshold (float64); float32 features compare the same
            self.threshold[t, :m] = torch.as_tensor(tr.threshold, dtype=torch.float32)
            self.left[t, :m] = torch.as_tensor(tr.children_left, dtype=torch.int32)
            self.right[t, :m] = torch.as_tensor(tr.children_right, dtype=torch.int32)
            v = tr.value[:, 0, :]
            v = v / np.maximum(v.sum(1, keepdims=True), 1e-12)
            col = list(forest.classes_).index(1) if 1 in list(forest.classes_) else None
            self.value[t, :m] = torch.as_tensor(v[:, col] if col is not None else 0.0, dtype=torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        T, M = self.feature.shape
        # flat node indices (tree t's node k at t M + k); a leaf's children are itself, so every
        # row can take ``depth`` steps without a test, and the gathers are 1-D (index_select)
        base = (torch.arange(T, device=x.device) * M)[:, None]
        own = base + torch.arange(M, device=x.device)[None, :]
        left = torch.where(self.left >= 0, self.left.long() + base, own).reshape(-1)
        right = torch.where(self.right >= 0, self.right.long() + base, own).reshape(-1)
        feature, threshold = self.feature.long().reshape(-1), self.threshold.reshape(-1)
        node = base.reshape(1, T).expand(n, T).contiguous()
        x = x.contiguous()
        for _ in range(self.depth):
            go_left = x.gather(1, feature[node]) <= threshold[node]
            node = torch.where(go_left, left[node], right[node])
        return self.value.reshape(-1)[node].mean(1)


class PconsC2(nn.Module):
    """PconsC2 (Skwark et al. 2014): a stack of random forests over coevolution maps.

    Layer 0 sees, for each residue pair, ``window x window`` patches of the ``n_maps`` input
    maps (plmDCA, PSICOV-like, MI, each standardised) plus ``n_pair`` pair features
    (separation, conservation, depth of the alignment); layer ``k > 0`` sees the same and a
    patch of layer ``k - 1``'s predicted map, so it learns what protein-like contact patterns
    (helix pairs, strand ladders) look like and cleans up the map. The forests are fitted with
    scikit-learn (see the contacts kind) and stored here as tensors.

    Parameters
    ----------
    n_maps, n_pair
        Input maps and per-pair features.
    n_layers
        Forests in the stack (the paper: 5).
    n_trees
        Trees per forest.
    window
        Patch side (odd; the paper: 11).
    min_samples_leaf, max_pairs, max_features
        Training settings of the forests (used by the kind's fit; stored for the record).
    inner_folds
        How the previous layer's map of a training protein is made for the next layer's
        training: by a forest fitted without that protein (the training proteins split into
        this many groups, so the map is out-of-protein like a new protein's); 0 or 1: the
        layer's own forest (out-of-bag votes on its training pairs).
    shapes
        ``(n_trees, n_nodes, depth)`` of each fitted layer (rebuilds a trained stack).

    Shapes: ``x (batch=1, n_maps + n_pair, L, L)`` -> logits ``(1, L, L)`` (of the last layer,
    symmetric).
    """

    def __init__(
        self,
        n_maps: int = 3,
        n_pair: int = 5,
        n_layers: int = 5,
        n_trees: int = 100,
        window: int = 11,
        min_samples_leaf: int = 10,
        max_pairs: int = 40000,
        max_features: str | float = "sqrt",
        inner_folds: int = 5,
        shapes: Sequence[Sequence[int]] | None = None,
    ):
        super().__init__()
        if window % 2 != 1:
            raise ValueError("window must be odd")
        self.n_maps, self.n_pair, self.n_layers, self.window = (
            int(n_maps),
            int(n_pair),
            int(n_layers),
            int(window),
        )
        self.n_trees, self.min_samples_leaf, self.max_pairs = (
            int(n_trees),
            int(min_samples_leaf),
            int(max_pairs),
        )
        self.max_features = max_features
        self.inner_folds = int(inner_folds)
        self.shapes = [list(map(int, s)) for s in (shapes or [[n_trees, 1, 1]] * n_layers)]
        self.layers = nn.ModuleList(TreeForest(*s) for s in self.shapes)

    def n_features(self, layer: int) -> int:
        w2 = self.window * self.window
        return self.n_maps * w2 + self.n_pair + (w2 if layer > 0 else 0)

    def layer_features(self, x: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        """``(L * L, n_features(layer))`` inputs of a layer for one protein ``x (C, L, L)``."""
        maps, pair = x[: self.n_maps], x[self.n_maps :]
        parts = [pair_windows(maps, self.window), pair.reshape(self.n_pair, -1).T]
        if previous is not None:
            parts.append(pair_windows(previous[None], self.window))
        return torch.cat(parts, 1)

    def forward_maps(self, x: torch.Tensor, upto: int | None = None) -> list[torch.Tensor]:
        """The probability maps ``(L, L)`` of layers ``0..upto`` for one protein ``(C, L, L)``."""
        L = x.shape[-1]
        prev, out = None, []
        for layer in self.layers[: (upto + 1) if upto is not None else None]:
            p = layer(self.layer_features(x, prev)).reshape(L, L)
            p = torch.triu(p, 1) + torch.triu(p, 1).T + torch.diag(torch.diagonal(p))  # pairs i < j rule
            out.append(p)
            prev = p
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.stack([self.forward_maps(xi)[-1] for xi in x])
        p = p.clamp(1e-6, 1 - 1e-6)
        return torch.log(p) - torch.log1p(-p)


# ----------------------------------------------------------------------------------- DEEPCON
class DeepCovFCN(nn.Module):
    """DEEPCON (Adhikari 2019) on DeepCov's covariance input: batch norm, ReLU, a 1x1
    convolution to ``2 * width`` channels with maxout (pairs of channels), then ``n_blocks``
    residual blocks (BN, ReLU, 3x3 conv, dropout, ReLU, 3x3 conv dilated 1 / 2 / 4 in turn),
    BN, ReLU and a 3x3 convolution to one channel. Batch norm uses Keras' epsilon (1e-3) so the
    ported weights give DEEPCON's numbers.

    Parameters
    ----------
    n_channels
        Input channels (441: DeepCov's 21 x 21 pair covariance).
    width
        Channels of the residual tower (DEEPCON: 64).
    n_blocks
        Residual blocks (DEEPCON: 32).
    dropout
        Dropout inside the blocks (DEEPCON: 0.3).

    Shapes: ``(batch, n_channels, L, L)`` -> logits ``(batch, L, L)``, symmetrised (as DEEPCON
    averages ``P`` and ``P^T``, here on probabilities: ``logit((p + p^T) / 2)``).
    """

    def __init__(self, n_channels: int = 441, width: int = 64, n_blocks: int = 32, dropout: float = 0.3):
        super().__init__()
        eps = 1e-3
        self.n_channels, self.width, self.n_blocks = n_channels, width, n_blocks
        self.bn_in = nn.BatchNorm2d(n_channels, eps=eps)
        self.conv_in = nn.Conv2d(n_channels, 2 * width, 1)
        self.bn1 = nn.ModuleList(nn.BatchNorm2d(width, eps=eps) for _ in range(n_blocks))
        self.conv1 = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(n_blocks))
        self.conv2 = nn.ModuleList(
            nn.Conv2d(width, width, 3, padding=d, dilation=d) for d in self.dilations()
        )
        self.drop = nn.Dropout(dropout)
        self.bn_out = nn.BatchNorm2d(width, eps=eps)
        self.conv_out = nn.Conv2d(width, 1, 3, padding=1)

    def dilations(self) -> list[int]:
        return [(1, 2, 4)[b % 3] for b in range(self.n_blocks)]

    def tower(self, x: torch.Tensor) -> torch.Tensor:
        """Unsymmetrised logits ``(batch, L, L)``."""
        h = self.conv_in(F.relu(self.bn_in(x)))
        b, c, L1, L2 = h.shape
        h = h.reshape(b, c // 2, 2, L1, L2).amax(2)  # Keras MaxPooling3D((1, 1, 2)) on the channels
        for bn, c1, c2 in zip(self.bn1, self.conv1, self.conv2, strict=True):
            y = c1(F.relu(bn(h)))
            y = c2(F.relu(self.drop(y)))
            h = h + y
        return self.conv_out(F.relu(self.bn_out(h)))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(self.tower(x))
        p = (0.5 * (p + p.transpose(1, 2))).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)


def deepcon_state_dict(hdf5: str | Path, model: DeepCovFCN | None = None) -> dict[str, torch.Tensor]:
    """DEEPCON's Keras weights (``weights-rdd-covariance.hdf5`` of the ``deepcon`` wheel) as a
    state dict of :class:`DeepCovFCN` (default: 441 channels, 64 wide, 32 blocks).

    Keras layers are matched in creation order (``conv2d_<k>``, ``batch_normalization_<k>``);
    kernels ``(kh, kw, in, out)`` become ``(out, in, kh, kw)``."""
    import h5py

    model = model or DeepCovFCN()
    with h5py.File(hdf5, "r") as f:
        g = f["model_weights"] if "model_weights" in f else f

        def layers(prefix: str) -> list[str]:
            names = [n for n in g if n.startswith(prefix) and n[len(prefix) :].isdigit()]
            return sorted(names, key=lambda n: int(n[len(prefix) :]))

        def arrays(name: str) -> dict[str, np.ndarray]:
            out = {}
            g[name].visititems(
                lambda k, v: (
                    out.__setitem__(k.split("/")[-1].split(":")[0], np.asarray(v))
                    if isinstance(v, h5py.Dataset)
                    else None
                )
            )
            return out

        convs, bns = layers("conv2d_"), layers("batch_normalization_")
        n_conv, n_bn = 2 + 2 * model.n_blocks, 2 + model.n_blocks
        if len(convs) != n_conv or len(bns) != n_bn:
            raise ValueError(
                f"{hdf5}: {len(convs)} convolutions and {len(bns)} batch norms, expected {n_conv} and {n_bn}"
            )
        torch_convs = [model.conv_in] + [
            m for pair in zip(model.conv1, model.conv2, strict=True) for m in pair
        ]
        torch_convs.append(model.conv_out)
        torch_bns = [model.bn_in, *model.bn1, model.bn_out]
        sd: dict[str, torch.Tensor] = {}
        names = {id(m): n for n, m in model.named_modules()}
        for keras, mod in zip(convs, torch_convs, strict=True):
            a = arrays(keras)
            k = torch.from_numpy(a["kernel"]).permute(3, 2, 0, 1).contiguous()
            if tuple(k.shape) != tuple(mod.weight.shape):
                raise ValueError(f"{keras}: kernel {tuple(k.shape)} does not fit {tuple(mod.weight.shape)}")
            sd[f"{names[id(mod)]}.weight"] = k
            sd[f"{names[id(mod)]}.bias"] = torch.from_numpy(a["bias"])
        for keras, mod in zip(bns, torch_bns, strict=True):
            a = arrays(keras)
            n = names[id(mod)]
            sd[f"{n}.weight"] = torch.from_numpy(a["gamma"])
            sd[f"{n}.bias"] = torch.from_numpy(a["beta"])
            sd[f"{n}.running_mean"] = torch.from_numpy(a["moving_mean"])
            sd[f"{n}.running_var"] = torch.from_numpy(a["moving_variance"])
            sd[f"{n}.num_batches_tracked"] = torch.tensor(0)
    return sd
