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
    """skills/ (the kernel agent's guidance) ships inside the package as ckls/kernels/_skills."""

    def run(self):
        super().run()
        src = pathlib.Path(__file__).resolve().parent / "skills"
        if src.is_dir():
            shutil.copytree(src, pathlib.Path(self.build_lib) / "ckls" / "kernels" / "_skills", dirs_exist_ok=True)


setup(cffi_modules=["native/build.py:ffibuilder"], cmdclass={"build_ext": BuildNative, "build_py": BuildPyWithSkills})
