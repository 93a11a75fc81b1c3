"""Reading a user's files safely, without PyTorch: UTF-8 text that names the byte where it is not, and images
refused above Pillow's pixel limit. The data readers and the bundle runtime (lamina/bundle) share them."""

from __future__ import annotations

import codecs
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lamina.core.errors import DataError

__all__ = ["UTF8_HINT", "read_utf8", "pixel_limit"]

UTF8_HINT = "convert the file to UTF-8, e.g. iconv -f latin1 -t utf-8 FILE > NEW (or save it as 'CSV UTF-8')"


def read_utf8(path: Path, what: str = "", strip_bom: bool = False) -> str:
    """The text of `path`; DataError naming the byte (counted from 0) and line where it is not UTF-8.
    `what` prefixes the path in the message (e.g. "CSV file "); `strip_bom` drops a leading UTF-8 byte order mark."""
    raw = path.read_bytes()
    start = len(codecs.BOM_UTF8) if strip_bom and raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[start:].decode("utf-8")
    except UnicodeDecodeError as error:
        offset = start + error.start
        line = raw.count(b"\n", 0, offset) + 1
        raise DataError(
            f"{what}{path} is not UTF-8 text: byte {offset} (line {line}) is 0x{raw[offset]:02x}", UTF8_HINT
        ) from None


@contextmanager
def pixel_limit(name: str) -> Iterator[None]:
    """Refuse images over Pillow's pixel limit (decompression bombs), its warning included, naming the file."""
    from PIL import Image  # Pillow: only images need it

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            yield
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            found = re.search(r"\((\d+) pixels\)", str(error))
            pixels = f"{int(found[1]):,}" if found else "too many"
            raise DataError(
                f"image {name} has {pixels} pixels, more than the limit of {Image.MAX_IMAGE_PIXELS:,}",
                f"images over {Image.MAX_IMAGE_PIXELS:,} pixels are refused (they could be decompression bombs); "
                "downscale the image or remove it",
            ) from None
