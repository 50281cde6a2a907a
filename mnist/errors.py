"""The engine's typed errors: the UI turns them into friendly messages, the API into HTTP statuses.

They share one base class, EngineError, and none of them is a ValueError: a caller catches what the
engine means to say, while a real bug (a ValueError deep in NumPy or Pillow, say) stays a bug.
"""


class EngineError(Exception):
    """Something the engine expects and names: the caller shows its message, never a traceback."""


class InvalidImage(EngineError):
    """The input is not an image we accept (not decodable, wrong format, too big)."""


class UnsupportedImageType(InvalidImage):
    """Decodable bytes, but a format outside PNG, JPEG, GIF, BMP, WEBP, TIFF and HEIC/HEIF (HTTP 415)."""


class ImageTooLarge(InvalidImage):
    """More bytes or more pixels than the configured limits allow (HTTP 413)."""


class NoDigitFound(EngineError):
    """The image holds no ink: a blank canvas is never guessed at."""


class TooManyDigits(EngineError):
    """A number reading found more digits than we read in one go."""


class InvalidDataset(EngineError):
    """An MNIST file that is not what it says: not IDX, truncated, or not the published bytes."""


class StoreUnavailable(EngineError):
    """The history database cannot be used now; the prediction itself still stands.

    `reason` is the class of failure, for logs, metrics and the API's answers: "timeout" (no answer in
    time: a hung or overloaded server), "outage" (already known to be down, so not asked again yet),
    "unavailable" (refused or failed: unreachable, wrong name or password, no schema) or "off"
    (DATABASE_URL is unusable, so there is no history at all).
    """

    def __init__(self, message: str = "", reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason


class RecordNotFound(EngineError):
    """No history row has that id (HTTP 404)."""


class IdempotencyConflict(EngineError):
    """An Idempotency-Key already used for a different request (HTTP 422): its first answer stands."""


class ModelNotFound(EngineError):
    """No model version has that name (HTTP 404)."""


class ModelConflict(EngineError):
    """The model registry cannot do that now (HTTP 409); the subclasses say why."""


class TrainingInProgress(ModelConflict):
    """A fine-tune is already training: one at a time, across every app process."""


class ModelNotReady(ModelConflict):
    """A version that has no weights to serve: still training, or failed."""


class ActivationRefused(ModelConflict):
    """The gate refused a candidate (worse than its parent on the history holdout or on MNIST); force overrides it."""


class NothingToLearn(EngineError):
    """A fine-tune was asked for, but no row of the history is labelled (HTTP 422)."""


class TrainingDataMissing(EngineError):
    """A fine-tune needs MNIST's training files for its replay, and MNIST_DATA_DIR does not hold them (HTTP 503)."""
