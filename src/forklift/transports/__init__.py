"""Every place an image can live, behind one pair of interfaces, and one copy engine."""

from forklift.transports.base import CopyProgress, ImageDestination, ImageSource
from forklift.transports.copy import CopyResult, copy, copy_image
from forklift.transports.names import ImageName, open_destination, open_source, parse_image_name

__all__ = [
    "CopyProgress",
    "CopyResult",
    "ImageDestination",
    "ImageName",
    "ImageSource",
    "copy",
    "copy_image",
    "open_destination",
    "open_source",
    "parse_image_name",
]
