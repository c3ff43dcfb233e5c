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


def validation_problems(exc, noun: str, unknown_suffix: str = "") -> list[str]:
    """A pydantic ValidationError as one line per problem, for people: `unknown <noun> 'x'`
    (+ `unknown_suffix`, e.g. what is allowed) or `<noun> 'x': what is wrong (got …)`."""
    lines = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"unknown {noun} {loc!r}{unknown_suffix}")
        else:
            got = repr(err.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."
            lines.append(f"{noun} {loc!r}: {err['msg']} (got {got})")
    return lines
