"""Errors for people: each says what was expected, what was found, and what to do."""


class StudyError(Exception):
    """Base class: a problem the user can fix; the message names the problem and the fix."""


class ModelNotFoundError(StudyError):
    pass


class CorruptModelError(StudyError):
    pass


class UnknownEngineError(StudyError):
    pass


class InsufficientMemoryError(StudyError):
    pass


class ParamsError(StudyError):
    pass


class ServerError(StudyError):
    pass


class EngineOptionError(StudyError):
    """An engine option that the engine does not have, or a value it does not take."""
