"""What a user would pick instead of hf-binarize, on the same float model and test splits: HQQ 1-bit,
optimum-quanto int4/int8 and PyTorch's dynamic int8 (``quantize_dynamic``) weights, scored by the code that scores
our models (``hf-binarize evaluate``).

    pip install "hf-binarize[peers]"     # hqq, optimum-quanto
    python bench/peers.py --model runs/float --dataset corpus --splits test test_unseen --out results

Each peer quantizes every ``nn.Linear`` of the float ``ParakeetForRNNT`` as its documentation shows (no training;
``nn.LSTM`` and ``nn.Conv1d`` stay float: HQQ and quanto do not handle them, see ``torch_dynamic_int8`` for
PyTorch; HQQ 1-bit also leaves float the linears whose weight is not a multiple of 512 values, which it cannot
pack). Writes ``results/<peer>-<split>.json``
in the schema of ``hf-binarize evaluate --json``, with these differences: ``size.weight_bytes`` counts every tensor
of the quantized model's ``state_dict`` (packed weights and the peer's scales and zero points), ``folder_bytes``
equals it (the peers' models are not saved with ``save_pretrained``), and ``command`` is this script's command.
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForRNNT, AutoProcessor

from hf_binarize.evaluation import score_model
from hf_binarize.size import ModuleSize, SizeReport, size_report


def hqq_1bit(model: nn.Module) -> str:
    from hqq.core.quantize import BaseQuantizeConfig, HQQLinear

    config = BaseQuantizeConfig(nbits=1, group_size=64)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            # HQQ packs 1-bit groups eight at a time and fails on a weight of another size (176 x 176 here):
            # such layers stay float, as they would for a user.
            if isinstance(child, nn.Linear) and child.weight.numel() % (8 * 64) == 0:
                setattr(module, child_name, HQQLinear(child, config, compute_dtype=torch.float32, device="cpu"))
    return "binary"


def quanto(bits: int) -> Callable[[nn.Module], str]:
    def apply(model: nn.Module) -> str:
        from optimum.quanto import freeze, qint4, qint8, quantize

        quantize(model, weights=qint4 if bits == 4 else qint8)
        freeze(model)
        return f"int{bits}"

    return apply


def torch_dynamic_int8(model: nn.Module) -> str:
    # What a CPU user picks today. Linears only: quantize_dynamic's LSTM keeps its weights in packed script
    # objects whose bytes a state_dict does not show, so the LSTM stays float here as it does for the other peers.
    torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return "int8"


PEERS = {"hqq-1bit-g64": hqq_1bit, "quanto-int4": quanto(4), "quanto-int8": quanto(8),
         "torch-dynamic-int8": torch_dynamic_int8}


def peer_size(model: nn.Module, floating: SizeReport, precision: str) -> SizeReport:
    """Every stored byte of the quantized model's state_dict, against the float model's logical parameters."""
    # quantize_dynamic's linears hold their int8 weight and bias as a tuple.
    values = [v for value in model.state_dict().values() for v in (value if isinstance(value, tuple) else (value,))]
    tensors = {id(t): t for t in values if isinstance(t, torch.Tensor)}
    stored = sum(t.numel() * t.element_size() for t in tensors.values())
    row = ModuleSize(name="", group="model", precision=precision, params=floating.total_params, bytes=stored,
                     fp32_bytes=floating.fp32_bytes)
    return SizeReport([row], folder="(in memory)", folder_bytes=stored)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="float ParakeetForRNNT folder with its processor")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--splits", nargs="+", default=["test"])
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True, help="folder for the JSON results")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/peers.py", *sys.argv[1:]])
    processor = AutoProcessor.from_pretrained(args.model)
    floating = AutoModelForRNNT.from_pretrained(args.model).eval()
    float_size = size_report(floating)
    for peer in args.peers:
        model = copy.deepcopy(floating)
        precision = PEERS[peer](model)
        size = peer_size(model, float_size, precision)
        for split in args.splits:
            result = score_model(model, processor, args.dataset, split=split, audio_column="audio",
                                 text_column="text", limit=None, batch_size=args.batch_size, threads=args.threads,
                                 variant=peer, model_name=f"{args.model} + {peer}", size=size, command=command)
            print(result)
            result.write_json(args.out / f"{peer}-{split}.json")


if __name__ == "__main__":
    main()
