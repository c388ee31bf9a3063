"""Make the OpenBLAS of the scipy-openblas32 wheel loadable before the extension is imported.

The extension links libscipy_openblas.so by name with an rpath to ``../scipy_openblas32/lib`` relative to
itself, which finds the wheel when both are installed in the same site-packages. Loading the library
here first, by absolute path, also covers editable installs and split install locations: the dynamic
linker reuses an already-loaded library of the same soname. BLAS threads are set to 1 unless
LSTM_EMBED_BLAS_THREADS says otherwise: one LSTM step is far too small to split across cores.
"""
import ctypes
import os


def load_openblas() -> None:
    import scipy_openblas32

    lib_dir = scipy_openblas32.get_lib_dir()
    name = scipy_openblas32.get_library(fullname=True)
    lib = ctypes.CDLL(os.path.join(lib_dir, name), mode=ctypes.RTLD_GLOBAL)
    threads = int(os.environ.get("LSTM_EMBED_BLAS_THREADS", "1"))
    lib.scipy_openblas_set_num_threads(ctypes.c_int(threads))
