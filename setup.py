"""Builds the extensions: lstm_embed._lstm, the C core (src/lstm_c) plus the Cython binding, and
lstm_embed._quantize, the converter's clip search (host only, no C core).

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

# The converter's int8 clip search: the same float64 arithmetic as the numpy reference, so the same flags
# (no contraction into FMA, no -ffast-math).
quantize_extension = Extension(
    "lstm_embed._quantize",
    sources=["lstm_embed/_quantize.pyx"],
    include_dirs=[numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
    extra_compile_args=["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-Wall"],
)

setup(ext_modules=cythonize([extension, quantize_extension], compiler_directives={"language_level": "3"}))
