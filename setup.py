"""Build hook: compiles native/ with per-file ISA flags and links it into the cffi module ckls._native."""
import pathlib
import shutil
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "native"))
import build as native_build  # noqa: E402  (native/build.py)


class BuildNative(build_ext):
    def build_extension(self, ext):
        if ext.name == "ckls._native":
            objs = native_build.compile_objects(pathlib.Path(self.build_temp) / "native")
            ext.extra_objects = list(ext.extra_objects or []) + objs
        super().build_extension(ext)


class BuildPyWithSkills(build_py):
    """skills/ (the kernel agent's guidance) ships inside the package as ckls/kernels/_skills, and the skill
    evaluation's task set bench/kernel_tasks as ckls/skills/_tasks."""

    def run(self):
        super().run()
        root = pathlib.Path(__file__).resolve().parent
        for src, dest in (("skills", ("kernels", "_skills")), ("bench/kernel_tasks", ("skills", "_tasks"))):
            if (root / src).is_dir():
                shutil.copytree(root / src, pathlib.Path(self.build_lib, "ckls", *dest), dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__"))


setup(cffi_modules=["native/build.py:ffibuilder"], cmdclass={"build_ext": BuildNative, "build_py": BuildPyWithSkills})
