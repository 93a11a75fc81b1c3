"""The ResNet family's presets: the shape each `preset` starts from (options a config sets override them).
Importing this module does not import PyTorch."""

from typing import Any

__all__ = ["PRESETS"]

PRESETS: dict[str, dict[str, Any]] = {
    "resnet18": {"block": "basic", "stem": "auto", "stem_channels": 64,
                 "stages": [{"channels": c, "blocks": 2, "stride": s} for c, s in ((64, 1), (128, 2), (256, 2), (512, 2))]},
    "resnet34": {"block": "basic", "stem": "auto", "stem_channels": 64,
                 "stages": [{"channels": c, "blocks": n, "stride": s}
                            for c, n, s in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))]},
    "resnet50": {"block": "bottleneck", "stem": "auto", "stem_channels": 64,
                 "stages": [{"channels": c, "blocks": n, "stride": s}
                            for c, n, s in ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))]},
    # Page's DAWNBench ResNet-9: prep conv, conv+pool+residual, conv+pool, conv+pool+residual, max pool, ×0.125
    "resnet9": {"block": "basic", "stem": "small", "stem_channels": 64, "global_pool": "max", "output_scale": 0.125,
                "stages": [{"channels": c, "blocks": n, "stride": 2, "transition": "conv_pool"}
                           for c, n in ((128, 1), (256, 0), (512, 1))]},
    # Jordan's airbench93 (2024): signed 2×2 patch whitening, then three conv → pool → BN → GELU → conv → BN → GELU
    # groups of 64, 128, 128 channels with identity-initialized filters, fixed norm scales, fast norm statistics
    "airbench": {"block": "plain", "stem": "whitened_signed", "whitening_size": 2, "global_pool": "max",
                 "output_scale": 1 / 9, "activation": "gelu", "pool_before_norm": True, "train_norm_scales": False,
                 "identity_init": True, "norm_momentum": 0.4,
                 "stages": [{"channels": c, "blocks": 1, "stride": 2, "transition": "conv_pool"} for c in (64, 128, 128)]},
    # small and fast: MNIST-sized images in seconds per epoch
    "small": {"block": "basic", "stem": "small", "stem_channels": 16,
              "stages": [{"channels": c, "blocks": 1, "stride": s} for c, s in ((16, 1), (32, 2), (64, 2))]},
}  # fmt: skip
