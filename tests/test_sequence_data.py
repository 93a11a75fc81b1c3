"""Sequence data: tokenizers, language-model windows, labelled text, audio features, digit strings, time series."""

from __future__ import annotations

import math

import numpy
import pytest
import torch

from conftest import shared_data
from lamina.config.loading import load_config
from lamina.core.errors import DataError
from lamina.data.audio import read_waveform
from lamina.data.audio_augment import change_speed, mask_bands, shift_and_noise
from lamina.data.build import build_data
from lamina.data.spectral import (
    dct_matrix,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
    mfcc,
    tilt_bands,
    warp_mel_frequencies,
)
from lamina.data.text import TrimPadding, pad_sequences, random_windows, text_windows
from lamina.data.timeseries import naive_errors, sliding_windows
from lamina.data.tokenizers import BPETokenizer, CharacterTokenizer, tokenizer_from_dict


def data_of(section: dict, seed: int = 0):
    return build_data(load_config({"data": section, "model": "rnn"}).data, seed)


# ---- tokenizers -------------------------------------------------------------------------------------------


def test_character_tokenizer_round_trips_and_saves_as_json():
    tokenizer = CharacterTokenizer.train(["to be or not"], padding=True)
    assert tokenizer.vocabulary[:2] == ["<pad>", "<unk>"] and tokenizer.pad_id == 0
    ids = tokenizer.encode("be not!")  # '!' never seen: unknown
    assert tokenizer.decode(ids) == "be not" and ids[-1] == 1
    again = tokenizer_from_dict(tokenizer.to_dict())
    assert again.encode("be not!") == ids
    exact = CharacterTokenizer.train(["abc"], padding=False)
    assert exact.size == 3
    with pytest.raises(DataError, match="character 'z' is not in the tokenizer's vocabulary"):
        exact.encode("abz")


def test_bpe_tokenizer_learns_merges_from_training_text_only():
    texts = ["the cat sat on the mat"] * 50 + ["the hat"] * 20
    tokenizer = BPETokenizer.train(texts, vocab_size=300, padding=True)
    assert tokenizer.pad_id == 0
    ids = tokenizer.encode("the cat sat")
    assert len(ids) < len("the cat sat") and tokenizer.decode(ids) == "the cat sat"
    assert tokenizer.decode(tokenizer.encode("zebra ü")) == "zebra ü"  # byte level: nothing is unknown
    assert tokenizer_from_dict(tokenizer.to_dict()).encode("the hat") == tokenizer.encode("the hat")
    assert sum(tokenizer.byte_lengths()[i] for i in ids) == len("the cat sat")


def test_padding_is_trimmed_per_batch():
    padded = pad_sequences([[5, 6, 7], [8], [1, 2, 3, 4, 5, 6]], max_length=4, pad_id=0)
    assert padded.tolist() == [[5, 6, 7, 0], [8, 0, 0, 0], [1, 2, 3, 4]]
    assert TrimPadding(0)(padded[:2]).tolist() == [[5, 6, 7], [8, 0, 0]]


# ---- language-model windows -------------------------------------------------------------------------------


def test_windows_predict_the_next_token_and_are_drawn_from_seed_and_epoch():
    stream = torch.arange(100)
    evaluation = text_windows(stream, 8)
    assert torch.equal(evaluation.targets, evaluation.inputs + 1)
    assert torch.equal(evaluation.inputs[:, 0], torch.arange(0, 92, 8))  # non-overlapping, every token once
    first, again = random_windows(stream, 8, 5, seed=1, epoch=3), random_windows(stream, 8, 5, seed=1, epoch=3)
    assert torch.equal(first.inputs, again.inputs) and torch.equal(first.targets, first.inputs + 1)
    assert not torch.equal(first.inputs, random_windows(stream, 8, 5, seed=1, epoch=4).inputs)


def test_shakespeare_split_is_nanogpts():
    path = shared_data("tinyshakespeare") / "input.txt"
    data = data_of({"name": "text", "path": str(path), "context": 64})
    assert data.spec.num_classes == 65 and set(data.splits) == {"train", "val"}
    assert data.splits["val"].inputs.shape == (111_540 // 64, 64)
    text = path.read_text()
    vocabulary = data.preprocessing["tokenizer"]["vocabulary"]
    assert vocabulary == sorted(set(text[: int(len(text) * 0.9)]))
    assert "".join(vocabulary[i] for i in data.splits["val"].inputs[0, :20]) == text[1_003_854:1_003_874]
    epoch_two = data.epoch_split(0, 2)
    assert len(epoch_two) == len(data.splits["train"])
    assert not torch.equal(epoch_two.inputs, data.splits["train"].inputs)


def test_sms_spam_is_read_from_its_tab_separated_file():
    path = shared_data("sms_spam") / "SMSSpamCollection"
    data = data_of(
        {
            "name": "labelled_text",
            "path": str(path),
            "header": False,
            "label_column": 0,
            "text_column": 1,
            "max_length": 64,
        }
    )
    assert data.spec.class_names == ["ham", "spam"]
    counts = sum(torch.bincount(split.targets, minlength=2) for split in data.splits.values())
    assert counts.tolist() == [4827, 747]  # the corpus's documented class counts
    test = data.splits["test"].targets
    assert abs(float(test.float().mean()) - 747 / 5574) < 0.01  # stratified
    with pytest.raises(DataError, match="has no column 'message'"):
        data_of({"name": "labelled_text", "path": str(path), "header": False, "text_column": "message"})


# ---- audio ------------------------------------------------------------------------------------------------


def reference_slaney_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> numpy.ndarray:
    """The Slaney mel filterbank written out loop by loop from its definition (as librosa.filters.mel with
    htk=False, norm='slaney'): the oracle for lamina's vectorized version."""

    def to_mel(hz):
        return hz / (200 / 3) if hz < 1000 else 15 + math.log(hz / 1000) / (math.log(6.4) / 27)

    def to_hz(mel):
        return mel * (200 / 3) if mel < 15 else 1000 * math.exp((math.log(6.4) / 27) * (mel - 15))

    top = to_mel(sample_rate / 2)
    edges = [to_hz(top * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bins = [sample_rate / 2 * j / (n_fft // 2) for j in range(n_fft // 2 + 1)]
    weights = numpy.zeros((n_mels, len(bins)))
    for m in range(n_mels):
        low, centre, high = edges[m], edges[m + 1], edges[m + 2]
        for j, frequency in enumerate(bins):
            if low < frequency < high:
                rising = (frequency - low) / (centre - low)
                falling = (high - frequency) / (high - centre)
                weights[m, j] = min(rising, falling) * 2 / (high - low)
    return weights


@pytest.mark.parametrize(("sample_rate", "n_fft", "n_mels"), [(8000, 512, 40), (16000, 400, 64), (22050, 2048, 128)])
def test_mel_filterbank_matches_the_slaney_formula(sample_rate, n_fft, n_mels):
    ours = mel_filterbank(sample_rate, n_fft, n_mels).double().numpy()
    assert numpy.allclose(ours, reference_slaney_filterbank(sample_rate, n_fft, n_mels), atol=1e-7)
    assert (ours.sum(axis=1) > 0).all()  # no empty filter


def test_mel_scale_known_values_and_dct_against_scipy():
    from scipy.fft import dct

    assert hz_to_mel(1000.0) == 15.0 and hz_to_mel(440.0) == pytest.approx(6.6)  # librosa.hz_to_mel(440) = 6.6
    assert hz_to_mel(4000.0) == pytest.approx(15 + math.log(4) / (math.log(6.4) / 27))
    assert mel_to_hz(hz_to_mel(3210.0)) == pytest.approx(3210.0)
    log_mel = torch.randn(2, 40, 7)
    expected = dct(log_mel.double().numpy(), type=2, norm="ortho", axis=1)[:, :13]
    assert numpy.allclose(mfcc(log_mel, dct_matrix(13, 40)).numpy(), expected, atol=1e-5)


def test_a_pure_tone_lights_up_the_mel_band_of_its_frequency():
    from lamina.data.audio import AudioFeatures

    record = {"sample_rate": 8000, "n_fft": 512, "hop_length": 80, "n_mels": 40, "n_mfcc": 20, "features": "log_mel"}
    tone = torch.sin(2 * math.pi * 1000.0 * torch.arange(8000) / 8000).unsqueeze(0)
    band = int(AudioFeatures(record).raw(tone)[0, 0, :, 50].argmax())
    filterbank = mel_filterbank(8000, 512, 40)
    assert band == int(filterbank[:, round(1000 / 8000 * 512)].argmax())


def test_vtlp_moves_a_tone_by_its_factor_and_factor_one_changes_nothing():
    from lamina.data.audio import AudioFeatures

    record = {"sample_rate": 8000, "n_fft": 512, "hop_length": 80, "n_mels": 40, "n_mfcc": 20, "features": "log_mel"}
    time = torch.arange(8000) / 8000
    tones = AudioFeatures(record).raw(torch.stack([torch.sin(2 * math.pi * f * time) for f in (1500.0, 1650.0)]))
    warped = warp_mel_frequencies(tones[:1], torch.tensor([1.1]), 8000)  # (1, 1, 40, frames)
    # 1500 Hz scaled by 1.1 lands on the band where a real 1650 Hz tone peaks
    assert int(warped[0, 0, :, 50].argmax()) == int(tones[1, 0, :, 50].argmax()) != int(tones[0, 0, :, 50].argmax())
    lowered = warp_mel_frequencies(tones[1:], torch.tensor([1 / 1.1]), 8000)
    assert int(lowered[0, 0, :, 50].argmax()) == int(tones[0, 0, :, 50].argmax())
    assert torch.allclose(warp_mel_frequencies(tones, torch.ones(2), 8000), tones, atol=1e-4)
    # features equal to their band number: band b (centre c_b) reads the band position of c_b / factor
    step = hz_to_mel(4000.0) / 41  # mel between band centres; band b is centred at (b + 1) · step
    centres = mel_to_hz(step * torch.arange(1, 41, dtype=torch.float64))
    expected = (hz_to_mel(centres / 1.05) / step - 1).float().clamp(min=0)  # below band 0: band 0
    bands = torch.arange(40, dtype=torch.float32).view(1, 1, 40, 1).expand(1, 1, 40, 3)
    result = warp_mel_frequencies(bands, torch.tensor([1.05]), 8000)[0, 0, :, 0]
    assert torch.allclose(result, expected, atol=1e-4)


def test_tilt_raises_the_high_bands_and_lowers_the_low_ones_by_half_the_slope():
    features = torch.zeros(2, 1, 40, 5)
    tilted = tilt_bands(features, torch.tensor([12.0, -6.0]))
    assert torch.allclose(tilted[0, 0, [0, -1], 3], torch.tensor([-6.0, 6.0]))
    assert torch.allclose(tilted[1, 0, [0, -1], 0], torch.tensor([3.0, -3.0]))
    assert torch.allclose(tilted.mean(dim=2), features.mean(dim=2), atol=1e-6)  # no change of overall level
    assert (tilted[0, 0, 1:] > tilted[0, 0, :-1]).all()  # rises band by band


def test_level_normalization_removes_a_recordings_gain():
    from lamina.data.audio import AudioFeatures

    record = {
        "sample_rate": 8000,
        "n_fft": 512,
        "hop_length": 80,
        "n_mels": 40,
        "n_mfcc": 20,
        "features": "log_mel",
        "normalize": "level",
        "top_db": 60.0,
    }
    voice = torch.zeros(8000)
    voice[1000:4000] = torch.randn(3000, generator=torch.Generator().manual_seed(0))  # zero padding around it
    features = AudioFeatures(record).raw(torch.stack([voice, 0.01 * voice]))  # the same recording 40 dB quieter
    assert torch.allclose(features[0], features[1], atol=1e-3)
    assert features.amax() == 0 and features.amin() == -60.0  # dB below the loudest, floored at top_db


def test_fsdd_speaker_split_holds_out_whole_speakers():
    path = shared_data("fsdd")
    waveform = read_waveform(path / "recordings" / "3_theo_7.wav", 8000, 8000)
    assert waveform.shape == (8000,) and waveform.dtype == numpy.float32 and abs(waveform).max() > 0.01
    resampled = read_waveform(path / "recordings" / "3_theo_7.wav", 16000, 16000)  # resampled, same duration
    assert numpy.count_nonzero(resampled) == pytest.approx(2 * numpy.count_nonzero(waveform), rel=0.02)
    data = data_of({"name": "audio", "path": str(path), "split": "group", "test_groups": ["theo"]})
    assert len(data.splits["test"]) == 500 and len(data.splits["train"]) + len(data.splits["val"]) == 2500
    assert data.spec.input_shape == (1, 40, 101) and data.spec.class_names == [str(d) for d in range(10)]
    with pytest.raises(DataError, match="names no known speaker"):
        data_of({"name": "audio", "path": str(path), "split": "group", "test_groups": ["theodore"]})


def test_fsdd_with_level_normalization_vtlp_and_tilt_augments_training_batches_only():
    path = shared_data("fsdd")
    augment = [
        {"name": "vocal_tract_length", "warp": 0.1},
        {"name": "spectral_tilt", "decibels": 10.0},
        {"name": "mixup", "alpha": 0.2},
    ]
    section = {
        "name": "audio",
        "path": str(path),
        "split": "group",
        "test_groups": ["theo"],
        "normalize": "level",
        "augment": augment,
    }
    data = data_of(section)
    inputs, labels = data.transform(data.splits["train"].inputs[:8]), data.splits["train"].targets[:8]
    augmented, soft = data.augment(inputs, labels, torch.Generator().manual_seed(0))
    assert augmented.shape == inputs.shape == (8, 1, 40, 101) and not torch.allclose(augmented, inputs)
    assert soft.shape == (8, 10) and torch.allclose(soft.sum(1), torch.ones(8))  # mixup: soft labels
    assert bool((soft.gather(1, labels.view(-1, 1)) > 0).all())


def test_mix_batch_mixes_inputs_and_labels_by_one_weight():
    from lamina.data.augment import mix_batch

    inputs, labels = torch.randn(6, 1, 4, 5), torch.tensor([0, 1, 2, 3, 4, 5])
    mixed, soft = mix_batch(inputs, labels, 6, 0.4, torch.Generator().manual_seed(0))
    weights = soft.gather(1, labels.view(-1, 1)).flatten()  # each sample keeps w of its own label
    partners = [int((row * (torch.arange(6) != i)).argmax()) for i, row in enumerate(soft)]  # the other label
    moved = [i for i in range(6) if weights[i] < 1]
    assert moved and torch.allclose(weights[moved], weights[moved[0]].expand(len(moved)))
    for i in moved:  # the input is mixed by the same weight as its label
        expected = weights[i] * inputs[i] + (1 - weights[i]) * inputs[partners[i]]
        assert torch.allclose(mixed[i], expected, atol=1e-6)


def test_band_augmentations_on_mfcc_are_a_config_error_before_any_file_is_read():
    from lamina.config.loading import load_config
    from lamina.core.errors import ConfigError

    section = {"name": "audio", "path": "no/such/folder", "features": "mfcc", "augment": ["spectral_tilt"]}
    with pytest.raises(ConfigError, match="spectral_tilt works on log-mel bands, but features is 'mfcc'"):
        load_config({"data": section, "model": {"name": "hybrid"}})


def test_waveform_augmentation_is_seeded_and_spec_augment_masks_bands():
    waves = torch.randn(4, 1000)
    shifted = shift_and_noise(waves, 50, None, torch.Generator().manual_seed(0))
    assert torch.equal(shifted, shift_and_noise(waves, 50, None, torch.Generator().manual_seed(0)))
    assert any(torch.equal(shifted[0, 50:950], waves[0, 50 + s : 950 + s]) for s in range(-50, 51))
    noisy = shift_and_noise(waves, 0, 20.0, torch.Generator().manual_seed(0))
    snr = 10 * torch.log10(waves.pow(2).mean(1) / (noisy - waves).pow(2).mean(1))
    assert ((snr > 19) & (snr < 41)).all()
    tone = torch.sin(torch.arange(1000) * 0.1).repeat(2, 1)
    faster = change_speed(tone, torch.tensor([1.0, 2.0]))
    assert torch.equal(faster[0], tone[0]) and torch.allclose(faster[1, :499], tone[1, ::2][:499], atol=1e-5)
    assert (faster[1, 500:] == 0).all()  # the recording ended: silence
    features = torch.ones(8, 1, 20, 30)
    masked = mask_bands(features, torch.Generator().manual_seed(0), 2, 5, 1, 4)
    zero_frames = (masked[:, 0] == 0).all(dim=1).sum(dim=1)  # whole frames masked per sample
    assert (zero_frames <= 10).all() and zero_frames.sum() > 0


# ---- digit strings and time series ------------------------------------------------------------------------


def test_digit_strings_from_mnist_test_digits_only():
    path = shared_data("mnist")
    data = data_of(
        {
            "name": "digit_strings",
            "path": str(path),
            "train_strings": 50,
            "val_strings": 20,
            "test_strings": 30,
            "jitter": 0,
        }
    )
    assert data.spec.task == "transcription" and data.spec.input_shape == (1, 28, 112)
    from lamina.data.images import mnist
    from lamina.data.options import MNISTOptions

    test_digits = mnist(MNISTOptions(path=str(path)), 0).splits["test"]
    image, label = data.splits["test"].inputs[0, 0], data.splits["test"].targets[0]
    for position in range(4):  # without jitter each cell is one official test digit with the right label
        cell = image[:, 28 * position : 28 * (position + 1)]
        match = (test_digits.inputs[:, 0] == cell).all(dim=2).all(dim=1).nonzero().flatten()
        assert len(match) >= 1 and test_digits.targets[match[0]] == label[position]


def test_time_series_windows_and_naive_baseline():
    series = torch.arange(20, dtype=torch.float64)
    windows, futures, last = sliding_windows(series[:, None], series, lookback=4, horizon=2, stride=3)
    assert windows[1, :, 0].tolist() == [3, 4, 5, 6] and futures[1].tolist() == [7, 8] and last[1] == 6
    errors = naive_errors(futures, last)
    assert errors["mae"] == pytest.approx(1.5) and errors["rmse"] == pytest.approx(math.sqrt(2.5))
