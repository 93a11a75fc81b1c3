"""The data sets a config can name, and their options: what image data sets share (classes, few labels,
pseudo-labels, reconstruction), then images, tables, audio, text, digit strings and time series. What every data
set shares (augmentation, splits) is in base_options.py, the text data sets' options in text_options.py, tables
and arrays of your own in table_options.py; lamina/data/catalogue.py is the list of every built-in data set.
Importing these does not import PyTorch (a data set's reader is imported when it is built).
"""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lamina.core.options import Each, Names, Options
from lamina.data.augment_options import augmentations
from lamina.data.base_options import Augmentations, DataOptions, SplitOptions, check_augmentations, datasets
from lamina.data.text_options import LabelledTextOptions, TextOptions, TokenizerKind
from lamina.tasks import tasks

__all__ = [
    "datasets",
    "DataOptions",
    "SplitOptions",
    "ImageOptions",
    "PseudoLabelOptions",
    "check_augmentations",
    "TokenizerKind",
    "TextOptions",
    "LabelledTextOptions",
]


class PseudoLabelOptions(Options):
    """Pseudo-labelling of the 'unlabelled' split. With a `teacher` run (offline self-training): the teacher
    labels the pool once and its confident labels join the training split. Without one (online, FixMatch):
    at every step the model being trained labels a weakly augmented unlabelled batch and learns those labels,
    where it is confident, on strongly augmented copies of the same images."""

    teacher: str | Names | None = None
    """Offline: run folder of the model that labels (trained on the same labelled subset, e.g. with the same
    config), or a list of them, whose probabilities are averaged. None: online pseudo-labelling by the model
    itself."""
    threshold: float = Field(0.95, gt=0, lt=1)
    """Keep a pseudo-label only where the labelling model gives its class at least this probability."""
    strong_augment: Augmentations = []
    """Online: augmentations applied on top of data.augment to make the strong view (label-preserving ones:
    affine, random_crop, cutout, random_erasing, color_jitter, …)."""
    weight: float = Field(1.0, ge=0)
    """Online: weight of the unlabelled loss beside the labelled one."""
    unlabelled_ratio: int = Field(1, ge=1)
    """Online: unlabelled images per labelled image in each step (FixMatch's μ)."""

    @model_validator(mode="after")
    def _online_options_need_online(self):
        if self.teacher == []:
            raise ValueError(
                "teacher is an empty list; name one or more run folders, or remove teacher for online pseudo-labelling"
            )
        if self.teacher is not None and self.strong_augment:
            raise ValueError("strong_augment is used by online pseudo-labelling only; remove it, or remove teacher")
        return self


class ImageOptions(SplitOptions):
    """Options every image data set shares: few labels, pseudo-labels, fewer classes, reconstruction."""

    labelled_fraction: float = Field(1.0, gt=0, le=1)
    """Keep labels for only this fraction of the training split (stratified, seeded); the rest becomes the
    'unlabelled' split, used by pseudo-labelling."""
    task: Literal["classification", "reconstruction"] = "classification"
    """classification: predict the class; reconstruction: reproduce the image (autoencoders; labels unused)."""
    classes: Names | None = None
    """Use only these classes, by name (e.g. train an anomaly detector on the normal classes only)."""
    pseudo_labels: PseudoLabelOptions | None = None
    """Learn from the 'unlabelled' split through pseudo-labels: a teacher run's confident labels join the
    training split, or (no teacher) the model labels it online (needs labelled_fraction < 1)."""

    @model_validator(mode="after")
    def _online_pseudo_labels_keep_labels(self):
        if self.pseudo_labels is not None and self.groups:
            raise ValueError("pseudo-labelled samples have no groups of their own; remove groups or pseudo_labels")
        if self.pseudo_labels is None or self.pseudo_labels.teacher is not None:
            return self
        if not tasks.get(self.task).classes:
            raise ValueError(f"pseudo_labels are classes, but task is {self.task!r}; remove pseudo_labels")
        mixing = [
            entry.name
            for entry in [*self.augment, *self.pseudo_labels.strong_augment]
            if augmentations.get(entry.name).metadata["mixes_labels"]
        ]
        if mixing:
            raise ValueError(
                f"{', '.join(mixing)} mixes labels, which online pseudo-labelling cannot pair with "
                "its own labels; remove it, or set pseudo_labels.teacher (offline)"
            )
        return self


# ---- images -------------------------------------------------------------------------------------------------


@datasets.register("lamina.data.images:digits")
class DigitsOptions(ImageOptions):
    """Built-in 8×8 handwritten digits (scikit-learn's copy of the UCI set): 1,797 grayscale images, 10 classes."""

    name: Literal["digits"] = "digits"


@datasets.register("lamina.data.images:mnist")
class MNISTOptions(ImageOptions):
    """MNIST handwritten digits from the four standard IDX files (.gz or not): 60,000 train + 10,000 test."""

    name: Literal["mnist"] = "mnist"
    path: str
    """Folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-…, t10k-labels-…"""
    val_fraction: float = Field(0.1, ge=0, lt=1)
    """Fraction of the 60,000 training images held out for validation."""
    limit: int | None = Field(None, ge=1)
    """Use only the first N training images (quick experiments); the test split stays whole."""


@datasets.register("lamina.data.folders:image_folder")
class ImageFolderOptions(ImageOptions):
    """Images sorted into one subfolder per class, in a folder or a .tar/.tar.gz archive (PNG, JPEG, BMP, …)."""

    name: Literal["image_folder"] = "image_folder"
    path: str
    """Folder or .tar/.tar.gz archive; each image's class is the name of the folder it is in."""
    test_path: str | None = None
    """A second folder/archive with the official test images; default: hold out test_fraction of `path`."""
    channels: Literal[1, 3] | None = None
    """1 (grayscale) or 3 (RGB); default: 3 if any training image is in colour, else 1."""
    size: Annotated[tuple[int, int], Each(ge=1)] | None = None
    """[height, width] every image is resized to; default: the most common size among the training images."""
    on_bad_sample: Literal["error", "skip"] = "error"
    """An unreadable image file stops with an error naming it, or is skipped and counted (skip)."""
    cache_dir: str | None = None
    """Where decoded images are cached; default $LAMINA_CACHE_DIR or ~/.cache/lamina (the data may be read-only)."""


@datasets.register("lamina.data.folders:medmnist")
class MedMNISTOptions(ImageOptions):
    """A MedMNIST-layout .npz: train_images, train_labels, val_…, test_… (official splits), e.g. BreastMNIST."""

    name: Literal["medmnist"] = "medmnist"
    path: str
    """The .npz file, e.g. ../shared/datasets/breastmnist/breastmnist.npz."""
    class_names: Names | None = None
    """Names of the classes in label order; default '0', '1', … (BreastMNIST: malignant, benign)."""
    channels: Literal[1, 3] | None = None
    """1 (grayscale) or 3 (RGB); default: as stored. Grayscale → RGB repeats the channel, RGB → grayscale uses
    ITU-R 601 luma (e.g. 3 to fine-tune a backbone pretrained on colour images with every layer kept)."""


# ---- tables -------------------------------------------------------------------------------------------------


@datasets.register("lamina.data.tabular:breast_cancer", inputs="tabular")
class BreastCancerOptions(SplitOptions):
    """Wisconsin diagnostic breast cancer (scikit-learn, built in): 569 tumours × 30 measurements, malignant or benign."""

    name: Literal["breast_cancer"] = "breast_cancer"


# tables of your own (CSV, Parquet, DataFrames) and arrays: lamina/data/table_options.py


# ---- sequences ------------------------------------------------------------------------------------------


@datasets.register("lamina.data.audio:audio", inputs="audio")
class AudioOptions(SplitOptions):
    """WAV files: Free Spoken Digit naming (`digit_speaker_index.wav`) or one subfolder per class."""

    name: Literal["audio"] = "audio"
    path: str
    """Folder of WAV files (fsdd: the recordings, or a folder holding recordings/)."""
    layout: Literal["fsdd", "folders"] = "fsdd"
    """fsdd: label and speaker from `label_speaker_index.wav`; folders: `path/<class>/*.wav`."""
    split: Literal["random", "group"] = "random"
    """random (stratified by class), or group: the speakers in `test_groups` are held out for test."""
    test_groups: Names = []
    """Speakers (groups) whose recordings form the test split when split: group."""
    test_group_attribute: str | None = None
    """split: group: the data.groups attribute test_groups names groups of (e.g. accent); default: the speaker
    of the fsdd file names."""
    sample_rate: int = Field(8000, ge=1000)
    """Resample every file to this rate (Hz)."""
    seconds: float = Field(1.0, gt=0)
    """Pad with silence or crop every recording to this length."""
    features: Literal["log_mel", "mfcc"] = "log_mel"
    """log-mel spectrogram (dB), or MFCCs (DCT of the log-mel)."""
    n_fft: int = Field(512, ge=16)
    """FFT size (window length) in samples."""
    hop_length: int = Field(80, ge=1)
    """Samples between frames (80 at 8 kHz = 10 ms)."""
    n_mels: int = Field(40, ge=4)
    """Mel bands."""
    n_mfcc: int = Field(20, ge=2)
    """Cepstral coefficients kept (features: mfcc)."""
    normalize: Literal["dataset", "utterance", "level"] = "dataset"
    """dataset: standardize each bin with train statistics; utterance: first remove each recording's own mean
    per bin over its frames (cepstral mean normalization: a speaker's and microphone's fixed colouring); level:
    first express each recording's log-mel in dB below its own loudest bin (one gain per recording, the
    spectral shape kept), floored `top_db` below it."""
    top_db: float = Field(80.0, gt=0)
    """normalize: utterance or level: log-mel values more than this many dB below the recording's loudest are
    raised to that floor (so zero padding and quiet microphones look alike)."""

    @model_validator(mode="after")
    def _held_out_attribute_is_a_group(self):
        attribute = self.test_group_attribute
        if attribute is not None and attribute not in [group.name for group in self.groups]:
            known = ", ".join(group.name for group in self.groups) or "none"
            raise ValueError(
                f"test_group_attribute {attribute!r} is not an attribute of data.groups ({known}); add it to "
                "data.groups, or remove test_group_attribute to hold out fsdd speakers"
            )
        if attribute is not None and self.split != "group":
            raise ValueError("test_group_attribute goes with split: group; set it, or remove test_group_attribute")
        return self

    @model_validator(mode="after")
    def _band_augmentations_need_log_mel(self):
        banded = [entry.name for entry in self.augment if augmentations.get(entry.name).metadata["stage"] == "decibels"]
        if banded and self.features != "log_mel":
            verb = "works" if len(banded) == 1 else "work"
            raise ValueError(
                f"{' and '.join(banded)} {verb} on log-mel bands, but features is {self.features!r}; "
                "set features: log_mel, or remove it from augment"
            )
        return self

    def optional_packages(self) -> dict[str, str]:
        return {"": "soundfile", **super().optional_packages()}


@datasets.register("lamina.data.digit_strings:digit_strings")
class DigitStringsOptions(DataOptions):
    """Rows of real MNIST digits (28 × 28·digits images) labelled with their digit strings."""

    name: Literal["digit_strings"] = "digit_strings"
    path: str
    """Folder with the four MNIST IDX files."""
    digits: int = Field(4, ge=1, le=12)
    """Digits per string (the image is 28 × 28·digits pixels)."""
    min_digits: int | None = Field(None, ge=1)
    """Shortest string; default: every string has `digits` digits."""
    jitter: int = Field(3, ge=0, le=10)
    """Shift each digit left or right by up to this many pixels."""
    train_strings: int = Field(30000, ge=10)
    """Training strings, composed from the training digits."""
    val_strings: int = Field(2000, ge=10)
    """Validation strings, composed from held-out training digits."""
    test_strings: int = Field(10000, ge=10)
    """Test strings, composed from the official MNIST test digits only."""
    val_fraction: float = Field(0.1, gt=0, lt=0.5)
    """Fraction of the MNIST training digits kept for validation strings."""
    target: Literal["string", "first_digit"] = "string"
    """string: the whole digit string (transcription); first_digit: classify only the leftmost digit — a
    long-range dependency for a recurrent model reading the columns left to right (vanishing gradients)."""

    @model_validator(mode="after")
    def _lengths(self):
        if self.min_digits is not None and self.min_digits > self.digits:
            raise ValueError(f"min_digits {self.min_digits} is more than digits {self.digits}")
        return self


# text: the options are in lamina/data/text_options.py
datasets.register("lamina.data.text:text", inputs="text")(TextOptions)
datasets.register("lamina.data.text:labelled_text", inputs="text")(LabelledTextOptions)


@datasets.register("lamina.data.timeseries:timeseries", inputs="sequence")
class TimeSeriesOptions(DataOptions):
    """A CSV time series (one row per time step, in order) for multi-step forecasting."""

    name: Literal["timeseries"] = "timeseries"
    path: str
    """The CSV file, rows in time order."""
    target: str
    """Column to forecast."""
    features: Names | None = None
    """Input columns (the target may be among them); default: the target alone."""
    lookback: int = Field(48, ge=1)
    """Past steps each forecast sees."""
    horizon: int = Field(12, ge=1)
    """Future steps each forecast predicts."""
    stride: int = Field(1, ge=1)
    """Steps between the starts of consecutive windows."""
    val_fraction: float = Field(0.15, gt=0, lt=1)
    """Fraction of the series (after train) for validation."""
    test_fraction: float = Field(0.15, gt=0, lt=1)
    """Fraction of the series (at the end) for the final test."""

    @model_validator(mode="after")
    def _leaves_training_data(self):
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError("val_fraction + test_fraction must stay below 0.9")
        return self
