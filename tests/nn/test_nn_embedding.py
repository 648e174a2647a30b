"""Tests of PackedEmbedding (int8 rows) against a float64 nn.Embedding holding the dense reference rows
``q * scale``, computed here from the stored int8 buffers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hf_binarize import BinaryFormat, BinaryQuantizationConfig, Int8Format, quantize_model
from hf_binarize.nn import PackedEmbedding

VOCAB, DIM = 23, 10
# Two roundings (the scale to the compute dtype, then q * scale), each at most half an ulp.
TOL = {torch.float32: 1e-6, torch.bfloat16: 2 * 2.0**-8, torch.float16: 2 * 2.0**-11}


def make_embedding(padding_idx=None, seed=0, dtype=torch.float32) -> nn.Embedding:
    torch.manual_seed(seed)
    embedding = nn.Embedding(VOCAB, DIM, padding_idx=padding_idx)
    with torch.no_grad():
        embedding.weight.normal_(0.0, 0.8)
        embedding.weight[3] = 0.0  # an all-zero row (scale 0)
    return embedding.to(dtype)


def pack(module: nn.Module, **config) -> PackedEmbedding:
    config.setdefault("module_overrides", {"emb": "int8"})
    container = nn.ModuleDict({"emb": module})
    quantize_model(container, BinaryQuantizationConfig(**config))
    packed = container["emb"]
    assert isinstance(packed, PackedEmbedding)
    return packed


def reference_embedding(packed: PackedEmbedding, padding_idx=None) -> nn.Embedding:
    q, scale = packed.weight, packed.weight_scale
    assert q.dtype == torch.int8 and q.shape == (VOCAB * DIM,) and scale.shape == (VOCAB, 1)
    q = q.reshape(VOCAB, DIM)  # stored flat, row-major
    ref = nn.Embedding(VOCAB, DIM, padding_idx=padding_idx, dtype=torch.float64)
    with torch.no_grad():
        dense = torch.empty(VOCAB, DIM, dtype=torch.float64)
        for v in range(VOCAB):
            for d in range(DIM):
                dense[v, d] = int(q[v, d]) * float(scale[v, 0])
        ref.weight.copy_(dense)
    return ref


def ids(*shape, seed=1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, VOCAB, shape, generator=gen)


@pytest.mark.parametrize("scale_dtype", ["float16", "bfloat16", "float32"])
@pytest.mark.parametrize("shape", [(7,), (2, 5), (2, 3, 4), ()])
def test_embedding_matches_reference(scale_dtype, shape):
    float_embedding = make_embedding(seed=2)
    packed = pack(float_embedding, scale_dtype=scale_dtype)
    assert isinstance(packed.fmt, Int8Format)
    ref = reference_embedding(packed)
    x = ids(*shape) if shape else torch.tensor(5)
    y = packed(x)
    assert y.shape == (*x.shape, DIM) and y.dtype == torch.float32
    torch.testing.assert_close(y.double(), ref(x).detach(), rtol=TOL[torch.float32], atol=1e-7)


def test_embedding_is_close_to_the_float_rows():
    float_embedding = make_embedding(seed=3)
    packed = pack(float_embedding, scale_dtype="float32")
    w = float_embedding.weight.detach().double()
    step = w.abs().amax(1, keepdim=True) / 127
    y = packed(torch.arange(VOCAB)).double()
    assert ((y - w).abs() <= step / 2 * (1 + 1e-5) + 1e-12).all()
    assert (y[3] == 0).all()


@pytest.mark.parametrize("module_dtype", [torch.bfloat16, torch.float16])
def test_embedding_low_precision_module(module_dtype):
    float_embedding = make_embedding(seed=4, dtype=module_dtype)
    packed = pack(float_embedding)
    ref = reference_embedding(packed)
    x = ids(3, 4, seed=5)
    y = packed(x)
    assert y.dtype == module_dtype
    torch.testing.assert_close(y.double(), ref(x).detach(), rtol=TOL[module_dtype], atol=1e-6)


def test_embedding_compute_dtype():
    packed = pack(make_embedding(seed=6), compute_dtype="bfloat16")
    ref = reference_embedding(packed)
    x = ids(9, seed=7)
    y = packed(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.double(), ref(x).detach(), rtol=TOL[torch.bfloat16], atol=1e-6)


def test_embedding_holds_no_dense_copy():
    packed = pack(make_embedding(seed=8))
    assert list(packed.parameters()) == []
    tensors = list(packed.state_dict().values())
    for value in vars(packed).values():
        items = value.values() if isinstance(value, dict) else [value]
        tensors += [t for t in items if isinstance(t, torch.Tensor)]
    assert any(t.dtype == torch.int8 for t in tensors)
    for tensor in tensors:
        if tensor.is_floating_point():
            assert tensor.numel() < VOCAB * DIM
    assert set(packed.state_dict()) == {"weight", "weight_scale"}


@pytest.mark.parametrize("padding_idx", [None, 0, 7])
def test_embedding_dequantize(padding_idx):
    float_embedding = make_embedding(padding_idx=padding_idx, seed=9)
    packed = pack(float_embedding)
    assert packed.padding_idx == padding_idx
    dense = packed.dequantize()
    assert type(dense) is nn.Embedding
    assert dense.padding_idx == padding_idx
    assert dense.weight.dtype == torch.float32 and dense.weight.shape == (VOCAB, DIM)
    ref = reference_embedding(packed)
    torch.testing.assert_close(dense.weight.double(), ref.weight.detach(), rtol=1e-6, atol=1e-7)
    x = ids(4, 3, seed=10)
    assert torch.equal(dense(x), packed(x))


def test_embedding_dequantize_keeps_module_dtype():
    dense = pack(make_embedding(seed=11, dtype=torch.bfloat16)).dequantize()
    assert dense.weight.dtype == torch.bfloat16


def test_embedding_not_binarized_by_default():
    # Embeddings are not in module_types: without an int8 override they stay float.
    container = nn.ModuleDict({"emb": make_embedding(seed=12)})
    quantize_model(container, BinaryQuantizationConfig())
    assert type(container["emb"]) is nn.Embedding


def test_embedding_rejects_binary_format():
    with pytest.raises(ValueError, match="int8"):
        PackedEmbedding(VOCAB, DIM, BinaryFormat())


def test_embedding_fill_from_shell():
    float_embedding = make_embedding(seed=13)
    shell = PackedEmbedding(VOCAB, DIM, Int8Format(torch.float32))
    shell.fill_from(float_embedding)
    ref = reference_embedding(shell)
    x = ids(6, seed=14)
    torch.testing.assert_close(shell(x).double(), ref(x).detach(), rtol=1e-6, atol=1e-7)


def test_embedding_out_of_range_ids():
    packed = pack(make_embedding(seed=15))
    with pytest.raises(IndexError):
        packed(torch.tensor([VOCAB]))
