"""WebP thumbnails for the prompt library, made with Pillow, safe against hostile or broken images.

An image is opened lazily and its declared size checked before any pixel is decoded, so a
decompression bomb (a small file that declares a gigantic image) costs nothing; truncated files, files
that are not images and missing files all end in one error type that says what was wrong.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

from edi_storage.errors import StorageError

MAX_SIDE = 256
MAX_PIXELS = 64_000_000  # 8000 x 8000: larger than any generated image we expect, far below a bomb
WEBP_QUALITY = 80


class ThumbnailError(StorageError):
    """No thumbnail could be made from the given image; the message says why."""


@dataclass(frozen=True)
class Thumbnail:
    data: bytes
    mime: str
    width: int
    height: int


def refuse_oversized(label: str, size: tuple[int, int], max_pixels: int) -> None:
    """Checked on the size the file declares, before a single pixel is decoded."""
    width, height = size
    if width * height > max_pixels:
        raise ThumbnailError(
            f"{label} declares {width}x{height} pixels, more than the {max_pixels} allowed "
            "(a decompression bomb, or simply too large)"
        )


def make_thumbnail(
    source: Path | str | bytes, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS
) -> Thumbnail:
    """A WebP thumbnail whose longest side is at most ``max_side``, aspect kept, EXIF orientation applied."""
    from PIL import Image, ImageOps, UnidentifiedImageError  # only when a thumbnail is made: slow to import

    label = "image data" if isinstance(source, bytes) else f"image {str(source)!r}"
    stream = io.BytesIO(source) if isinstance(source, bytes) else Path(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as image:
                refuse_oversized(label, image.size, max_pixels)
                upright = ImageOps.exif_transpose(image)
                upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                has_alpha = upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info
                converted = upright.convert("RGBA" if has_alpha else "RGB")
                out = io.BytesIO()
                converted.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    except ThumbnailError:
        raise
    except FileNotFoundError:
        raise ThumbnailError(f"{label} does not exist") from None
    except UnidentifiedImageError:
        raise ThumbnailError(f"{label} is not an image Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ThumbnailError(f"{label} is a decompression bomb: {error}") from None
    except (OSError, ValueError, SyntaxError) as error:  # truncated or corrupt image data
        raise ThumbnailError(f"{label} is broken: {error}") from None
    return Thumbnail(out.getvalue(), "image/webp", converted.width, converted.height)
