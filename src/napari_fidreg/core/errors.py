"""The one exception type the engine raises for bad input or parameters."""


class FidregError(ValueError):
    """Bad input, parameters or files.

    The message names the problem in one line (which argument, which file, what
    was expected) so that the CLI and the napari widget can show it as is.
    """
