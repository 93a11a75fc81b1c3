"""Option values: one rule for numbers (finite floats, no true/false as numbers, ranges declared on the options
class), names given once, layer widths and seeds in range, and the YAML that yaml.safe_load takes silently or
crashes on (keys given twice, UTF-16 files, integer keys, deep nesting, numbers too long to read). Each is a
config error naming the dotted path, what was received and how to fix it."""

from __future__ import annotations

import math
import typing

import pytest
from pydantic import BaseModel, ValidationError

from conftest import run_cli
from lamina.config.loading import load_config, parse_overrides
from lamina.config.schema import config_class, schema
from lamina.core.errors import ConfigError
from lamina.core.options import Options
from lamina.data.options import SplitOptions

BASE = {"data": "digits", "model": "mlp"}
FINITE = "write a number such as 0.001"
BOOL = "write a number such as 10, not true or false"


def problems_of(document: dict, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(document, overrides)
    return [str(problem) for problem in caught.value.problems]


def file_problems(path, overrides=None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), overrides)
    return str(caught.value)


def train(**options) -> dict:
    return {**BASE, "train": options}


def augment(*entries) -> dict:
    return {"data": {"name": "digits", "augment": list(entries)}, "model": "mlp"}


def model(**options) -> dict:
    return {"data": "digits", "model": options}


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            {"data": {"name": "mnist", "path": "x", "val_fraction": -0.05, "limit": -59000}, "model": "mlp"},
            [
                "data.limit: should be greater than or equal to 1; received -59000",
                "data.val_fraction: should be greater than or equal to 0; received -0.05",
            ],
            id="mnist-redeclared-val-fraction-and-limit",
        ),
        pytest.param(
            train(
                optimizer={"name": "adamw", "learning_rate": math.inf, "weight_decay": math.nan},
                l2=math.inf,
                gradient_clip=math.inf,
                schedule={"name": "step", "gamma": math.inf},
            ),
            [
                f"train.gradient_clip: expected a finite number, received inf (float); {FINITE}",
                f"train.l2: expected a finite number, received inf (float); {FINITE}",
                f"train.optimizer.learning_rate: expected a finite number, received inf (float); {FINITE}",
                f"train.optimizer.weight_decay: expected a finite number, received nan (float); {FINITE}",
                f"train.schedule.gamma: expected a finite number, received inf (float); {FINITE}",
            ],
            id="infinite-learning-rate-l2-clip-gamma-nan-weight-decay",
        ),
        pytest.param(
            train(learning_rate_factors={"backbone": -0.1}, unfreeze={"backbone": -1}),
            [
                "train.learning_rate_factors.backbone: should be greater than or equal to 0; received -0.1",
                "train.unfreeze.backbone: should be greater than or equal to 0; received -1",
            ],
            id="negative-learning-rate-factor",
        ),
        pytest.param(
            train(loss={"name": "cross_entropy", "class_weights": [1.0, math.nan, -2.0]}),
            [
                f"train.loss.class_weights[1]: expected a finite number, received nan (float); {FINITE}",
                "train.loss.class_weights[2]: should be greater than or equal to 0; received -2.0",
            ],
            id="nan-and-negative-class-weights",
        ),
        pytest.param(
            train(loss={"name": "cross_entropy", "class_weights": [0, 0]}),
            [
                "train.loss.class_weights: every class weight is 0, so nothing would be learned; give some class "
                "a weight above 0"
            ],
            id="all-class-weights-zero",
        ),
        pytest.param(
            augment(
                {"name": "affine", "scale": [-1, math.inf]},
                {"name": "affine", "scale": [1.2, 0.8]},
                {"name": "random_erasing", "area": [0.5, 0.1]},
            ),
            [
                "data.augment[0].scale[0]: should be greater than 0; received -1",
                f"data.augment[0].scale[1]: expected a finite number, received inf (float); {FINITE}",
                "data.augment[1].scale: low 1.2 is above high 0.8; write [0.8, 1.2]",
                "data.augment[2].area: low 0.5 is above high 0.1; write [0.1, 0.5]",
            ],
            id="negative-infinite-and-reversed-ranges",
        ),
        pytest.param(
            train(epochs=True, optimizer={"name": "sgd", "learning_rate": False}),
            [
                f"train.epochs: expected a whole number, received true (bool); {BOOL}",
                "train.optimizer.learning_rate: expected a number, received false (bool); write a number such as "
                "0.001, not true or false",
            ],
            id="booleans-are-not-numbers",
        ),
        pytest.param(
            {
                "data": {"name": "image_folder", "path": "x", "channels": True},
                "model": {"name": "mlp", "hidden_sizes": [8, True]},
            },
            [
                f"data.channels: expected a whole number, received true (bool); {BOOL}",
                f"model.hidden_sizes[1]: expected a whole number, received true (bool); {BOOL}",
            ],
            id="booleans-in-literals-and-lists",
        ),
        pytest.param(
            {
                "data": {"name": "digits", "classes": ["1", "1"], "pseudo_labels": {"teacher": ["a", "a"]}},
                "model": "mlp",
            },
            [
                "data.classes: lists '1' twice, at [0] and [1]; list each once",
                "data.pseudo_labels.teacher: lists 'a' twice, at [0] and [1]; list each once",
            ],
            id="duplicate-classes",
        ),
        pytest.param(
            train(freeze=["backbone", "head", "backbone", "backbone"], metrics=["accuracy", "f1", "accuracy"]),
            [
                "train.freeze: lists 'backbone' 3 times, at [0], [2] and [3]; list each once",
                "train.metrics: lists 'accuracy' twice, at [0] and [2]; list each once",
            ],
            id="duplicate-freeze-and-metrics",
        ),
        pytest.param(
            {**model(name="mlp", hidden_sizes=[0, 100_000_000]), "runtime": {"threads": 100000}},
            [
                "model.hidden_sizes[0]: should be greater than or equal to 1; received 0",
                "model.hidden_sizes[1]: should be less than or equal to 65536; received 100000000",
                "runtime.threads: should be less than or equal to 1024; received 100000",
            ],
            id="mlp-widths-and-threads",
        ),
        pytest.param(
            model(name="hybrid", channels=[32, 0], pool=[[2, 0]]),
            [
                "model.channels[1]: should be greater than or equal to 1; received 0",
                "model.pool[0][1]: should be greater than or equal to 1; received 0",
            ],
            id="hybrid-channels-and-pool",
        ),
        pytest.param(
            model(name="autoencoder", channels=[-8], hidden_sizes=[0], latent_size=70000),
            [
                "model.channels[0]: should be greater than or equal to 1; received -8",
                "model.hidden_sizes[0]: should be greater than or equal to 1; received 0",
                "model.latent_size: should be less than or equal to 65536; received 70000",
            ],
            id="autoencoder-widths",
        ),
        pytest.param(
            model(name="cnn", blocks=[100_000], head_hidden=[0]),
            [
                "model.blocks[0].channels: should be less than or equal to 65536; received 100000",
                "model.head_hidden[0]: should be greater than or equal to 1; received 0",
            ],
            id="cnn-widths",
        ),
        pytest.param(
            model(name="transformer", width=131072, heads=2, feedforward=0),
            [
                "model.feedforward: should be greater than or equal to 1; received 0",
                "model.width: should be less than or equal to 65536; received 131072",
            ],
            id="transformer-widths",
        ),
        pytest.param(
            model(name="resnet", stages=[{"channels": 70000}]),
            ["model.stages[0].channels: should be less than or equal to 65536; received 70000"],
            id="resnet-stage-width",
        ),
        pytest.param(
            model(name="resnet", preset="resnet18", width=200),
            ["model: stages[3].channels 512 × width 200 is 102400 channels, more than 65536; lower width"],
            id="resnet-width-multiplier",
        ),
        pytest.param(
            {"seed": 10**23, "data": {"name": "digits", "seed": -1}, "model": "mlp"},
            [
                "data.seed: should be greater than or equal to 0; received -1",
                "seed: should be less than or equal to 2147483647; received 100000000000000000000000",
            ],
            id="seeds-out-of-range",
        ),
        pytest.param(
            train(epochs="1e3") | {"seed": 1e23},
            [
                "seed: expected a whole number from 0 to 2147483647, received 1e+23 (float)",
                "train.epochs: expected a whole number of at least 1, received '1e3' (str); YAML reads 1e3 as text; "
                "write 1000",
            ],
            id="seed-too-large-and-a-whole-number-written-as-text",
        ),
        pytest.param(
            {**BASE, "seed": "1e23"},
            [
                "seed: expected a whole number from 0 to 2147483647, received '1e23' (str); YAML reads 1e23 as text; "
                "write a whole number in that range, in digits"
            ],
            id="seed-text",
        ),
    ],
)
def test_bad_values_are_config_errors(document, expected):
    assert problems_of(document) == expected


def _option_classes() -> list[type[BaseModel]]:
    found, stack = [], [Options]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        if cls.__module__.startswith("lamina.") and cls is not Options:
            found.append(cls)
    return found


def _plain(annotation) -> set:
    """The scalar types an annotation takes directly (Optional and Annotated stripped)."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:
        return _plain(args[0])
    if args and typing.get_origin(annotation) in (typing.Union, type(int | None)):
        return set().union(*(_plain(arg) for arg in args))
    return {annotation}


def test_every_float_option_is_finite_and_no_number_option_takes_a_boolean():
    checked = []
    for cls in _option_classes():
        for name, field in cls.model_fields.items():
            kinds = _plain(field.annotation)
            values = [math.inf, -math.inf, math.nan] if float in kinds else []
            values += [True] if kinds & {int, float} and bool not in kinds else []
            for value in values:
                with pytest.raises(ValidationError) as caught:
                    cls.model_validate({name: value})
                kinds_found = {error["type"] for error in caught.value.errors() if error["loc"][:1] == (name,)}
                assert kinds_found & {"finite_number", "bool_for_number"}, f"{cls.__name__}.{name} took {value}"
                checked.append(f"{cls.__name__}.{name}")
    assert {"AdamWOptions.learning_rate", "TrainOptions.l2", "StepOptions.gamma", "Config.seed"} <= set(checked)


def test_a_subclass_cannot_declare_a_field_again_without_its_range():
    with pytest.raises(TypeError, match="Loose.val_fraction drops the range SplitOptions.val_fraction declares"):

        class Loose(SplitOptions):
            val_fraction: float = 0.3


def test_ranges_and_distinct_names_show_in_the_json_schema():
    document = schema()
    definitions = document["$defs"]
    assert (document["properties"]["seed"]["minimum"], document["properties"]["seed"]["maximum"]) == (0, 2**31 - 1)
    widths = definitions["MLPOptions"]["properties"]["hidden_sizes"]["items"]
    assert widths == {"maximum": 65536, "minimum": 1, "type": "integer"}
    assert definitions["ConvBlock"]["properties"]["channels"]["maximum"] == 65536
    assert definitions["RuntimeOptions"]["properties"]["threads"]["anyOf"][0]["maximum"] == 1024
    assert definitions["DigitsOptions"]["properties"]["classes"]["anyOf"][0]["uniqueItems"] is True
    assert definitions["TrainOptions"]["properties"]["freeze"]["uniqueItems"] is True
    assert definitions["MNISTOptions"]["properties"]["val_fraction"]["exclusiveMaximum"] == 1
    assert config_class().model_fields["seed"].description.endswith("from 0 to 2147483647 (2**31 - 1).")


def test_valid_edge_values_still_pass():
    config = load_config(
        {
            "seed": 2**31 - 1,
            "data": {"name": "digits", "classes": ["1", "7"], "augment": [{"name": "affine", "scale": [0.9, 0.9]}]},
            "model": {"name": "mlp", "hidden_sizes": [65536, 1]},
            "train": {"epochs": 3.0, "learning_rate_factors": {"backbone": 0}, "freeze": ["a", "b"]},
            "runtime": {"threads": 1024},
        }
    )
    assert config.seed == 2**31 - 1 and config.train.epochs == 3 and type(config.train.epochs) is int
    assert config.data.augment[0].scale == (0.9, 0.9) and config.model.hidden_sizes == [65536, 1]


# ---- YAML: what yaml.safe_load takes silently or crashes on ------------------------------------------------


def test_a_key_given_twice_names_both_lines(tmp_path):
    path = tmp_path / "bad.yaml"
    text = "data: digits\nmodel: mlp\ntrain:\n  epochs: 3\n  optimizer: {name: adam, learning_rate: 0.1, learning_rate: 0.2}"
    path.write_text(text + "\n  batch_size: 8\n  epochs: 7\nmodel: cnn\n")
    assert file_problems(path) == (
        f"config has 3 problems in {path}:\n"
        "  - model: given twice, at lines 2 and 8; keep one\n"
        "  - train.epochs: given twice, at lines 4 and 7; keep one\n"
        "  - train.optimizer.learning_rate: given twice, at lines 5 and 5; keep one"
    )
    one = tmp_path / "one.yaml"
    one.write_text("data: digits\nmodel: mlp\ntrain:\n  epochs: 3\n\n\n  epochs: 7\n")
    assert file_problems(one) == f"config problem in {one}: train.epochs: given twice, at lines 4 and 7; keep one"
    with pytest.raises(ConfigError, match=r"^config problem: train.epochs: given twice; keep one$"):
        parse_overrides(["train={epochs: 1, epochs: 2}"])
    merged = tmp_path / "merge.yaml"  # a merge key's values may be overridden
    merged.write_text(
        "data: digits\nmodel: mlp\ntrain:\n  optimizer: {<<: {name: adam, learning_rate: 0.1}, learning_rate: 0.2}"
    )
    assert load_config(str(merged)).train.optimizer.learning_rate == 0.2


def test_a_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "wide.yaml"
    path.write_bytes("data: digits\nmodel: mlp\n".encode("utf-16"))
    assert file_problems(path) == (
        f"config problem: {path} is UTF-16 text, not UTF-8; save it as UTF-8 (your editor's encoding setting, or: "
        f"iconv -f UTF-16 -t UTF-8 {path} > fixed.yaml)"
    )
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("data: digits\ndescription: café\n".encode("latin-1"))
    assert file_problems(latin) == f"config problem: {latin} is not UTF-8 text: byte 0xe9 at line 2; save it as UTF-8"


def test_integer_keys_are_unknown_options(tmp_path):
    path = tmp_path / "keys.yaml"
    path.write_text("data: digits\nmodel: mlp\n1: 2\ntrain: {3: 4}\n")
    problems = file_problems(path)
    assert f"config has 2 problems in {path}:\n" in problems
    assert "  - 1: unknown option of the config; options: name, seed, description, data, model, train" in problems
    assert "  - train.3: unknown option of train; options: epochs, max_steps" in problems
    assert "a key must be text, received 1 (int)" in str(problems_of(train(unfreeze={1: 2})))


def test_deep_nesting_is_a_config_error(tmp_path):
    path = tmp_path / "deep.yaml"
    path.write_text("data: digits\nmodel: mlp\ntrain: {metrics: " + "[" * 5000 + "]" * 5000 + "}\n")
    hint = "a config needs only a few levels (section, option, list): check the brackets"
    assert file_problems(path) == (
        f"config problem in {path}: nested more than 100 levels deep, at line 3, column 116; {hint}"
    )
    with pytest.raises(ConfigError, match=r"^config problem: train.metrics: nested more than 100 levels deep"):
        parse_overrides(["train.metrics=" + "[" * 5000 + "]" * 5000])


def test_a_number_too_long_to_read_is_a_config_error(tmp_path):
    message = "a whole number of 5000 digits, more than the 4300 Python reads; write a smaller number"
    with pytest.raises(ConfigError, match=rf"^config problem: train.epochs: {message}$"):
        load_config(BASE, ["train.epochs=" + "9" * 5000])
    path = tmp_path / "long.yaml"
    path.write_text("data: digits\nmodel: mlp\ntrain:\n  epochs: " + "9" * 5000 + "\n")
    assert file_problems(path) == f"config problem in {path}: train.epochs: {message}"
    with pytest.raises(ConfigError, match=r"^config problem: seed: a whole number of 6021 digits, more than the 4300"):
        load_config(BASE, ["seed=0x" + "f" * 5000])  # read in base 16 whatever its length, but never printable


def test_validate_exits_2_without_a_traceback(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("seed: 1.0e+23\ndata: digits\nmodel: mlp\ntrain:\n  epochs: 1\n  epochs: 2\n")
    result = run_cli("validate", str(path), "--set", "train.l2=.inf")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert result.stderr == f"error: config problem in {path}: train.epochs: given twice, at lines 5 and 6; keep one\n"
    path.write_text("seed: 1.0e+23\ndata: digits\nmodel: mlp\n")
    result = run_cli("validate", str(path), "--set", "train.l2=.inf", "--set", "train.batch_size=" + "9" * 5000)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        "error: config problem: train.batch_size: a whole number of 5000 digits, more than the 4300 Python reads; "
        "write a smaller number\n"
    )
    result = run_cli("validate", str(path), "--set", "train.l2=.inf", "--set", "runtime.threads=100000")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr == (
        f"error: config has 3 problems in {path}:\n"
        "  - runtime.threads: should be less than or equal to 1024; received 100000\n"
        "  - seed: expected a whole number from 0 to 2147483647, received 1e+23 (float)\n"
        f"  - train.l2: expected a finite number, received inf (float); {FINITE}\n"
    )
