"""Builds the one extension, lstm_embed._lstm: the C core (src/lstm_c) plus the Cython binding.

The kernels are our own; the OpenBLAS of the scipy-openblas32 wheel (prefixed symbols scipy_*) is linked
for the optional isa="blas" path only. It is found
at run time through an rpath relative to the installed extension and by lstm_embed/_blas.py, which loads
it from wherever the wheel is installed: no path into pip's temporary build environment is kept.
"""
import glob

import numpy
import scipy_openblas32
from Cython.Build import cythonize
from setuptools import Extension, setup

c_sources = sorted(glob.glob("src/lstm_c/*.c"))

extension = Extension(
    "lstm_embed._lstm",
    sources=["lstm_embed/_lstm.pyx", *c_sources],
    include_dirs=["src/lstm_c", numpy.get_include(), scipy_openblas32.get_include_dir()],
    define_macros=[
        ("LSTM_USE_CBLAS", "1"),
        ("BLAS_SYMBOL_PREFIX", "scipy_"),
        ("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION"),
    ],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    runtime_library_dirs=["$ORIGIN/../scipy_openblas32/lib"],
    # The flags of every build of the core (tests/c/Makefile, CMakeLists.txt): -ffp-contract=off keeps
    # a * b + c unfused, so every ISA computes the same bits; -fno-trapping-math lets the activation loops
    # vectorise and changes no result (never -ffast-math).
    extra_compile_args=["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-Wall"],
)

setup(ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}))
