"""`whisper_backend._select`: rows of a batch's encoder output for a sub-batch generate call.

On a GPU the rows are sliced on the host and sent back (numpy cannot read device memory); the
CUDA branch ran in the GPU benchmark (benchmarks/RESULTS.md, GPU). Here: the host path keeps
exactly the asked rows, in the asked order, with dtype and shape intact.
"""

import ctranslate2
import numpy as np

from voxscope.engine.whisper_backend import _select


def test_select_keeps_the_asked_rows_in_order() -> None:
    enc = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    out = _select(ctranslate2.StorageView.from_array(enc), [3, 1])
    assert out.device == "cpu"
    got = np.asarray(out)
    assert got.dtype == np.float32 and got.shape == (2, 3, 2)
    np.testing.assert_array_equal(got, enc[[3, 1]])
