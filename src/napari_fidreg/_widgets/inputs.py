"""Input widgets' rules that magicgui's own options cannot say."""

from __future__ import annotations

from magicgui.widgets import SpinBox


def zero_or_at_least(spin: SpinBox, minimum: int) -> SpinBox:
    """Let ``spin`` hold 0 (its 'off' or 'all' value) or ``minimum`` and more, nothing between.

    A value in between (1 or 2 planes of block depth, a 10-px series block), typed or
    stepped to, would only be refused when Register is clicked; it is moved at once to
    ``minimum`` when it was reached going up from 0, else to 0 (stepping down from
    ``minimum``), so that the arrows walk 0, minimum, minimum + step, ...

    A typed value counts when it is entered (Enter, or leaving the box), not at each key:
    "64" typed over 0 was "6" first, moved to the minimum before the "4" came.
    """
    spin.native.setKeyboardTracking(False)
    last = [int(spin.value)]

    def snap(value) -> None:
        v = int(value)
        if 0 < v < minimum:
            v = minimum if last[0] < v else 0  # up from below (0): the minimum; down: 0
            last[0] = v
            spin.value = v  # re-enters with an allowed value
            return
        last[0] = v

    spin.changed.connect(snap)
    return spin
