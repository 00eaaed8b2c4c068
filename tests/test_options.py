"""Declared options (biodl.options): conversion, defaults, and refusals that name the option."""

from __future__ import annotations

import pytest

from biodl.errors import BiodlInputError
from biodl.options import Option, parse_set, resolve

DECLARED = (
    Option("window", "int", 1000, "Window.", minimum=1),
    Option("min_overlap", "float", 0.5, "Overlap.", minimum=0),
    Option("rc_augment", "bool", False, "Flip.", flag="--rc-augment"),
    Option("labels", "strs", None, "Labels.", flag="--labels"),
    Option("placement", "choice", "end", "Where.", choices=("end", "random")),
    Option("split", "choice", None, "Split.", choices=("test", "all"), stages=("evaluate",)),
    Option("landmarks", "path", None, "D-GEX only.", recipes=("dgex",)),
)


def test_parse_set_decodes_json_and_refuses_malformed() -> None:
    assert parse_set(["a=1", "b=[8,8]", "c=true", "d=chr1,chr2", "e=x=y"]) == {
        "a": 1,
        "b": [8, 8],
        "c": True,
        "d": "chr1,chr2",
        "e": "x=y",
    }
    with pytest.raises(BiodlInputError, match="expects KEY=VALUE"):
        parse_set(["novalue"])
    with pytest.raises(BiodlInputError, match="given twice"):
        parse_set(["a=1", "a=2"])


def test_defaults_and_conversion() -> None:
    got = resolve(
        DECLARED, {"window": "300", "rc_augment": "yes", "labels": "CDS, tRNA"}, stage="train", owner="x"
    )
    assert got == {
        "window": 300,
        "min_overlap": 0.5,
        "rc_augment": True,
        "labels": ["CDS", "tRNA"],
        "placement": "end",
        "landmarks": None,
    }
    assert resolve(DECLARED, {"labels": ["a", "b"]}, stage="train", owner="x")["labels"] == ["a", "b"]
    assert resolve(DECLARED, {"split": "all"}, stage="evaluate", owner="x")["split"] == "all"


@pytest.mark.parametrize(
    "given,match",
    [
        ({"window": "abc"}, "--set window must be an integer, got 'abc'"),
        ({"window": 2.5}, "--set window must be an integer"),
        ({"window": 0}, "--set window must be at least 1"),
        ({"window": True}, "--set window must be a number"),
        ({"rc_augment": "maybe"}, "--rc-augment must be true or false"),
        ({"placement": "middle"}, "--set placement must be one of end, random"),
        ({"min_overlap": [1]}, "--set min_overlap must be a number"),
        # not finite: one clear error (an int option's 'inf' used to end in OverflowError)
        ({"window": "inf"}, "--set window must be an integer, got 'inf'"),
        ({"min_overlap": "nan"}, "--set min_overlap must be a number, got 'nan'"),
    ],
)
def test_bad_values_name_the_option(given, match) -> None:
    with pytest.raises(BiodlInputError, match=match):
        resolve(DECLARED, given, stage="train", owner="x")


def test_unknown_and_inapplicable_options_are_refused_together() -> None:
    with pytest.raises(BiodlInputError) as e:
        resolve(
            DECLARED,
            {"windw": 5, "split": "all", "landmarks": "lm.txt", "foo": 1},
            stage="train",
            owner="adage on expression",
            recipe="adage",
            spellings={"foo": "--foo"},
        )
    msg = str(e.value)
    assert msg.startswith("adage on expression does not take ")
    assert "--set windw (did you mean window?)" in msg
    assert (
        "--set split (only for evaluate)" in msg
        and "--set landmarks (only for dgex)" in msg
        and "--foo" in msg
    )
    accepted = msg.split("It accepts: ")[1]
    assert "--set window" in accepted and "--rc-augment" in accepted and "landmarks" not in accepted
    # None means "not given"
    assert resolve(DECLARED, {"windw": None}, stage="train", owner="x")["window"] == 1000
    # a stage with nothing to accept says so (it said "It accepts: " and nothing)
    with pytest.raises(BiodlInputError, match=r"does not take --set foo\. It takes no --set options here\.$"):
        resolve((), {"foo": 1}, stage="report", owner="dgex on expression")


def test_declaration_errors_are_caught_early() -> None:
    with pytest.raises(ValueError, match="unknown type"):
        Option("x", "integer")
    with pytest.raises(ValueError, match="needs choices"):
        Option("x", "choice")
    with pytest.raises(ValueError, match="stages"):
        Option("x", stages=("fit",))


def test_model_options_are_converted_to_the_type_of_their_default() -> None:
    """-m KEY=VALUE: checked against the recipe's default (bool, int, float), one clear error."""
    from biodl.options import parse_set
    from biodl.registry import get_recipe

    r = get_recipe("deepbind")
    m = r.check_model_options(
        parse_set(["reverse_complement=no", "num_motifs=8.0", "dropout=0", "hidden=0", "pool=max"])
    )
    assert m == {"reverse_complement": False, "num_motifs": 8, "dropout": 0.0, "hidden": 0, "pool": "max"}
    assert type(m["num_motifs"]) is int and type(m["dropout"]) is float
    assert r.check_model_options({"reverse_complement": "YES"}) == {"reverse_complement": True}
    for bad, what in [
        ("reverse_complement=maybe", "-m reverse_complement must be true or false"),
        ("num_motifs=abc", "-m num_motifs must be an integer"),
        ("num_motifs=8.5", "-m num_motifs must be an integer"),
        ("num_motifs=true", "-m num_motifs must be an integer"),
        ("hidden=-3", "-m hidden must be a non-negative integer"),
        ("dropout=high", "-m dropout must be a number"),
        ("dropout=nan", "-m dropout must be a number"),
        ("dropout=1", "-m dropout must be a fraction at least 0 and below 1"),
        ("dropout=-0.1", "-m dropout must be a fraction at least 0 and below 1"),
        ("pad_value=-1", "-m pad_value must be a number >= 0"),
        ("reverse_complement=on", "-m reverse_complement must be true or false"),  # -m's words only
    ]:
        with pytest.raises(BiodlInputError, match=what):
            r.check_model_options(parse_set([bad]))
    assert r.check_model_options({"window_size": -1}) == {"window_size": -1}  # default 0: not a count
    # layer-size lists: one positive integer or a list of them, in the default's type
    dfs = get_recipe("dfs")
    assert dfs.check_model_options(parse_set(["hidden=[32,16]"])) == {"hidden": [32, 16]}
    assert dfs.check_model_options({"hidden": "8"}) == {"hidden": 8}
    assert dfs.check_model_options(parse_set(["hidden=32,16"])) == {"hidden": [32, 16]}  # as docs write it
    assert get_recipe("basset").check_model_options({"kernel_sizes": [5, 5, 3]}) == {
        "kernel_sizes": (5, 5, 3)
    }
    for bad in ("hidden=0", "hidden=[32,0]", "hidden=abc", "hidden=[]", "hidden=32,x"):
        with pytest.raises(BiodlInputError, match="-m hidden must be a positive integer or a list of them"):
            dfs.check_model_options(parse_set([bad]))


def test_a_network_without_weights_is_refused_before_the_run_directory(tmp_path) -> None:
    """-m num_motifs=0 builds a convolution without weights: refused by name, nothing written
    (it crashed deep inside torch, after the run directory was made)."""
    from biodl.pipeline import train
    from biodl.train import TrainConfig

    data = tmp_path / "d.tsv"
    data.write_text("sequence\tlabel\n" + "".join(f"{'ACGT' * 5}\t{i % 2}\n" for i in range(40)))
    out = tmp_path / "run"
    for opt, layer in (("num_motifs", "conv.weight"), ("motif_len", "conv.weight")):
        with pytest.raises(
            BiodlInputError, match=rf"built with -m {opt}=0 has layers without weights \({layer}"
        ):
            train(
                "deepbind",
                out,
                options={"data": str(data)},
                model_options={opt: 0},
                config=TrainConfig(max_epochs=1),
                quiet=True,
            )
        assert not out.exists()


def test_a_run_made_before_an_option_existed_is_compared_at_the_value_it_had() -> None:
    """reads' decoys and diverged reads were added after runs were made: such a run (its request
    without them) trained with none, so resuming it with the new defaults is refused, naming
    them, and resuming with 0 is not; options without a ``before`` value are still not compared."""
    from biodl.kinds import get_kind
    from biodl.options import with_before
    from biodl.pipeline import request_differences

    kind = get_kind("reads")
    old = {"options": {"read_len": 150, "k": 13}}
    new = {"options": {"read_len": 150, "k": 13, "decoys": 0.2, "diverged": 0.3, "divergence": 0.2}}
    diffs = request_differences(old, new, kind)
    assert diffs == ["--set decoys 0.0 here, 0.2 asked", "--set diverged 0.0 here, 0.3 asked"]
    same = {"options": {**new["options"], "decoys": 0, "diverged": 0.0}}
    assert request_differences(old, same, kind) == []
    # a run that recorded them is compared on what it recorded, never on the before value
    assert with_before(kind.options, {"decoys": 0.2})["decoys"] == 0.2
    filled = with_before(kind.options, {})
    assert filled["diverged"] == 0.0 and "divergence" not in filled


def test_a_training_setting_given_as_a_set_key_names_its_flag():
    """`--set max_epochs=2` (CellCnn crossval's spelling) for train said only 'does not take'."""
    from biodl.options import Option, resolve

    with pytest.raises(
        BiodlInputError, match=r"does not take --set max_epochs \(a training option: --epochs\)"
    ):
        resolve([Option("x", "int", 1, "an option")], {"max_epochs": 2}, stage="train", owner="a kind")
