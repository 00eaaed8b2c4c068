"""The sequence systems (labelled sequence files; genome windows too). Imported by
:mod:`biodl.registry`; imports no torch."""

from __future__ import annotations

from biodl.registry import Recipe, register

#: Tiny networks for smoke tests on ~100-bp sequences (and 300-bp genome windows).
_TOY = {
    "deepbind": dict(num_motifs=4, motif_len=8, hidden=8),
    "deepsea": dict(n_filters=[8, 8, 8], kernel_size=5, pool_size=2, hidden=16),
    "basset": dict(n_filters=[8, 8, 8], kernel_sizes=[9, 5, 3], pool_sizes=[2, 2, 2], hidden=[16, 16]),
    "danq": dict(n_filters=8, kernel_size=11, pool_size=5, lstm_hidden=8, hidden=16),
    "splicing-cnn": dict(n_filters=8, hidden=8, n_res_blocks=1),
}
KINDS = ("sequences", "windows")

register(
    Recipe(
        name="deepbind",
        title="DeepBind",
        model="biodl.models.sequence.deepbind:DeepBind",
        kinds=KINDS,
        tasks=("binary", "regression", "multilabel"),
        citation="Alipanahi B, Delong A, Weirauch MT, Frey BJ. Predicting the sequence specificities of DNA- and "
        "RNA-binding proteins by deep learning. Nat Biotechnol 33:831-838 (2015).",
        status="ready",
        model_defaults=dict(
            num_motifs=16, motif_len=24, pool="max", hidden=32, dropout=0.2, reverse_complement=True
        ),
        # lr 3e-3 / dropout 0.2 won the validation calibration on 15 of 16 ENCODE experiments
        # (bench/deepbind_encode.py, bench/README_deepbind.md)
        train_defaults=dict(lr=3e-3, batch_size=64, max_epochs=15, patience=3, weight_decay=1e-4),
        toy={"model": _TOY["deepbind"]},
        # DeepBind's calibration ranges (`biodl train --calibrate N`), from its nbtcode
        # (cfg/classification/M1.cfg, M2.cfg; cfg/trainers/default.cfg) and the paper's Supplementary
        # Notes: 16 motifs (fixed), hidden layer none ("M1") or 32 ReLU units ("M2"), dropout
        # {0, 0, 0.25, 0.5}, weight decay log-uniform 1e-10..1e-3, motif length 24 for ChIP-seq
        # (16 for RNA), max or max+average pooling. The paper's learning rate, log-uniform
        # 5e-4..5e-2, is for SGD with momentum 0.95-0.99; biodl trains with AdamW (beta1 0.9 in
        # momentum's place), for which the top of that range diverges: 5e-4..1e-2 here.
        search_space=dict(
            lr=("log", 5e-4, 1e-2),
            weight_decay=("log", 1e-10, 1e-3),
            dropout=[0.0, 0.0, 0.25, 0.5],
            hidden=[0, 32],
            motif_len=[16, 24],
            pool=["max", "maxavg"],
        ),
        reference="ENCODE ChIP-seq held-out B sets, 10 experiments with a released model: released mean AUC "
        "0.9391, biodl 0.9452 (0.9492 with --calibrate 8, DeepBind's calibration protocol; "
        "bench/deepbind_encode.py).",
    )
)

for _name, _title, _cite, _tasks, _model in [
    (
        "deepsea",
        "DeepSEA",
        "Zhou J, Troyanskaya OG. Predicting effects of noncoding variants with deep "
        "learning-based sequence model. Nat Methods 12:931-934 (2015).",
        ("multilabel", "binary"),
        "biodl.models.sequence.deepsea:DeepSEA",
    ),
    (
        "basset",
        "Basset",
        "Kelley DR, Snoek J, Rinn JL. Basset: learning the regulatory code of the "
        "accessible genome with deep convolutional neural networks. Genome Res 26:990-999 (2016).",
        ("multilabel", "binary"),
        "biodl.models.sequence.basset:Basset",
    ),
    (
        "danq",
        "DanQ",
        "Quang D, Xie X. DanQ: a hybrid convolutional and recurrent deep neural network "
        "for quantifying the function of DNA sequences. Nucleic Acids Res 44:e107 (2016).",
        ("multilabel", "binary"),
        "biodl.models.sequence.danq:DanQ",
    ),
    (
        "splicing-cnn",
        "Splicing-code CNN",
        "Zuallaert J et al. SpliceRover: interpretable convolutional "
        "neural networks for improved splice site prediction. Bioinformatics 34:4180 (2018); residual unit after "
        "Jaganathan K et al. SpliceAI, Cell 176:535 (2019).",
        ("multiclass", "binary"),
        "biodl.models.sequence.splicing:SplicingCNN",
    ),
]:
    register(
        Recipe(
            name=_name,
            title=_title,
            model=_model,
            kinds=KINDS,
            tasks=_tasks,
            citation=_cite,
            status="ready",
            train_defaults=dict(lr=1e-3, batch_size=64, max_epochs=20, patience=3),
            toy={"model": _TOY[_name]},
        )
    )
