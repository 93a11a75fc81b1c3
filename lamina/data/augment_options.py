"""The augmentations `data.augment` can name, for every kind of input, and their options.

    data:
      augment: [{name: random_crop, padding: 4}, horizontal_flip, {name: mixup, alpha: 0.2}]   # images
      augment: [{name: time_shift, seconds: 0.1}, {name: noise, snr: 20}, spec_augment]        # audio

Each entry declares the inputs it applies to (`inputs`: image, audio, sequence, tabular), whether it mixes the
labels of two samples (`mixes_labels`: classification only) and its `stage`: `stored` augmentations change the
stored training split once per epoch (audio waveforms; alternating flips), `decibels` ones change audio features
in dB, `inputs` ones change each normalized batch. They apply in the order given; the implementations are in
lamina/data/augment.py and lamina/data/audio_augment.py.
"""

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from lamina.core.options import Each, Options
from lamina.core.registry import Registry

__all__ = ["augmentations", "INPUT_KINDS"]

INPUT_KINDS = ("image", "audio", "sequence", "tabular", "text")

augmentations = Registry("augmentation", metadata={"inputs": ("image",), "mixes_labels": False, "stage": "inputs"})

IMAGES = "lamina.data.augment"
AUDIO = "lamina.data.audio_augment"


def _ordered(value: tuple[float, float]) -> tuple[float, float]:
    low, high = value
    if low > high:
        raise ValueError(f"low {low:g} is above high {high:g}; write [{high:g}, {low:g}]")
    return value


# [low, high] ranges that values are drawn from: low ≤ high, each end positive (or a fraction of the image, in (0, 1])
PositiveRange = Annotated[tuple[float, float], Each(gt=0), AfterValidator(_ordered)]
FractionRange = Annotated[tuple[float, float], Each(gt=0, le=1), AfterValidator(_ordered)]


# ---- images: geometry ---------------------------------------------------------------------------------


@augmentations.register(f"{IMAGES}:random_crop")
class RandomCropOptions(Options):
    """Pad each image, then cut a random window of the original size (a random translation)."""

    name: Literal["random_crop"] = "random_crop"
    padding: int = Field(4, ge=1)
    """Pixels added on each side before cropping: shifts of up to ±padding."""
    mode: Literal["zeros", "reflect"] = "reflect"
    """Padding with zeros (the mean colour, as batches are normalized) or a mirror image of the border."""


@augmentations.register(f"{IMAGES}:horizontal_flip")
class FlipOptions(Options):
    """Mirror images left-right."""

    name: Literal["horizontal_flip"] = "horizontal_flip"
    p: float = Field(0.5, ge=0, le=1)
    """Probability that an image is flipped."""


@augmentations.register(f"{IMAGES}:alternating_flip", stage="stored")
class AlternatingFlipOptions(Options):
    """Mirror a fixed random half of the training images, then flip every image on every other epoch."""

    name: Literal["alternating_flip"] = "alternating_flip"


@augmentations.register(f"{IMAGES}:affine")
class AffineOptions(Options):
    """Small random rotations, shifts, zooms and shears (bilinear, with kornia)."""

    name: Literal["affine"] = "affine"
    degrees: float = Field(10.0, ge=0, le=180)
    """Rotation drawn from [-degrees, degrees]."""
    translate: float = Field(0.0, ge=0, lt=1)
    """Shift drawn from [-translate, translate] × the image size, per axis."""
    scale: PositiveRange = (1.0, 1.0)
    """Zoom factor drawn from [low, high]."""
    shear: float = Field(0.0, ge=0, lt=45)
    """Shear angle in degrees drawn from [-shear, shear]."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image is transformed."""

    def optional_packages(self) -> dict[str, str]:
        return {"": "kornia"}


# ---- images: colour and erasing -------------------------------------------------------------------------


@augmentations.register(f"{IMAGES}:color_jitter")
class ColorJitterOptions(Options):
    """Random brightness, contrast, saturation and hue (saturation and hue on RGB only)."""

    name: Literal["color_jitter"] = "color_jitter"
    brightness: float = Field(0.2, ge=0, lt=1)
    """Brightness multiplied by a factor drawn from [1 - brightness, 1 + brightness]."""
    contrast: float = Field(0.2, ge=0, lt=1)
    """Contrast factor drawn from [1 - contrast, 1 + contrast]."""
    saturation: float = Field(0.2, ge=0, lt=1)
    """Saturation factor drawn from [1 - saturation, 1 + saturation]."""
    hue: float = Field(0.0, ge=0, le=0.5)
    """Hue shift drawn from [-hue, hue] of a full turn."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image is changed."""

    def optional_packages(self) -> dict[str, str]:
        return {"": "kornia"}


@augmentations.register(f"{IMAGES}:cutout")
class CutoutOptions(Options):
    """Erase a square of fixed size at a random place (DeVries & Taylor's cutout)."""

    name: Literal["cutout"] = "cutout"
    size: int = Field(8, ge=1)
    """Side of the square in pixels; it may hang over the border."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that an image gets a square."""


@augmentations.register(f"{IMAGES}:random_erasing")
class RandomErasingOptions(Options):
    """Erase a random rectangle (Zhong et al.'s random erasing) with the mean colour or noise."""

    name: Literal["random_erasing"] = "random_erasing"
    p: float = Field(0.5, ge=0, le=1)
    """Probability that an image gets a rectangle."""
    area: FractionRange = (0.02, 0.25)
    """Rectangle area as a fraction of the image, drawn from [low, high]."""
    aspect: PositiveRange = (0.3, 3.3)
    """Height/width ratio drawn log-uniformly from [low, high]."""
    value: Literal["mean", "noise"] = "mean"
    """Fill with the mean colour or with standard normal noise."""


# ---- mixing samples (soft targets) ----------------------------------------------------------------------


@augmentations.register(f"{IMAGES}:mixup", inputs=("image", "audio", "sequence", "tabular"), mixes_labels=True)
class MixupOptions(Options):
    """Mix each batch with a shuffled copy of itself; targets become the same mix of the two labels."""

    name: Literal["mixup"] = "mixup"
    alpha: float = Field(0.2, gt=0)
    """Mixing weight drawn from Beta(alpha, alpha) once per batch."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that a batch is mixed."""


@augmentations.register(f"{IMAGES}:cutmix", mixes_labels=True)
class CutMixOptions(Options):
    """Paste a rectangle from a shuffled copy of the batch; targets are mixed by the pasted area."""

    name: Literal["cutmix"] = "cutmix"
    alpha: float = Field(1.0, gt=0)
    """The kept fraction is drawn from Beta(alpha, alpha) once per batch."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that a batch is mixed."""


# ---- audio: waveforms, once per epoch -------------------------------------------------------------------


@augmentations.register(f"{AUDIO}:time_shift", inputs=("audio",), stage="stored")
class TimeShiftOptions(Options):
    """Shift each training waveform by a random time (silence fills the gap), afresh each epoch."""

    name: Literal["time_shift"] = "time_shift"
    seconds: float = Field(0.1, gt=0)
    """Largest shift, either way, in seconds."""


@augmentations.register(f"{AUDIO}:noise", inputs=("audio",), stage="stored")
class NoiseOptions(Options):
    """Add white noise to each training waveform at a random signal-to-noise ratio, afresh each epoch."""

    name: Literal["noise"] = "noise"
    snr: float = 20.0
    """Lowest signal-to-noise ratio in dB; each recording gets one drawn between this and 40 dB."""


@augmentations.register(f"{AUDIO}:speed", inputs=("audio",), stage="stored")
class SpeedOptions(Options):
    """Play each training recording at a random speed: pitch and formants move with it, an imitation of other
    voices (helps on speakers never heard in training)."""

    name: Literal["speed"] = "speed"
    amount: float = Field(0.1, gt=0, lt=0.5)
    """Speeds are drawn from [1 - amount, 1 + amount]."""


# ---- audio: log-mel features of each batch --------------------------------------------------------------


@augmentations.register(f"{AUDIO}:vocal_tract_length", inputs=("audio",), stage="decibels")
class VocalTractLengthOptions(Options):
    """Vocal-tract-length perturbation (Jaitly & Hinton, 2013): each sample's frequency axis scaled by a random
    factor, so formants and harmonics move while timing does not (log-mel features only)."""

    name: Literal["vocal_tract_length"] = "vocal_tract_length"
    warp: float = Field(0.1, gt=0, lt=0.5)
    """Factors are drawn from [1 - warp, 1 + warp]."""


@augmentations.register(f"{AUDIO}:spectral_tilt", inputs=("audio",), stage="decibels")
class SpectralTiltOptions(Options):
    """Add to each sample a straight line across the mel bands, an imitation of another microphone (log-mel
    features only)."""

    name: Literal["spectral_tilt"] = "spectral_tilt"
    decibels: float = Field(10.0, gt=0)
    """The line rises by a random amount in [-decibels, decibels] dB from the lowest band to the highest."""


@augmentations.register(f"{AUDIO}:spec_augment", inputs=("audio",))
class SpecAugmentOptions(Options):
    """SpecAugment (Park et al., 2019): zero random bands of frames and of frequency bins."""

    name: Literal["spec_augment"] = "spec_augment"
    time_masks: int = Field(2, ge=0)
    """Masks of up to `time_mask_frames` consecutive frames per training sample."""
    time_mask_frames: int = Field(10, ge=1)
    """Longest time mask, in frames."""
    frequency_masks: int = Field(2, ge=0)
    """Masks of up to `frequency_mask_bins` consecutive feature bins per training sample."""
    frequency_mask_bins: int = Field(6, ge=1)
    """Widest frequency mask, in bins."""


# ---- sequences and tables ---------------------------------------------------------------------------------


@augmentations.register(f"{IMAGES}:jitter", inputs=("sequence", "tabular"))
class JitterOptions(Options):
    """Add Gaussian noise to each standardized feature of a training batch (jittering; Um et al., 2017)."""

    name: Literal["jitter"] = "jitter"
    std: float = Field(0.03, gt=0)
    """Standard deviation of the noise, in standard deviations of each feature."""
    p: float = Field(1.0, ge=0, le=1)
    """Probability that a sample is jittered."""
