"""Config validation: every problem at once, by dotted path, with a suggestion; overrides; schema."""

from __future__ import annotations

import pytest
from pydantic import Field

from lamina.config.loading import apply_overrides, load_config, parse_overrides
from lamina.config.schema import config_class, schema
from lamina.core.errors import ConfigError
from lamina.core.options import Options
from lamina.models.options import models


def problems_of(document: dict, overrides=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(document, overrides)
    return [str(problem) for problem in caught.value.problems]


def test_defaults_are_filled_and_names_resolve():
    config = load_config({"data": "digits", "model": "mlp"})
    assert config.model.hidden_sizes == [256, 128]
    assert config.train.optimizer.name == "adamw" and config.train.optimizer.weight_decay == 0.01
    assert config.train.schedule.name == "constant"
    assert config.train.loss is None  # chosen from the task when the data is known
    assert config.runtime.device == "auto"


def test_three_kinds_of_mistake_are_reported_together():
    problems = problems_of(
        {
            "data": "digits",
            "model": {"name": "cnnn"},
            "train": {"epocs": 3, "optimizer": {"name": "adam", "learning_rate": "fast"}},
        }
    )
    train_options = list(config_class().model_fields["train"].annotation.model_fields)
    assert train_options[:3] == ["epochs", "max_steps", "batch_size"] and "freeze" in train_options
    assert problems == [
        f"model.name: unknown model 'cnnn'; did you mean 'cnn'? registered: {', '.join(models.names())}",
        f"train.epocs: unknown option of train; did you mean 'epochs'? options: {', '.join(train_options)}",
        "train.optimizer.learning_rate: expected a number, received 'fast' (str); write a number such as 0.001, "
        "without quotes",
    ]


def test_options_of_a_named_entry_are_checked_against_that_entry():
    problems = problems_of(
        {"data": "digits", "model": {"name": "cnn", "activaton": "relu", "blocks": [{"channels": 8, "pool": "maxx"}]}}
    )
    assert "model.blocks[0].pool: received 'maxx'; did you mean 'max'? allowed: max, avg, none" in problems
    assert any(
        p.startswith("model.activaton: unknown option of model 'cnn'; did you mean 'activation'?") for p in problems
    )


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"data": "digitz", "model": "mlp"}, "data.name: unknown dataset 'digitz'; did you mean 'digits'?"),
        (
            {"data": "digits", "model": "mlp", "train": {"loss": "cross_entropi"}},
            "train.loss.name: unknown loss 'cross_entropi'; did you mean 'cross_entropy'?",
        ),
        (
            {"data": "digits", "model": "mlp", "train": {"optimizer": "adamm"}},
            "train.optimizer.name: unknown optimizer 'adamm'; did you mean 'adam'?",
        ),
        (
            {"data": "digits", "model": "mlp", "train": {"schedule": "cosin"}},
            "train.schedule.name: unknown schedule 'cosin'; did you mean 'cosine'?",
        ),
        (
            {"data": "digits", "model": "mlp", "train": {"metrics": ["acuracy"]}},
            "train.metrics: unknown metric 'acuracy'; did you mean 'accuracy'?",
        ),
        (
            {"data": "digits", "model": "mlp", "train": {"monitor": "val.acc"}},
            "train.monitor: unknown metric 'acc'; did you mean 'accuracy'?",
        ),
        (
            {"data": "digits", "model": "mlp", "train": {"epochs": 0}},
            "train.epochs: should be greater than or equal to 1; received 0",
        ),
        (
            {"data": "digits", "model": "mlp", "runtime": {"device": "gpu"}},
            "runtime.device: unknown device 'gpu'; use auto, cpu, cuda, cuda:N or mps",
        ),
        ({"data": {"name": "mnist"}, "model": "mlp"}, "data.path: is required"),
        ({"model": "mlp"}, "data: is required"),
    ],
)
def test_each_registry_name_gets_a_suggestion(document, expected):
    assert any(problem.startswith(expected) for problem in problems_of(document)), problems_of(document)


def test_overrides_are_parsed_as_yaml_and_applied_by_dotted_path():
    overrides = parse_overrides(["train.epochs=5", "model.hidden_sizes=[8, 4]", "train.loss.label_smoothing=0.1"])
    document = apply_overrides({"data": "digits", "model": "mlp", "train": {"loss": "cross_entropy"}}, overrides)
    config = load_config(document)
    assert config.train.epochs == 5 and config.model.hidden_sizes == [8, 4]
    assert config.train.loss.name == "cross_entropy" and config.train.loss.label_smoothing == 0.1


def test_step_milestones_must_increase():
    problems = problems_of(
        {"data": "digits", "model": "mlp", "train": {"schedule": {"name": "step", "milestones": [75, 50]}}}
    )
    assert problems == [
        "train.schedule.milestones: must be increasing epochs ≥ 1, received [75, 50]; for example [50, 75]"
    ]


def test_bad_override_syntax_is_a_config_error():
    with pytest.raises(ConfigError, match="expected dotted.key=value, received 'train.epochs'"):
        parse_overrides(["train.epochs"])


def test_a_flow_mapping_without_a_space_after_the_colon_is_explained():
    overrides = parse_overrides(["train.unfreeze={backbone:3}"])  # YAML reads {'backbone:3': None}
    problems = problems_of({"data": "digits", "model": "mlp"}, overrides)
    assert problems == [
        "train.unfreeze.backbone:3: YAML needs a space after the colon of a key; write {backbone: 3}, not {backbone:3}"
    ]


def test_yaml_errors_name_the_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("data: digits\nmodel: [mlp\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line 3"):
        load_config(path)


def test_missing_config_file():
    with pytest.raises(ConfigError, match="config file 'nope.yaml' does not exist"):
        load_config("nope.yaml")


def test_schema_lists_every_family_and_option():
    document = schema()
    text = str(document)
    for name in ("mlp", "cnn", "digits", "mnist", "csv", "breast_cancer", "adamw", "muon", "one_cycle", "huber"):
        assert f"'{name}'" in text
    assert "Width of each hidden layer" in text  # option docstrings become descriptions


def test_docstrings_below_fields_become_descriptions_in_local_and_derived_classes():
    class Local(Options):
        width: int = 3
        """Width of a layer."""
        depth: int = 2
        """Layers.

        More detail."""
        labelled: int = Field(1, description="explicit wins")
        """Not used."""

    class Derived(Local):
        depth: int = 4  # redeclared without a docstring: no description, as with pydantic
        extra: float = 0.5
        """Extra."""

    descriptions = {name: field.description for name, field in Derived.model_fields.items()}
    assert descriptions == {"width": "Width of a layer.", "depth": None, "labelled": "explicit wins", "extra": "Extra."}
    assert Local.model_fields["depth"].description == "Layers.\n\nMore detail."
    assert Local.model_json_schema()["properties"]["width"]["description"] == "Width of a layer."


def test_a_class_without_source_gets_no_descriptions():
    namespace = {"Options": Options, "__name__": "made_by_exec"}
    exec('class Hidden(Options):\n    size: int = 1\n    """Size."""\n', namespace)
    assert namespace["Hidden"].model_fields["size"].description is None
