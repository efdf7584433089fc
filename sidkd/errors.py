"""The one exception type for bad input: the message names the file, line or utterance key."""


class DataError(ValueError):
    """Input that cannot be used as given (malformed table, missing audio, wrong sample rate...)."""
