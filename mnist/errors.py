"""The engine's typed errors: the UI turns them into friendly messages, the API into HTTP statuses."""


class InvalidImage(ValueError):
    """The input is not an image we accept (not decodable, wrong format, too big)."""


class UnsupportedImageType(InvalidImage):
    """Decodable bytes, but a format outside PNG, JPEG, GIF, BMP, WEBP and TIFF (HTTP 415)."""


class ImageTooLarge(InvalidImage):
    """More bytes or more pixels than the configured limits allow (HTTP 413)."""


class NoDigitFound(ValueError):
    """The image holds no ink: a blank canvas is never guessed at."""


class TooManyDigits(ValueError):
    """A number reading found more digits than we read in one go."""


class StoreUnavailable(RuntimeError):
    """The history database cannot be reached; the prediction itself still stands."""


class RecordNotFound(LookupError):
    """No history row has that id (HTTP 404)."""
