"""Run by ``accelerate launch`` in tests/test_train.py: gatys.train's command, then each process's parameters.

The command line is ``gatys.train``'s own; after training every process saves its copy of the network as
``OUT/rank{N}.pt``, so the test can check that data-parallel processes hold identical parameters.
"""

from __future__ import annotations

import sys

import torch

from gatys._trainloop import train
from gatys.train import _parser, job_from_args

if __name__ == "__main__":
    a = _parser().parse_args(sys.argv[1:])
    job = job_from_args(a)
    result = train(job, progress=False)
    from accelerate import PartialState

    state = {k: v.detach().cpu() for k, v in result.network.state_dict().items()}
    torch.save(state, job.out / f"rank{PartialState().process_index}.pt")
