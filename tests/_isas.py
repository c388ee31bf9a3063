"""Every kernel table of our own that this CPU and build run, for the bit-identity tests."""
import lstm_embed


def open_all_isas(data: bytes) -> dict:
    """{isa name: Model} for the reference path and every SIMD path this CPU and build support (not "blas":
    the linked CBLAS, which follows its own order)."""
    return {isa: lstm_embed.Model.from_bytes(data, isa=isa) for isa in lstm_embed.supported_isas() if isa != "blas"}
