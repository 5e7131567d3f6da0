"""Work-arounds for bugs of Textual that kb users met, each with how it was reproduced.

Applied once, when the app module is imported. Each is narrow and leaves Textual's behaviour alone
where the bug does not occur; remove one when the Textual version kb requires has the fix.
"""

from __future__ import annotations


def guard_option_list_page_keys() -> None:
    """OptionList._move_page reads its line index before the options were laid out (Textual 8.2.8).

    Reproduction: add options to an OptionList, set `highlighted`, and call `action_page_down()`
    before the next refresh: `KeyError: 0` in `_move_page`. In kb it happened with ctrl+p then
    PageDown at once (the command palette's list had just been filled). `scroll_to_highlight`
    already calls `_update_lines()` first and tolerates the KeyError; `_move_page` now does too.
    """
    from textual.widgets import OptionList

    original = OptionList._move_page
    if getattr(original, "kb_guarded", False):
        return

    def _move_page(self, direction):
        self._update_lines()
        try:
            return original(self, direction)
        except KeyError:  # still not laid out: the key does nothing, as on an empty list
            return None

    _move_page.kb_guarded = True  # type: ignore[attr-defined]
    OptionList._move_page = _move_page  # type: ignore[method-assign]


def keep_message_loops_alive() -> None:
    """An exception in one handler must not stop every later message to that widget (Textual 8.2.8).

    Textual's message loop calls App._handle_exception and then leaves the loop for good, so even an
    app that chose not to exit is left with a widget (or the whole app) that no longer answers. Here
    the app is asked first: when `app.recover_from(error)` says it dealt with the error (kb's app
    logs and shows it), the loop goes on; otherwise the exception takes Textual's usual path.
    """
    import asyncio

    from textual.message_pump import MessagePump

    original = MessagePump._dispatch_message
    if getattr(original, "kb_guarded", False):
        return

    async def _dispatch_message(self, message):
        try:
            return await original(self, message)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            try:
                recover = getattr(self.app, "recover_from", None)
            except Exception:  # no active app (a pump outside one)
                recover = None
            if recover is not None and recover(error):
                return None
            raise

    _dispatch_message.kb_guarded = True  # type: ignore[attr-defined]
    MessagePump._dispatch_message = _dispatch_message  # type: ignore[method-assign]


def apply() -> None:
    guard_option_list_page_keys()
    keep_message_loops_alive()
