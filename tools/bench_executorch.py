"""Export a PyTorch ``nn.LSTM`` to an ExecuTorch program lowered to XNNPACK, for the benchmark.

The program is one step with explicit state: ``forward(x [1, B, I], h [L, B, H], c [L, B, H]) -> (y,
h_out, c_out)``, exported with ``torch.export`` and lowered by ``to_edge_transform_and_lower`` with the
``XnnpackPartitioner`` (fp32). ``torch.export`` unrolls the time loop of ``nn.LSTM`` into one copy of the
cell per timestep for a fixed T, so whole sequences are not timed: a program per sequence length would
be a different model from the step one (the report says so).
"""
from __future__ import annotations

import logging
import warnings

import torch


class _Step(torch.nn.Module):
    """``nn.LSTM`` with the state as explicit inputs and outputs (what torch.export needs)."""

    def __init__(self, lstm: torch.nn.LSTM):
        super().__init__()
        self.lstm = lstm

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        y, (h_out, c_out) = self.lstm(x, (h, c))
        return y, h_out, c_out


def lstm_executorch(lstm: torch.nn.LSTM, batch: int) -> tuple:
    """(program bytes, delegated call count) of one step of ``lstm`` at ``batch`` streams, lowered to
    XNNPACK. The count says how many partitions XNNPACK took (0: everything fell back to the portable
    operators)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # torchao logs a warning per optional CUDA library it cannot load
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notices from inside torch.export and executorch
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
            from executorch.exir import to_edge_transform_and_lower

            layers, hidden, size = lstm.num_layers, lstm.hidden_size, lstm.input_size
            args = (torch.zeros(1, batch, size), torch.zeros(layers, batch, hidden),
                    torch.zeros(layers, batch, hidden))
            with torch.no_grad():
                exported = torch.export.export(_Step(lstm).eval(), args)
            edge = to_edge_transform_and_lower(exported, partitioner=[XnnpackPartitioner()])
    finally:
        root.setLevel(level)
    delegated = sum(1 for node in edge.exported_program().graph.nodes
                    if node.op == "call_function" and "executorch_call_delegate" in str(node.target))
    return bytes(edge.to_executorch().buffer), delegated
