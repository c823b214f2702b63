"""What a lead image may be: checked on the admin's article form.

The model field (newsletter.models) caps the file at 5 MB; Django's
ImageField accepts anything Pillow can open (GIF, BMP, TIFF, ICO, …). This
adds what the help text promises and phones need: JPEG, PNG or WebP only,
judged by Pillow from the file's content (never its name or the browser's
content type), and a cap on pixels, since a few kilobytes of PNG can unpack
to gigabytes of bitmap when it is resized or viewed.
"""

from django.core.exceptions import ValidationError
from django.core.files import File

LEAD_IMAGE_FORMATS = {"JPEG", "PNG", "WEBP"}
LEAD_IMAGE_MAX_PIXELS = 40_000_000  # 40 megapixels: any camera's full size


def validate_lead_image(upload: File) -> None:
    """Refuse a lead image that is not JPEG, PNG or WebP, or has too many pixels."""
    # forms.ImageField.to_python has opened it with Pillow and kept the image.
    image = getattr(upload, "image", None)
    if image is None:
        return  # an image already stored (not a new upload): checked when it came
    if image.format not in LEAD_IMAGE_FORMATS:
        raise ValidationError(
            "This image is %(format)s; lead images must be JPEG, PNG or WebP.",
            params={"format": image.format or "of an unknown type"},
            code="image_format",
        )
    width, height = image.size
    if width * height > LEAD_IMAGE_MAX_PIXELS:
        raise ValidationError(
            "This image is %(width)s by %(height)s pixels; the limit is %(limit)s million pixels.",
            params={"width": width, "height": height, "limit": LEAD_IMAGE_MAX_PIXELS // 1_000_000},
            code="image_pixels",
        )
