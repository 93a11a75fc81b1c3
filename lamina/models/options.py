"""The model families a config can name, and their options: mlp, cnn, resnet and autoencoder for fixed-size
inputs; rnn, hybrid (CNN → RNN), transformer and moe (mixture of experts) for sequences; fasttext (a bag of
word and n-gram embeddings) for short texts. This module is the list of built-in families (the ResNet presets are
in presets.py). Importing it does not import PyTorch; a family's builder is imported when a model is built.

Every layer width (units, channels, embedding and code sizes) is a `Width`: a whole number from 1 to 65,536.
"""

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from lamina.core.options import Each, Options
from lamina.core.registry import Registry
from lamina.models.presets import PRESETS

__all__ = [
    "models",
    "ModelOptions",
    "ConvBlock",
    "Stage",
    "PRESETS",
    "Recurrent",
    "Activation",
    "Initialization",
    "Width",
    "MAX_WIDTH",
]

# train_defaults: training options the family sets unless the config does (recurrent families clip gradients);
# sequence_outputs: it can give one output per step; reads_tokens: it can read token ids (text)
models = Registry("model", metadata={"train_defaults": {}, "sequence_outputs": False, "reads_tokens": False})

Activation = Literal["relu", "leaky_relu", "gelu", "silu", "tanh", "sigmoid", "elu", "celu"]
Initialization = Literal[
    "default", "xavier_uniform", "xavier_normal", "kaiming_uniform", "kaiming_normal", "orthogonal"
]

# The widest layer a config may ask for: 65,536 units or channels (a square weight matrix of that width is 16 GiB
# in float32). Wider is a typo (1e8 would be a MemoryError when the model is built); it is a config error instead.
MAX_WIDTH = 65_536
Width = Annotated[int, Field(ge=1, le=MAX_WIDTH)]


class ModelOptions(Options):
    """Options every model family has."""

    init_from: str | None = None
    """Start from pretrained weights: a run folder, .safetensors or .pt state dict (matching tensors are loaded;
    see docs/vision.md)."""


@models.register("lamina.models.mlp:build_mlp")
class MLPOptions(ModelOptions):
    """Feedforward network: (Linear → norm → activation → dropout) per hidden layer, then a linear head."""

    name: Literal["mlp"] = "mlp"
    hidden_sizes: list[Width] = Field([256, 128], min_length=0)
    """Width of each hidden layer; the list's length is the depth. [] is a linear (logistic) model."""
    activation: Activation = "relu"
    """Non-linearity after each hidden layer."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout probability after each hidden layer."""
    norm: Literal["none", "batch", "layer"] = "none"
    """Normalization of each hidden layer's pre-activations."""
    init: Initialization = "default"
    """Weight initialization scheme."""


class ConvBlock(Options):
    """`convs` convolutions with the same output channels, then optional pooling. Write `64` for {channels: 64}."""

    channels: Width
    """Output channels of each convolution in the block."""
    convs: int = Field(1, ge=1)
    """Convolutions in the block before pooling."""
    kernel_size: int = Field(3, ge=1)
    """Square kernel size."""
    stride: int = Field(1, ge=1)
    """Stride of the block's first convolution."""
    padding: int | None = Field(None, ge=0)
    """Zero padding; default kernel_size // 2 (keeps the size at stride 1)."""
    pool: Literal["max", "avg", "none"] = "max"
    """Pooling after the block."""
    pool_size: int = Field(2, ge=1)
    """Pooling window and stride."""


@models.register("lamina.models.cnn:build_cnn")
class CNNOptions(ModelOptions):
    """Convolutional network for images (C, H, W): conv blocks with pooling, global pooling, a dense head."""

    name: Literal["cnn"] = "cnn"
    blocks: list[ConvBlock] = Field(default_factory=lambda: [ConvBlock(channels=c) for c in (32, 64, 128)])
    """Convolution blocks, in order. Each halves the image with pool: max (default)."""
    batch_norm: bool = True
    """Batch normalization after each convolution."""
    activation: Activation = "relu"
    """Non-linearity after each convolution."""
    global_pool: Literal["avg", "max", "flatten"] = "avg"
    """How the last feature map becomes a vector: global average/max pooling, or flattening it."""
    head_hidden: list[Width] = []
    """Hidden widths of the dense head after pooling."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout before each dense layer of the head."""
    init: Initialization = "default"
    """Weight initialization scheme."""

    @field_validator("blocks", mode="before")
    @classmethod
    def _channel_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"channels": item} if isinstance(item, int) else item for item in value]
        return value


class Stage(Options):
    """A stage: a change of width (and resolution), then `blocks` residual blocks."""

    channels: Width
    """Output channels of the stage (a bottleneck block's output is 4× this)."""
    blocks: int = Field(1, ge=0)
    """Residual blocks in the stage (0: only the transition, as in ResNet-9's middle stage)."""
    stride: int = Field(1, ge=1)
    """Downsampling factor of the stage (1 keeps the resolution)."""
    transition: Literal["block", "conv_pool"] = "block"
    """How the stage changes width and resolution: 'block' (the first residual block strides, with a 1×1
    projection shortcut: He et al.) or 'conv_pool' (conv-BN-ReLU, then max pooling by `stride`: ResNet-9)."""


@models.register("lamina.models.resnet:build_resnet")
class ResNetOptions(ModelOptions):
    """Residual network for images: basic or bottleneck blocks, stages of any depth and width, small or large stem."""

    name: Literal["resnet"] = "resnet"
    preset: Literal["resnet18", "resnet34", "resnet50", "resnet9", "airbench", "small", "none"] = "small"
    """Starting shape; options you set override it. none: only what you set."""
    block: Literal["basic", "bottleneck", "plain"] = "basic"
    """basic: two 3×3 convolutions; bottleneck: 1×1 → 3×3 → 1×1 with 4× expansion; plain: one 3×3
    conv-BN-activation without a shortcut."""
    stages: list[Stage] = Field(default_factory=list)
    """Stages in order, e.g. [{channels: 64, blocks: 2}, {channels: 128, blocks: 2, stride: 2}]."""
    width: float = Field(1.0, gt=0)
    """Multiplies every channel count (0.5: half width)."""
    stem: Literal["auto", "small", "large", "whitened", "whitened_signed"] = "auto"
    """small: one 3×3 convolution (images up to 64 px); large: 7×7 stride 2 + max pool; auto picks by size;
    whitened: a fixed patch-whitening layer set from the first training batch, then a 1×1 convolution;
    whitened_signed: the whitening filters and their negatives with a trained bias, then the activation."""
    whitening_size: int = Field(3, ge=1, le=7)
    """Patch size of the whitening stems (odd sizes keep the image size; 2, as airbench, trims one pixel)."""
    stem_channels: Width = 64
    """Channels of the stem convolution."""
    preactivation: bool = False
    """Pre-activation blocks (BN → ReLU → conv; He et al. 2016) instead of the original post-activation ones."""
    global_pool: Literal["avg", "max"] = "avg"
    """Pooling of the last feature map into a vector."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout before the head."""
    output_scale: float = Field(1.0, gt=0)
    """Multiplies the logits (ResNet-9 uses 0.125)."""
    activation: Activation = "relu"
    """Nonlinearity after each normalization (celu: CELU with α = 0.3, as in Page's fast ResNet-9)."""
    norm_group_size: int | None = Field(None, ge=2)
    """Ghost batch norm: training statistics per group of this many samples (e.g. 32); None: the whole batch."""
    train_norm_scales: bool = True
    """Train batch-norm scales; false fixes them at 1 (fewer parameters to tune; Page's ResNet-9 tricks)."""
    pool_before_norm: bool = False
    """In conv_pool transitions, max-pool right after the convolution (normalizing 4× fewer values)."""
    identity_init: bool = False
    """Start each 3×3 convolution's first filters as the identity (dirac), the rest at PyTorch's default."""
    norm_momentum: float = Field(0.1, gt=0, le=1)
    """Weight of each training batch in batch norm's running statistics (PyTorch's `momentum`)."""
    zero_init_residual: bool = True
    """Start each residual branch at zero (its last BN scale is 0), so a deep network starts as a shallow one."""
    test_time_flip: bool = False
    """In evaluation, average the logits of each image and its mirror image (cheap test-time augmentation)."""
    test_time_shift: int = Field(0, ge=0)
    """In evaluation, also average copies shifted by this many pixels up-left and down-right (reflect padding),
    weighted ½ for the image, ¼ for each copy (airbench's test-time augmentation)."""
    channels_last: bool = True
    """Run convolutions in channels-last memory layout (about 1.2× faster on CPU)."""

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        preset = value.get("preset", "small")
        # a preset that is not a name is left for the field's own check to refuse
        return {**(PRESETS.get(preset, {}) if isinstance(preset, str) else {}), **value}

    @model_validator(mode="after")
    def _scaled_widths_fit(self):
        counts = {"stem_channels": self.stem_channels}
        counts.update({f"stages[{index}].channels": stage.channels for index, stage in enumerate(self.stages)})
        for where, channels in counts.items():
            if round(channels * self.width) > MAX_WIDTH:
                raise ValueError(
                    f"{where} {channels} × width {self.width:g} is {round(channels * self.width)} channels, more "
                    f"than {MAX_WIDTH}; lower width"
                )
        return self


@models.register("lamina.models.autoencoder:build_autoencoder")
class AutoencoderOptions(ModelOptions):
    """Dense or convolutional autoencoder; denoising with input noise; variational with a KL term."""

    name: Literal["autoencoder"] = "autoencoder"
    kind: Literal["conv", "dense"] = "conv"
    """conv: stride-2 convolutions (decoder: transposed convolutions); dense: fully connected layers."""
    channels: list[Width] = Field([32, 64], min_length=1)
    """conv: output channels of each stride-2 encoder convolution (the decoder mirrors them)."""
    hidden_sizes: list[Width] = Field([512, 256], min_length=1)
    """dense: widths of the encoder's hidden layers (the decoder mirrors them)."""
    latent_size: Width = 16
    """Size of the latent code."""
    variational: bool = False
    """A variational autoencoder: the encoder gives a mean and log-variance, the code is sampled from them."""
    kl_weight: float = Field(1.0, ge=0)
    """Weight of the KL term of a VAE (1 is the evidence lower bound; β-VAE uses more)."""
    noise: Literal["none", "gaussian", "masking", "patches"] = "none"
    """Denoising: corrupt training inputs with Gaussian noise, by masking pixels, or by masking square patches
    (as masked autoencoders do: the model must fill in shapes, not just interpolate neighbours); the target
    stays clean."""
    noise_level: float = Field(0.3, ge=0, lt=1)
    """Noise standard deviation (in normalized input units), or the fraction of pixels or patches masked."""
    patch_size: int = Field(4, ge=1)
    """noise: patches — side of the square patches, in pixels."""
    batch_norm: bool = True
    """Batch normalization after each hidden layer."""
    activation: Activation = "relu"
    """Non-linearity after each hidden layer."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout before the classification head (classification tasks only)."""
    reconstruction_weight: float = Field(0.0, ge=0)
    """Classification with data.labelled_fraction < 1: keep the decoder and, at every step, also reconstruct as
    many images of the unlabelled split as the batch holds (corrupted by `noise`), adding this weight × their
    mean per-pixel binary cross-entropy to the loss — the encoder keeps learning from images without labels
    while the head learns from labels (a semi-supervised autoencoder). 0: the decoder is dropped."""
    classify_from: Literal["features", "code"] = "features"
    """Classification tasks: the head reads the encoder's features, or its latent code (`latent` → batch norm →
    activation → head), so a pretrained autoencoder's code layer is fine-tuned too, not only its convolutions."""


# ---- sequences ------------------------------------------------------------------------------------------

Cell = Literal["rnn", "lstm", "gru"]
Pooling = Literal["last", "mean", "max"]
# recurrent families clip gradients to norm 1 unless the config says otherwise (exploding gradients)
RECURRENT_DEFAULTS = {"gradient_clip": 1.0}


class Recurrent(ModelOptions):
    """Options of a recurrent stack, shared by the rnn and hybrid families."""

    cell: Cell = "lstm"
    """rnn (vanilla, tanh), lstm or gru."""
    hidden_size: Width = 128
    """Hidden units per direction and layer."""
    layers: int = Field(1, ge=1)
    """Stacked recurrent layers."""
    bidirectional: bool = False
    """Also read each sequence backwards (not for language models, which must not see the future)."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout between recurrent layers and before the head."""
    pooling: Pooling = "last"
    """Sequence → vector for classification/regression: the final state, or the mean or max over steps."""
    forget_bias: float = 0.0
    """LSTM only: initial bias of the forget gates; 0 is PyTorch's default. 1 keeps memory from fading early in
    training (Jozefowicz et al., 2015; Keras's unit_forget_bias), which helps long-range dependencies."""


@models.register(
    "lamina.models.rnn:build_rnn", train_defaults=RECURRENT_DEFAULTS, sequence_outputs=True, reads_tokens=True
)
class RNNOptions(Recurrent):
    """Recurrent network (RNN, LSTM, GRU) over token ids or feature sequences."""

    name: Literal["rnn"] = "rnn"
    embedding_size: Width = 64
    """Size of each token's embedding (text inputs)."""


@models.register("lamina.models.hybrid:build_hybrid", train_defaults=RECURRENT_DEFAULTS, sequence_outputs=True)
class HybridOptions(Recurrent):
    """CNN front-end (conv blocks) feeding a recurrent network over the feature map's columns."""

    name: Literal["hybrid"] = "hybrid"
    channels: list[Width] = Field(default_factory=lambda: [32, 64, 128], min_length=1)
    """Output channels of each conv block (conv 3×3 → batch norm → ReLU, then pooling)."""
    pool: list[Annotated[list[int], Each(ge=1), Field(min_length=2, max_length=2)]] | None = None
    """Pooling [height, width] after each block; default [2, 2] for the first two blocks, then [2, 1] (keeps
    the time/width resolution for the recurrent part)."""
    convs: int = Field(1, ge=1)
    """Convolutions per block."""
    hidden_size: Width = 128
    """Hidden units per direction and layer of the recurrent part."""
    bidirectional: bool = True
    """Read the columns in both directions (right for transcription and classification)."""
    pooling: Pooling = "mean"
    """Sequence → vector for classification: last, mean or max over the columns."""


@models.register("lamina.models.transformer:build_transformer", sequence_outputs=True, reads_tokens=True)
class TransformerOptions(ModelOptions):
    """Transformer: decoder-only causal LM for language modeling, encoder (CLS or mean pooling) otherwise."""

    name: Literal["transformer"] = "transformer"
    layers: int = Field(4, ge=1)
    """Number of blocks."""
    heads: int = Field(4, ge=1)
    """Attention heads per block (width must be divisible by it)."""
    width: int = Field(128, ge=8, le=MAX_WIDTH)
    """Model width (embedding size)."""
    feedforward: Width | None = None
    """Hidden width of each feed-forward layer; default 4 × width."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on embeddings, attention weights and residual branches."""
    bias: bool = False
    """Biases in Linear and LayerNorm layers (nanoGPT: False is a little better and faster)."""
    positions: Literal["learned", "sinusoidal", "rotary"] = "learned"
    """learned vectors (GPT-2), fixed sinusoids (Vaswani et al.), or rotary (rotates queries and keys)."""
    context: int | None = Field(None, ge=1)
    """Longest sequence the positions cover; default: the data's sequence length."""
    causal: bool | None = None
    """Each step sees only earlier steps; default: true for language modeling, false otherwise."""
    pooling: Literal["cls", "mean"] = "mean"
    """Sequence → vector for classification/regression: a learned CLS token's output, or the mean over steps."""
    tie_weights: bool = True
    """Language models: the output layer reuses the token embedding matrix (fewer parameters, usually better)."""

    @model_validator(mode="after")
    def _heads_divide_width(self):
        if self.width % self.heads:
            raise ValueError(f"width {self.width} is not divisible by heads {self.heads}; e.g. width {self.heads * 32}")
        if self.positions == "rotary" and (self.width // self.heads) % 2:
            raise ValueError("rotary positions need an even width per head (width / heads)")
        return self


@models.register("lamina.models.transformer:build_moe", sequence_outputs=True, reads_tokens=True)
class MixtureOptions(TransformerOptions):
    """Transformer whose feed-forward layers are mixtures of experts (top-k routing, load-balancing loss)."""

    name: Literal["moe"] = "moe"
    experts: int = Field(4, ge=2)
    """Experts per mixture layer."""
    top_k: int = Field(2, ge=1)
    """Experts each token is sent to."""
    expert_hidden: Width | None = None
    """Hidden width of each expert; default feedforward / top_k, so a token's active parameters equal the dense
    model's."""
    capacity_factor: float | None = Field(None, gt=0)
    """Cap each expert at factor × its fair share of a batch's tokens (overflow skips it); none = no cap."""
    balance_weight: float = Field(0.01, ge=0)
    """Weight of the load-balancing auxiliary loss (averaged over mixture layers)."""
    every: int = Field(1, ge=1)
    """A mixture in every n-th block (the others stay dense); 1 = all blocks."""

    @model_validator(mode="after")
    def _top_k_fits(self):
        if self.top_k > self.experts:
            raise ValueError(f"top_k {self.top_k} is more than the {self.experts} experts")
        return self


@models.register("lamina.models.fasttext:build_fasttext", reads_tokens=True)
class FastTextOptions(ModelOptions):
    """Bag of token embeddings, averaged, then a linear layer or one hidden layer (fastText; with tokenizer:
    ngrams the tokens are words, word n-grams and character n-grams)."""

    name: Literal["fasttext"] = "fasttext"
    embedding_size: Width = 64
    """Size of each token's embedding (fastText's dim)."""
    hidden_size: Width | None = None
    """Width of one hidden layer (ReLU) between the averaged embedding and the head; null: linear, as fastText."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout on the averaged embedding (and after the hidden layer)."""
    token_dropout: float = Field(0.0, ge=0, lt=1)
    """Leave out this fraction of each training text's tokens, drawn afresh each step (the word dropout of Iyyer
    et al.'s deep averaging networks, 2015): no single word or n-gram can carry a text."""
