"""The one rule for command-line usage errors, shared by every `ckls` command's parser (the top-level CLI and the
verify, kernel and skills commands, which parse their own arguments): one line naming the argument, what is wrong
and where to look, exit status 2 — never argparse's usage block."""
from __future__ import annotations

import argparse


class Parser(argparse.ArgumentParser):
    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")
