"""Text that reads every file (lines end at \\n or \\r\\n only; headers, globs, JSONL, class names) and short texts
learned well: the fasttext family, and a language model pretraining a classifier (ULMFiT)."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import run_cli, shared_data
from lamina.config.loading import load_config
from lamina.core.errors import ConfigError, DataError
from lamina.data.build import build_data
from lamina.data.labelled_files import read_labelled
from lamina.data.lines import split_lines
from lamina.data.spec import DataSpec
from lamina.data.text import read_texts
from lamina.models.registry import build_model
from lamina.pipeline import train
from lamina.pipeline.prepare import prepare

# characters str.splitlines() breaks at, inside fields: NEL, LINE/PARAGRAPH SEPARATOR, form feed, vertical tab, FS
ODD = [
    ("see you\x85soon", "ham"),
    ("win\u2028cash\x0cnow", "spam"),
    ("ok\x1cfine\x0b", "ham"),
    ("call\u2029me", "spam"),
    ("nice\rday", "ham"),  # a lone carriage return ends no line either
    ("free £££", "spam"),
]


def data_of(section: dict, seed: int = 0, model: str = "rnn"):
    return build_data(load_config({"data": section, "model": model}).data, seed)


def all_texts(data) -> int:
    return sum(len(split) for split in data.splits.values())


def write_odd_tsv(path, last: str = "") -> None:
    # line 1 header, 2–4 texts, 5 blank (\r\n), 6–8 texts, then `last` on line 9
    rows = [f"{text}\t{label}" for text, label in ODD]
    path.write_bytes(("text\tlabel\n" + "\n".join(rows[:3]) + "\n\r\n" + "\r\n".join(rows[3:]) + "\n" + last).encode())


def test_lines_end_at_newline_only_and_errors_name_an_editors_line(tmp_path):
    assert split_lines("a\x85b\u2028c\r\nd\x0ce\n\nf") == ["a\x85b\u2028c", "d\x0ce", "", "f"]
    path = tmp_path / "odd.tsv"
    write_odd_tsv(path)
    section = {"name": "labelled_text", "path": str(path), "val_fraction": 0.2, "test_fraction": 0.2}
    assert all_texts(data_of(section)) == 6
    read = read_labelled(load_config({"data": section, "model": "rnn"}).data)
    assert list(zip(read.texts, read.labels, strict=True)) == ODD  # each text whole, its odd characters kept
    assert read.places == [f"{path}, line {line}" for line in (2, 3, 4, 6, 7, 8)]
    write_odd_tsv(path, "no label here\n")
    with pytest.raises(DataError) as error:
        data_of({"name": "labelled_text", "path": str(path)})
    assert str(error.value) == (
        f"{path}, line 9: 1 fields, expected at least 2\n"
        "  hint: the text or the label is missing on that line: add it, or remove the line"
    )
    write_odd_tsv(path, "hello there,ham\n")  # a comma where the tab should be: the separator is the likely cause
    with pytest.raises(DataError, match=r"line 9: 1 fields.*\n  hint: data.separator is '\\t', but this line splits"):
        data_of({"name": "labelled_text", "path": str(path)})


def test_csv_tables_time_series_and_predict_inputs_use_the_same_rule(tmp_path):
    table = tmp_path / "t.csv"
    rows = "".join(f"{i},{'ab'[i % 2]}\u2028x\x85y\x0c,{'yn'[i % 2]}\n" for i in range(20))
    table.write_text("size,note,label\n" + rows + "\n3,a,y,extra\n")
    with pytest.raises(DataError, match=r"t.csv, line 23: 4 fields, but the header has 3\n  hint: a field holds"):
        data_of({"name": "csv", "path": str(table), "target": "label"}, model="mlp")
    table.write_text("size,note,label\n" + rows)
    assert all_texts(data_of({"name": "csv", "path": str(table), "target": "label"}, model="mlp")) == 20
    series = tmp_path / "s.csv"
    series.write_text("note,value\n" + "".join(f"a\x85b\u2028,{i}\n" for i in range(40)) + "c,oops\n")
    with pytest.raises(DataError, match=r"column 'value' of .*s.csv holds 'oops' on line 42"):
        data_of({"name": "timeseries", "path": str(series), "target": "value", "lookback": 4, "horizon": 2})
    messages = tmp_path / "m.txt"
    messages.write_bytes("win\u2028cash now\r\nok\x85fine\x0c\n\nlater\n".encode())
    tokenizer = {"type": "character", "vocabulary": ["<pad>", "<unk>", "a"], "padding": True, "unknown": True}
    encoded, shown = read_texts([messages], {"tokenizer": tokenizer, "max_length": 16})
    assert shown == ["win\u2028cash now", "ok\x85fine\x0c", "later"] and encoded.shape[0] == 3


def test_a_csv_hint_names_the_separator_only_when_it_is_the_likely_cause(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("size;note;label\n" + "".join(f"{i};a;{'yn'[i % 2]}\n" for i in range(20)))
    with pytest.raises(DataError) as caught:
        data_of({"name": "csv", "path": str(table), "target": "label"}, model="mlp")
    assert str(caught.value) == (
        f"data.target: CSV file {table} has no column 'label'\n"
        "  hint: data.separator is ',', but this line splits into 3 fields at ';'; set data.separator: ';'"
    )
    table.write_text("size,note,lable\n" + "".join(f"{i},a,{'yn'[i % 2]}\n" for i in range(20)))
    with pytest.raises(DataError) as caught:  # the separator is right: the hint is about the name
        data_of({"name": "csv", "path": str(table), "target": "label"}, model="mlp")
    assert caught.value.hint == "did you mean 'lable'? columns: size, note, lable"


def test_header_detection_says_what_it_assumed(tmp_path):
    headed, bare = tmp_path / "headed.tsv", tmp_path / "bare.tsv"
    lines = [f"{text}\t{label}" for text, label in ODD]
    headed.write_text("message\tclass\n" + "\n".join(lines) + "\n")
    bare.write_text("\n".join(lines) + "\n")
    by_number = {"label_column": 1, "text_column": 0, "val_fraction": 0.2, "test_fraction": 0.2}
    data = data_of({"name": "labelled_text", "path": str(headed), **by_number})
    assert all_texts(data) == 6 and data.spec.class_names == ["ham", "spam"]
    assert data.notes[0] == (
        "header: auto read the first line of headed.tsv as column names; set data.header: false if it is a text"
    )
    data = data_of({"name": "labelled_text", "path": str(bare), **by_number})
    assert all_texts(data) == 6 and data.notes[0].startswith("header: auto found no header line in bare.tsv")
    by_name = {"text_column": "message", "label_column": "class", "val_fraction": 0.2, "test_fraction": 0.2}
    assert all_texts(data_of({"name": "labelled_text", "path": str(headed), **by_name})) == 6
    with pytest.raises(DataError) as error:
        data_of({"name": "labelled_text", "path": str(bare), **by_name})
    assert str(error.value) == (
        f"data.text_column: {bare} has no column 'message'\n"
        "  hint: its first line is a text, not a header (data.header: auto): give the column's 0-based number instead"
    )
    forced = data_of({"name": "labelled_text", "path": str(bare), "header": True, **by_number})
    assert all_texts(forced) == 5 and forced.notes[0].startswith("character tokenizer")  # no note when told


def test_a_list_and_a_glob_of_files_and_jsonl(tmp_path):
    for part in range(3):
        rows = [f"{text} {part}\t{label}" for text, label in ODD]
        (tmp_path / f"part{part}.tsv").write_text("text\tlabel\n" + "\n".join(rows) + "\n")
    section = {"name": "labelled_text", "val_fraction": 0.2, "test_fraction": 0.2}
    assert all_texts(data_of({**section, "path": str(tmp_path / "part*.tsv")})) == 18
    listed = data_of({**section, "path": [str(tmp_path / "part2.tsv"), str(tmp_path / "part[01].tsv")]})
    assert all_texts(listed) == 18 and listed.preprocessing["source"]["path"][0].endswith("part2.tsv")
    with pytest.raises(DataError, match=r"data.path: the pattern '.*nothing\*.tsv' matches no files"):
        data_of({**section, "path": str(tmp_path / "nothing*.tsv")})
    jsonl = tmp_path / "texts.jsonl"
    records = [{"text": text, "label": label, "id": i} for i, (text, label) in enumerate(ODD * 2)]
    jsonl.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records) + "\n")
    data = data_of({**section, "path": str(jsonl)})
    assert all_texts(data) == 12 and data.spec.class_names == ["ham", "spam"]
    with jsonl.open("a") as file:
        file.write('{"text": "no label", "class": "ham"}\n')
    with pytest.raises(DataError) as error:
        data_of({**section, "path": str(jsonl)})
    assert str(error.value) == f"{jsonl}, line 13 has no field 'label'\n  hint: fields: text, class (data.label_column)"


def test_class_names_order_the_classes_and_name_numbered_labels(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in ODD))
    section = {"name": "labelled_text", "path": str(path), "val_fraction": 0.2, "test_fraction": 0.2}
    data = data_of({**section, "class_names": ["spam", "ham"]})
    assert data.spec.class_names == ["spam", "ham"]
    everything = torch.cat([split.targets for split in data.splits.values()])
    assert sorted(everything.tolist()) == [0, 0, 0, 1, 1, 1]
    path.write_text("text\tlabel\n" + "".join(f"{text}\t{int(label == 'spam')}\n" for text, label in ODD))
    assert data_of({**section, "class_names": ["ham", "spam"]}).spec.class_names == ["ham", "spam"]
    with path.open("a") as file:
        file.write("what\t2\n")
    with pytest.raises(DataError) as error:
        data_of({**section, "class_names": ["ham", "spam"]})
    assert str(error.value) == (
        f"{path}, line 8: the label '2' is not a class number 0–1\n"
        "  hint: fix the label, or add its class to data.class_names"
    )
    path.write_text("text\tlabel\n" + "".join(f"{text}\t{label}\n" for text, label in ODD) + "hi\thm\n")
    with pytest.raises(DataError) as error:
        data_of({**section, "class_names": ["ham", "spam"]})
    assert str(error.value) == (
        f"{path}, line 8: the label 'hm' is not one of data.class_names (ham, spam)\n"
        "  hint: did you mean 'ham'? fix the label, or add its class to data.class_names"
    )


# ---- the fasttext family --------------------------------------------------------------------------------------


def sms_data(**options) -> dict:
    return {
        "name": "labelled_text",
        "path": str(shared_data("sms_spam") / "SMSSpamCollection"),
        "label_column": 0,
        "text_column": 1,
        **options,
    }


def test_fasttext_is_the_mean_of_the_real_tokens_embeddings_and_drops_tokens_only_in_training():
    spec = DataSpec("text", "classification", (6,), num_classes=2, extra={"vocab_size": 50, "pad_id": 0})
    model = build_model({"name": "fasttext", "embedding_size": 8, "token_dropout": 0.5}, spec).eval()
    tokens = torch.tensor([[5, 9, 9, 31, 0, 0], [7, 0, 0, 0, 0, 0]])
    table, head = model.embedding.weight, model.head
    expected = torch.stack([head(table[[5, 9, 9, 31]].mean(0)), head(table[[7]].mean(0))])
    assert torch.allclose(model(tokens), expected, atol=1e-6)  # padding is not part of the mean
    assert torch.equal(model(tokens), model(tokens))
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(tokens.repeat(8, 1)), expected.repeat(8, 1))


def test_fasttext_learns_sms_spam_in_seconds_and_predicts_text_files(tmp_path, runs_dir):
    config = {
        "seed": 0,
        "data": sms_data(tokenizer="ngrams", ngrams={"buckets": 20000}, max_length=1024, lowercase=True),
        "model": {"name": "fasttext", "embedding_size": 32},
        "train": {
            "epochs": 3,
            "batch_size": 64,
            "optimizer": {"name": "adam", "learning_rate": 0.01},
            "metrics": ["accuracy", "f1"],
        },
        "runtime": {"threads": 1},
    }
    run = train(config, runs_dir=runs_dir, progress="quiet")
    test = run.metrics["test"]
    assert test["accuracy"] > 0.97 and test["f1"] > 0.88, test  # all-ham: 0.866 and F1 0
    (tmp_path / "messages.txt").write_text(
        "URGENT! You have WON a £1000 prize. Call 09061701461 to claim now\nok see you at home later\n"
    )
    result = run_cli("predict", str(run.dir), str(tmp_path / "messages.txt"), "--json")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["label"] for line in result.stdout.splitlines()] == ["spam", "ham"]
    # explained from the test split, whose texts the data keeps: hashed n-grams are read back into whole words
    explained = run.explain(count=8, output=tmp_path / "explained")
    page = (tmp_path / "explained" / "tokens.html").read_text()
    assert "#n-gram" not in page and "one piece per input id" not in page
    deletion = explained.record["deletion"]
    assert deletion["auc"] < deletion["random_auc"] - 0.2, deletion


# ---- a language model pretrains a classifier (ULMFiT) -----------------------------------------------------------

LSTM = {"name": "rnn", "cell": "lstm", "embedding_size": 32, "hidden_size": 48}


@pytest.fixture(scope="module")
def language_model(tmp_path_factory):
    config = {
        "seed": 0,
        "data": sms_data(language_model={"context": 32, "windows_per_epoch": 640, "eval_windows": 100}),
        "model": LSTM,
        "train": {"epochs": 1, "batch_size": 32, "optimizer": {"name": "adamw", "learning_rate": 0.01}},
        "runtime": {"threads": 1},
    }
    return train(config, runs_dir=tmp_path_factory.mktemp("runs"), progress="quiet")


def classifier(language_model, **train_options) -> dict:
    return {
        "seed": 0,
        "data": sms_data(tokenizer_from=str(language_model.dir), max_length=64),
        "model": {**LSTM, "pooling": "max", "init_from": str(language_model.dir)},
        "train": {
            "epochs": 2,
            "batch_size": 64,
            "optimizer": {"name": "adamw", "learning_rate": 0.01},
            **train_options,
        },
        "runtime": {"threads": 1},
    }


def test_a_language_model_of_the_texts_pretrains_a_classifier_with_gradual_unfreezing(language_model, runs_dir):
    assert language_model.spec.task == "language_modeling" and language_model.metrics["val"]["perplexity"] < 25
    pretrained = load_file(str(language_model.dir / "model.safetensors"))
    session = prepare(load_config(classifier(language_model)))
    state = session.model.state_dict()
    encoder = [name for name in pretrained if name.startswith(("embed.", "recurrent."))]
    assert len(encoder) == 5 and all(torch.equal(state[name], pretrained[name]) for name in encoder)
    assert session.transfer["fresh"] == ["head"]  # the language model's head predicts tokens, not classes
    run = train(
        classifier(
            language_model, freeze=["backbone"], unfreeze={"recurrent": 1}, learning_rate_factors={"recurrent": 0.5}
        ),
        runs_dir=runs_dir,
        progress="quiet",
    )
    after = load_file(str(run.dir / "model.safetensors"))
    assert torch.equal(after["embed.weight"], pretrained["embed.weight"])  # still frozen
    assert not torch.equal(after["recurrent.weight_hh_l0"], pretrained["recurrent.weight_hh_l0"])  # after epoch 1
    assert run.metrics["test"]["accuracy"] > 0.9  # all-ham: 0.866


def test_weights_of_another_vocabulary_or_a_tokenizer_without_padding_are_refused(language_model, tmp_path):
    config = classifier(language_model)
    del config["data"]["tokenizer_from"]
    assert prepare(load_config(config)).transfer["loaded"] == 5  # the same texts give the same characters: no harm
    config["data"]["lowercase"] = True  # fewer characters: every id above 'A' now means another character
    with pytest.raises(ConfigError) as error:
        prepare(load_config(config))
    assert str(error.value) == (
        f"config problem: model.init_from: {str(language_model.dir)!r} was trained on text tokenized otherwise than "
        f"this data, so its embeddings would stand for other tokens; set data.tokenizer_from: "
        f"{language_model.dir} to tokenize this data as it did"
    )
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question\n" * 20)
    with pytest.raises(
        DataError, match="this run is a language model"
    ):  # its tokenizer pads, yet it classifies nothing
        language_model.predict([corpus])
    plain = train(
        {
            "data": {"name": "text", "path": str(corpus), "context": 8, "windows_per_epoch": 32},
            "model": {**LSTM, "hidden_size": 8},
            "train": {"epochs": 1},
        },
        runs_dir=tmp_path / "runs",
        progress="quiet",
    )
    with pytest.raises(
        DataError, match="the tokenizer of .* has no padding token \\(a language model of data: text\\)"
    ):
        data_of(sms_data(tokenizer_from=str(plain.dir)))
