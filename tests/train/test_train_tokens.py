"""Behaviour tokens: added once, resized only when needed, never shrunk, rows set on purpose."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from behaviorsft.taxonomy import BEHAVIOR_TOKENS, FINE_BEHAVIOR_TOKENS
from behaviorsft.train.tokens import add_behavior_tokens, token_description


def _load(path):
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def test_description_of_tokens():
    assert token_description("<proactive>") == "proactive"
    assert token_description("<primarily_reactive>") == "primarily reactive"


def test_spare_rows_no_resize_and_rows_from_word_pieces(tiny_models):
    model, tok = _load(tiny_models["tied"])
    rows = model.get_input_embeddings().weight.shape[0]
    n_before = len(tok)
    assert rows == n_before + 8  # the fixture's spare rows
    setup = add_behavior_tokens(model, tok)
    assert not setup.resized
    assert setup.rows_before == setup.rows_after == rows
    assert setup.tied
    assert setup.added == BEHAVIOR_TOKENS
    emb = model.get_input_embeddings().weight
    assert model.get_input_embeddings().weight.shape[0] == rows
    for token, tid in zip(setup.tokens, setup.token_ids, strict=True):
        assert tok.encode(token, add_special_tokens=False) == [tid]
        assert n_before <= tid < rows
        pieces = tok.encode(" " + token_description(token), add_special_tokens=False)
        expected = emb[pieces].detach().float().mean(dim=0)
        assert torch.allclose(emb[tid].detach().float(), expected, atol=1e-6)
    react, proact = setup.token_ids
    assert not torch.allclose(emb[react], emb[proact])  # they start apart


def test_no_spare_rows_resizes_to_tokenizer_and_head_gets_mean(tiny_models):
    model, tok = _load(tiny_models["untied"])
    rows = model.get_input_embeddings().weight.shape[0]
    head_before = model.get_output_embeddings().weight.detach().clone()
    setup = add_behavior_tokens(model, tok)
    assert setup.resized and not setup.tied
    assert setup.rows_after == len(tok) == rows + 2
    assert model.get_output_embeddings().weight.shape[0] == len(tok)
    head = model.get_output_embeddings().weight.detach()
    mean = head_before.float().mean(dim=0)
    for tid in setup.token_ids:
        assert torch.allclose(head[tid].float(), mean, atol=1e-6)
    # old rows untouched
    assert torch.equal(head[:rows], head_before)


def test_second_call_adds_nothing_and_keeps_rows(tiny_models):
    model, tok = _load(tiny_models["tied"])
    first = add_behavior_tokens(model, tok)
    with torch.no_grad():
        model.get_input_embeddings().weight[first.token_ids[0]] += 1.0  # "trained" row
    snapshot = model.get_input_embeddings().weight.detach().clone()
    again = add_behavior_tokens(model, tok)
    assert again.added == () and again.initialised == ()
    assert again.token_ids == first.token_ids
    assert torch.equal(model.get_input_embeddings().weight, snapshot)


def test_never_shrinks_a_larger_matrix(tiny_models):
    model, tok = _load(tiny_models["untied"])
    model.resize_token_embeddings(len(tok) + 100, mean_resizing=False)
    rows = model.get_input_embeddings().weight.shape[0]
    setup = add_behavior_tokens(model, tok)
    assert not setup.resized
    assert model.get_input_embeddings().weight.shape[0] == rows > len(tok)


@pytest.mark.parametrize("kind", ["tied", "untied"])
def test_fine_inventory_adds_five_tokens(tiny_models, kind):
    model, tok = _load(tiny_models[kind])
    setup = add_behavior_tokens(model, tok, "fine")
    assert setup.tokens == tuple(FINE_BEHAVIOR_TOKENS.values())
    assert len(set(setup.token_ids)) == 5
    assert max(setup.token_ids) < model.get_input_embeddings().weight.shape[0]
