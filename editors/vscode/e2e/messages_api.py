"""Serves the local Messages-API test server (tests/messages_api_server.py) for the editor end-to-end run: one
scripted turn submits a known-good kernel, so the run exercises the editor side and the real judge, not a model.
Prints `url URL` once listening; runs until killed."""
from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--kernel", required=True, help="C source the scripted agent submits")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(args.repo) / "tests"))
    from messages_api_server import MessagesAPIServer

    source = Path(args.kernel).read_text()
    script = [
        {"content": [{"type": "text", "text": "Submitting a scalar kernel."},
                     {"type": "tool_use", "name": "submit_kernel",
                      "input": {"source": source, "notes": "scalar loop, NaN passes through"}}],
         "stop_reason": "tool_use", "output_tokens": 60},
        {"content": [{"type": "text", "text": "Done."}], "stop_reason": "end_turn", "output_tokens": 5},
    ]
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: done.set())
    with MessagesAPIServer(script) as srv:
        print(f"url {srv.url}", flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
