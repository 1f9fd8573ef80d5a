"""Work-done progress (window/workDoneProgress) for the server's long jobs: one way to begin it, report from
another thread, and end it. Clients that do not support it get nothing and lose nothing."""
from __future__ import annotations

import asyncio
import uuid

from lsprotocol import types


async def begin(ls, kind: str, title: str, message: str | None = None, percentage: int | None = 0) -> str | None:
    """A new progress token shown as `title`, or None where the client does not take work-done progress."""
    caps = ls.client_capabilities
    if not (caps and caps.window and caps.window.work_done_progress):
        return None
    token = f"ckls-{kind}-{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.wait_for(ls.work_done_progress.create_async(token), 5.0)
        ls.work_done_progress.begin(token, types.WorkDoneProgressBegin(
            title=title, message=message, cancellable=False, percentage=percentage))
    except Exception:
        return None
    return token


def report_threadsafe(ls, loop, token: str | None, message: str, percentage: int | None) -> None:
    """A report from a worker thread (it runs on the event loop)."""
    if token is None or loop is None:
        return
    try:
        loop.call_soon_threadsafe(lambda: ls.work_done_progress.report(
            token, types.WorkDoneProgressReport(message=message, percentage=percentage)))
    except RuntimeError:  # the event loop is closing
        pass


def end(ls, token: str | None, message: str) -> None:
    if token is not None:
        ls.work_done_progress.end(token, types.WorkDoneProgressEnd(message=message))
