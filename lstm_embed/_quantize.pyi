"""Type stubs of the compiled clip search (lstm_embed/_quantize.pyx)."""
import numpy as np
import numpy.typing as npt

def clip_search(w: npt.NDArray[np.float64], amax: npt.NDArray[np.float64], fractions: npt.NDArray[np.float64],
                q: npt.NDArray[np.int8], scale: npt.NDArray[np.float32], start: int, stop: int) -> None: ...
def row_errors(w: npt.NDArray[np.float64], scale: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...
