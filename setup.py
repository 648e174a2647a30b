"""Builds the native CPU kernels in csrc/; everything else about the package is in pyproject.toml.

The kernels are a plain C shared library that hf_binarize/backends/cpu.py loads with ctypes: no Python or torch
headers, so one build serves every torch version. Each instruction set's functions carry their own target
attribute and are picked at run time, so the build needs no -march flag. The extension is optional: where it
cannot be compiled the package installs without it and runs the plain-torch implementation.
"""

import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.errors import CompileError, LinkError

LIBRARY = "hf_binarize.backends.libhfb_cpu"


class BuildPlainLibrary(build_ext):
    """Names the library ``libhfb_cpu.so`` (``.dylib``, ``.dll``): it is no Python module, so it gets no ABI tag
    in its name and needs no ``PyInit_`` symbol."""

    def get_ext_filename(self, fullname):
        suffix = ".dll" if sys.platform == "win32" else ".dylib" if sys.platform == "darwin" else ".so"
        *package, name = fullname.split(".")
        return str(Path(*package, name + suffix))

    def get_export_symbols(self, ext):
        return ext.export_symbols

    def build_extension(self, ext):
        if self.compiler.compiler_type == "msvc":
            ext.extra_compile_args = ["/O2"]
            super().build_extension(ext)
            return
        # OpenMP where the compiler has it, so that the kernels run on torch's OpenMP threads (csrc/pool.c says
        # why); else the library's own pthread pool. No fused multiply-adds the source does not ask for: the int8
        # path must round as the plain-torch reference does (csrc/hfb.h); MSVC fuses only under /fp:contract.
        flags = ["-O3", "-fvisibility=hidden", "-ffp-contract=off", "-pthread"]
        try:
            ext.extra_compile_args = [*flags, "-fopenmp"]
            ext.extra_link_args = ["-pthread", "-fopenmp"]
            super().build_extension(ext)
        except (CompileError, LinkError):
            ext.extra_compile_args = flags
            ext.extra_link_args = ["-pthread"]
            super().build_extension(ext)


setup(
    ext_modules=[
        Extension(LIBRARY, sources=sorted(str(path) for path in Path("csrc").glob("*.c")), depends=["csrc/hfb.h"],
                  optional=True),
    ],
    cmdclass={"build_ext": BuildPlainLibrary},
)
