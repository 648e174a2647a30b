"""hf_binarize.training.run: how a recipe's process ends. Under DDP a gloo process group freed by the interpreter's
teardown aborted a finished process now and then (SIGABRT, "terminate called without an active exception"; the DDP
resume test failed so once in CI and once in four local runs), and destroying it earlier deadlocked a process when
the DDP model released it; the recipes now end a DDP process at once with exit_process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from hf_binarize.training.run import exit_process

CHILD = textwrap.dedent("""
    import sys, torch
    from hf_binarize.training.run import exit_process
    store = torch.distributed.FileStore(sys.argv[1], 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(4, 2))
    model(torch.ones(3, 4)).sum().backward()
    print("trained", end="")  # unflushed: exit_process must flush it
    sys.stderr.write("logged")
    exit_process(int(sys.argv[2]))
    raise AssertionError("exit_process returned")
""")


@pytest.mark.parametrize("status", [0, 3])
def test_a_ddp_process_ends_at_once_with_its_status_and_its_output(tmp_path, status):
    result = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "store"), str(status)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == status, result.stderr[-3000:]
    assert result.stdout == "trained"
    assert "logged" in result.stderr and "terminate called" not in result.stderr


def test_outside_ddp_it_is_sys_exit():
    with pytest.raises(SystemExit) as exited:
        exit_process(2)
    assert exited.value.code == 2
