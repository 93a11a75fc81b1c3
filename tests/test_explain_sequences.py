"""Explanations of text, audio and language models (lamina/insight/{text,audio,language,attention,tokens}.py), on
small models trained here for a second or two on data whose answer is planted: a keyword that decides the label,
a token copied after a trigger. The classes are driven directly, as the explanation driver drives them."""

from __future__ import annotations

import functools
import math

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lamina.data.inputs import transform_for
from lamina.data.ngrams import NgramTokenizer
from lamina.data.spec import DataSpec
from lamina.data.text import pad_sequences
from lamina.insight.attention import attention_maps, attention_rollout
from lamina.insight.audio import TOP, AudioModality, spectrogram_box, write_spectrogram
from lamina.insight.language import LanguageModality
from lamina.insight.modality import ExplainContext, Explained
from lamina.insight.text import TextModality, remove_tokens
from lamina.models.registry import build_model

pytest.importorskip("captum")

VOCABULARY, LENGTH, KEYWORD = 30, 12, 3
TOKENS = ["<pad>", "<unk>", "<script>alert(1)</script>", " KEY", *(f" w{i}" for i in range(4, VOCABULARY))]
TEXT_SPEC = DataSpec(
    "text", "classification", (LENGTH,), num_classes=2, class_names=["ham", "spam"],
    extra={"vocab_size": VOCABULARY, "pad_id": 0},
)  # fmt: skip
FAMILIES = {
    "rnn": {"cell": "gru", "embedding_size": 16, "hidden_size": 16, "bidirectional": True, "pooling": "max"},
    "transformer": {"layers": 1, "heads": 2, "width": 16},
    "fasttext": {"embedding_size": 16},
}


def planted(count: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded texts of random words (ids 4…29, 6–12 of them); spam (1) exactly when KEY (3) is among them."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, VOCABULARY, (count, LENGTH), generator=generator)
    lengths = torch.randint(6, LENGTH + 1, (count,), generator=generator)
    ids[torch.arange(LENGTH)[None] >= lengths[:, None]] = 0
    labels = torch.randint(0, 2, (count,), generator=generator)
    where = (torch.rand(count, generator=generator) * lengths).long()
    spam = labels == 1
    ids[spam, where[spam]] = KEYWORD
    return ids, labels


def fitted(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, steps: int = 150):
    """`model` after `steps` Adam steps of batches of 64 (cross-entropy; per-step outputs for language models)."""
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(steps):
        batch = torch.randint(0, len(inputs), (64,))
        outputs = model(inputs[batch])
        loss = F.cross_entropy(outputs.reshape(-1, outputs.shape[-1]), targets[batch].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@functools.cache  # trained once per family for the whole module (explaining never changes a model)
def classifier(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return fitted(build_model(family, TEXT_SPEC, **FAMILIES[family]), *planted(512, seed=0))


def text_context(model, inputs, **fields) -> ExplainContext:
    return ExplainContext(model=model, spec=TEXT_SPEC, stored=inputs, inputs=inputs, tokens=TOKENS, pad_id=0, **fields)


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    """Spearman's correlation of two flat score vectors (ranks without ties: scores are continuous)."""
    ranks = [values.flatten().argsort().argsort().double() for values in (first, second)]
    return float(torch.corrcoef(torch.stack(ranks))[0, 1])


def deletion_auc(model, modality, context, inputs, targets, order: torch.Tensor) -> float:
    """The mean probability of `targets` as the real tokens are deleted in `order` (N, T) (first: deleted first),
    a tenth of each text's tokens at a time (the area under the deletion curve, 0…1)."""
    real = inputs != 0
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1]).expand_as(order))  # (N, T): when each position goes
    curve = []
    for fraction in torch.linspace(0, 1, 11):
        mask = real & (rank < (fraction * real.sum(dim=1, keepdim=True)).round())
        with torch.no_grad():
            probabilities = model(modality.delete(inputs, mask, context)).softmax(dim=1)
        curve.append(probabilities.gather(1, targets[:, None]).mean())
    return float(torch.stack(curve).mean())


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_planted_keyword_gets_the_top_score_and_padding_none(family):
    model = classifier(family)
    inputs, labels = planted(64, seed=1)
    context, modality = text_context(model, inputs), TextModality()
    assert torch.equal(modality.baseline(context), torch.zeros_like(inputs))
    spam = labels == 1
    for method in ("integrated_gradients", "occlusion") if family == "rnn" else ("integrated_gradients",):
        scores = modality.attribute(model, inputs, labels, method, context)
        assert scores.shape == inputs.shape
        assert scores[inputs == 0].abs().max() == 0  # padding scores 0
        top = inputs[spam].gather(1, scores[spam].argmax(dim=1, keepdim=True))
        assert (top == KEYWORD).float().mean() >= 0.9, (family, method)


def test_deleting_the_top_tokens_beats_random_and_a_randomized_model_disagrees():
    model, modality = classifier("rnn"), TextModality()
    inputs, labels = planted(64, seed=1)
    context = text_context(model, inputs)
    scores = modality.attribute(model, inputs, labels, "integrated_gradients", context)
    by_score = scores.masked_fill(inputs == 0, -math.inf).argsort(dim=1, descending=True)
    at_random = torch.rand(inputs.shape, generator=torch.Generator().manual_seed(0)).argsort(dim=1)
    guided = deletion_auc(model, modality, context, inputs, labels, by_score)
    random = deletion_auc(model, modality, context, inputs, labels, at_random)
    assert guided < random - 0.1, (guided, random)
    # a model trained again from other initial weights agrees on the order of the tokens; models with random
    # weights (the randomization check of Adebayo et al., 2018) do not
    real = inputs != 0
    torch.manual_seed(1)
    again = fitted(build_model("rnn", TEXT_SPEC, **FAMILIES["rnn"]), *planted(512, seed=0))
    retrained = modality.attribute(again, inputs, labels, "integrated_gradients", context)
    assert rank_correlation(scores[real], retrained[real]) > 0.5
    correlations = []
    for seed in (100, 101, 102):
        torch.manual_seed(seed)
        randomized = build_model("rnn", TEXT_SPEC, **FAMILIES["rnn"]).eval()
        fresh = modality.attribute(randomized, inputs, labels, "integrated_gradients", context)
        correlations.append(rank_correlation(scores[real], fresh[real]))
    assert abs(sum(correlations) / 3) < 0.2, correlations


def test_deleted_tokens_are_removed_and_the_rest_close_up():
    ids = torch.tensor([[5, 6, 7, 8, 0], [9, 3, 0, 0, 0]])
    mask = torch.tensor([[True, False, True, False, True], [False, False, True, True, True]])
    assert remove_tokens(ids, mask, 0).tolist() == [[6, 8, 0, 0, 0], [9, 3, 0, 0, 0]]


def test_the_page_escapes_text_and_the_terminal_names_the_top_tokens(tmp_path):
    model = classifier("transformer")
    inputs = torch.tensor([[4, 2, KEYWORD, 5, 0, 0, 0, 0, 0, 0, 0, 0]])  # token 2 reads <script>alert(1)</script>
    context, modality = text_context(model, inputs), TextModality()
    scores = modality.attribute(model, inputs, torch.tensor([1]), "integrated_gradients", context)
    items = [Explained("<b>odd name</b>", 1, 1, 0.97, scores[0], true_label=1)]
    paths = modality.write(tmp_path, items, "integrated_gradients", context)
    assert [path.relative_to(tmp_path).as_posix() for path in paths] == ["tokens.html", "attention/b_odd_name_b.png"]
    page = paths[0].read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;odd name&lt;/b&gt;" in page and "true spam, predicted spam (0.970)" in page
    assert page.count('<div class="row">') == 1 and page.count("<span style=") == 4 + 2  # 4 tokens, 2 in the key
    lines = modality.show(items, context).splitlines()
    assert lines[0] == "<b>odd name</b>  true spam, predicted spam (0.970); explained: spam"
    assert lines[2].startswith("  towards spam: ' KEY' +")


def test_fasttext_ngrams_are_summed_into_the_words_they_came_from():
    generator = torch.Generator().manual_seed(0)
    words = [f"word{i}" for i in range(20)]
    texts, labels = [], []
    for _ in range(400):
        chosen = [words[i] for i in torch.randint(0, 20, (6,), generator=generator).tolist()]
        spam = int(torch.randint(0, 2, (1,), generator=generator))
        if spam:
            chosen[int(torch.randint(0, 6, (1,), generator=generator))] = "zebra"
        texts.append(" ".join(chosen))
        labels.append(spam)
    tokenizer = NgramTokenizer.train(texts, word_ngrams=2, char_ngrams=(3, 4), buckets=500, min_count=1)
    ids = pad_sequences([tokenizer.encode(text) for text in texts], 256, 0)
    spec = DataSpec("text", "classification", (ids.shape[1],), num_classes=2, class_names=["ham", "spam"],
                    extra={"vocab_size": tokenizer.size, "pad_id": 0})  # fmt: skip
    torch.manual_seed(0)
    model = fitted(build_model("fasttext", spec, embedding_size=16), ids, torch.tensor(labels), steps=100)
    spam = [i for i in range(300, 400) if labels[i]][:10]
    inputs = ids[spam]
    record = {"tokenizer": tokenizer.to_dict()}
    context = ExplainContext(
        model, spec, inputs, inputs, pad_id=0, preprocessing=record, texts=[texts[i] for i in spam]
    )
    modality = TextModality()
    scores = modality.attribute(model, inputs, torch.ones(len(spam), dtype=torch.long), "integrated_gradients", context)
    items = [Explained(f"test:{i}", 1, 1, 0.9, scores[row]) for row, i in enumerate(spam)]
    rows = modality._rows(items, context)
    for row, index in zip(rows, spam, strict=True):
        assert [text.strip() for text, _ in row.pieces] == texts[index].split()  # words, not n-gram ids
        # every id's score lands in a word: the words' total is the ids' total
        assert sum(score for _, score in row.pieces) == pytest.approx(float(scores[rows.index(row)].sum()), rel=1e-4)
        assert max(row.pieces, key=lambda piece: piece[1])[0] == "zebra "
    no_texts = ExplainContext(model, spec, inputs, inputs, pad_id=0, preprocessing=record)
    assert modality._rows(items[:1], no_texts)[0].pieces[0][0] in {f"{word} " for word in [*words, "zebra"]}


def test_attention_maps_are_the_weights_the_model_uses():
    spec = DataSpec("text", "language_modeling", (7,), num_classes=9, extra={"vocab_size": 9, "pad_id": None})
    torch.manual_seed(0)
    model = build_model("transformer", spec, layers=2, heads=2, width=8, positions="learned").eval()
    inputs = torch.tensor([[1, 2, 3, 4, 5, 6, 7], [8, 7, 6, 5, 4, 3, 2]])
    layer_inputs, layer_outputs = [], []
    for block in model.blocks:
        block.attention.register_forward_pre_hook(lambda module, arguments: layer_inputs.append(arguments[0]))
        block.attention.register_forward_hook(lambda module, arguments, output: layer_outputs.append(output))
    maps = attention_maps(model, inputs)
    assert [tuple(weights.shape) for weights in maps] == [(2, 2, 7, 7)] * 2
    for block, weights, x, output in zip(model.blocks, maps, layer_inputs, layer_outputs, strict=True):
        attention, manual = block.attention, torch.zeros(2, 2, 7, 7)
        q, k, v = (x @ part.T for part in attention.qkv.weight.split(8))  # (N, T, C) each, no bias
        for head in range(2):
            columns = slice(4 * head, 4 * head + 4)
            logits = q[..., columns] @ k[..., columns].transpose(1, 2) / 2.0  # √d = 2
            logits = logits.masked_fill(torch.ones(7, 7).triu(1).bool(), -math.inf)  # causal
            manual[:, head] = logits.softmax(dim=-1)
        torch.testing.assert_close(weights, manual)
        mixed = torch.cat([weights[:, head] @ v[..., 4 * head : 4 * head + 4] for head in range(2)], dim=-1)
        torch.testing.assert_close(attention.out(mixed), output)  # the maps reproduce the layer's output
    rollout = attention_rollout(maps)
    torch.testing.assert_close(rollout.sum(dim=-1), torch.ones(2, 7))
    assert rollout.triu(1).abs().max() == 0  # causal: no position draws on a later one


def test_padding_keys_get_no_attention_and_the_cls_position_comes_first():
    model = build_model("transformer", TEXT_SPEC, layers=2, heads=2, width=16, pooling="cls").eval()
    inputs = torch.tensor([[5, 6, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0]])
    maps = attention_maps(model, inputs)
    assert maps[0].shape == (1, 2, 13, 13)
    assert maps[0][..., 4:].abs().max() == 0 and maps[1][..., :4].sum(dim=-1).allclose(torch.ones(1, 2, 13))


def test_language_model_explains_the_copied_token():
    vocabulary, steps, trigger = 12, 10, 1
    tokens = [" ", "#", *"cdefghijkl"]  # a character model without padding: a space stands for "nothing"
    spec = DataSpec("text", "language_modeling", (steps,), num_classes=vocabulary,
                    extra={"vocab_size": vocabulary, "pad_id": None})  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    streams = torch.randint(0, vocabulary, (2048, steps + 1), generator=generator)
    streams[streams == trigger] = 2
    where = torch.randint(1, steps - 1, (2048,), generator=generator)
    rows = torch.arange(2048)
    streams[rows, where] = trigger
    streams[rows, where + 1] = streams[rows, where - 1]  # after the trigger comes the token before it again
    torch.manual_seed(0)
    model = build_model("rnn", spec, cell="lstm", embedding_size=16, hidden_size=64)
    model = fitted(model, streams[:, :-1], streams[:, 1:], steps=300)
    windows = torch.randint(2, vocabulary, (32, steps), generator=generator)
    windows[:, -1] = trigger
    context = ExplainContext(model=model, spec=spec, stored=windows, inputs=windows, tokens=tokens)
    modality = LanguageModality()
    assert modality.empty_token(context) == 0 and modality.baseline(context).unique().tolist() == [0]
    predicted = model(windows)[:, -1].argmax(dim=1)
    assert (predicted == windows[:, -2]).float().mean() > 0.9
    scores = modality.attribute(model, windows, predicted, "integrated_gradients", context)
    assert scores.shape == (32, steps)
    assert (scores[:, :-1].argmax(dim=1) == steps - 2).float().mean() >= 0.8  # the token being copied
    item = Explained("val:0", int(predicted[0]), int(predicted[0]), 0.9, scores[0], int(windows[0, -2]))
    shown = modality.show([item], context).splitlines()
    assert (
        shown[0] == f"val:0  next token: predicted {tokens[item.target]!r} (0.900), true {tokens[item.target]!r}; "
        f"explained: {tokens[item.target]!r}"
    )
    assert shown[1].endswith(f"→ {tokens[item.target]}")
    assert shown[2].startswith(f"  towards {tokens[item.target]!r}: ")
    with_padding = ExplainContext(model=model, spec=spec, stored=windows, inputs=windows, tokens=tokens, pad_id=5)
    deleted = modality.delete(windows[:1], torch.arange(steps)[None] < 2, with_padding)  # the padding token, if any
    assert deleted[0].tolist() == [5, 5, *windows[0, 2:].tolist()]


AUDIO_RECORD = {
    "type": "audio", "sample_rate": 8000, "samples": 4000, "features": "log_mel", "n_fft": 256, "hop_length": 80,
    "n_mels": 32, "n_mfcc": 13, "normalize": "level", "top_db": 80.0, "mean": [-30.0] * 32, "std": [12.0] * 32,
}  # fmt: skip


def test_audio_attributions_start_from_silence_and_draw_over_the_spectrogram(tmp_path):
    transform = transform_for(AUDIO_RECORD)
    time = torch.arange(4000) / 8000
    waves = torch.stack([torch.sin(2 * math.pi * hz * time) * (time > 0.2) for hz in (300, 900, 1500, 2100)])
    inputs = transform(waves)  # (4, 1, 32, 51)
    spec = DataSpec("audio", "classification", tuple(inputs.shape[1:]), num_classes=3, class_names=list("abc"))
    model = build_model("hybrid", spec, channels=[4, 8], cell="gru", hidden_size=8).eval()
    context = ExplainContext(model=model, spec=spec, stored=waves, inputs=inputs, preprocessing=AUDIO_RECORD)
    modality = AudioModality()
    silence = modality.baseline(context)
    assert silence.shape == inputs.shape and silence.unique().numel() <= 32  # one value per band
    torch.testing.assert_close(silence[:, :, :, 0], inputs[:, :, :, 0])  # the silent start of each recording
    targets = torch.tensor([0, 1, 2, 0])
    for method in modality.methods:
        assert modality.attribute(model, inputs, targets, method, context).shape == (4, 32, 51)
    scores = modality.attribute(model, inputs, targets, "integrated_gradients", context)
    mask = scores > 0
    deleted = modality.delete(inputs, mask, context)
    assert torch.equal(deleted[:, 0][mask], silence[:, 0][mask]) and torch.equal(
        deleted[:, 0][~mask], inputs[:, 0][~mask]
    )
    # integrated gradients are complete: the scores add up to the change of the log-odds from silence
    with torch.no_grad():
        outputs, quiet = model(inputs).log_softmax(dim=1), model(silence).log_softmax(dim=1)

    def odds(log_p):  # log p / (1 − p) of the targets
        chosen = log_p.gather(1, targets[:, None]).squeeze(1)
        return chosen - torch.log1p(-chosen.exp())

    torch.testing.assert_close(scores.sum(dim=(1, 2)), odds(outputs) - odds(quiet), atol=0.02, rtol=0.05)
    paths = modality.write(
        tmp_path, [Explained("clip 1.wav", 0, 1, 0.4, scores[0], 0)], "integrated_gradients", context
    )
    assert [path.relative_to(tmp_path).as_posix() for path in paths] == ["spectrograms/clip_1.wav.png"]
    scale, width = spectrogram_box(32, 51)
    with Image.open(paths[0]) as image:
        assert image.size == (width, TOP + 32 * scale + 46) and scale == 6  # every cell a 6×6 square


def test_the_spectrogram_picture_puts_low_frequencies_at_the_bottom_and_colours_by_sign(tmp_path):
    spectrogram, scores = torch.zeros(8, 10), torch.zeros(8, 10)
    scores[0, 0], scores[7, 9] = 1.0, -1.0  # lowest band, first frame: towards; highest band, last frame: against
    path = write_spectrogram(tmp_path / "s.png", spectrogram, scores, "title")
    scale, _ = spectrogram_box(8, 10)
    left = 64 + 10 * scale + 70  # the second panel
    with Image.open(path) as image:
        red, _, blue = image.getpixel((left + scale // 2, TOP + 8 * scale - scale // 2))
        assert red > 150 and blue < 100
        red, _, blue = image.getpixel((left + 10 * scale - scale // 2, TOP + scale // 2))
        assert blue > 100 and red < 100
