"""Builds the tiny model the opt-in real-vLLM test serves: a random-init
LlamaForCausalLM (about 3.4 M parameters, float32, fixed seed) and a
byte-level BPE tokenizer trained here on generated text, with a chat
template. Nothing is downloaded. Usage: make_model.py OUT_DIR"""

import random
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

VOCAB = 4096
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def corpus(lines: int, seed: int = 7):
    rng = random.Random(seed)
    words = ["token", "cache", "batch", "queue", "prefill", "decode", "latency",
             "router", "engine", "metric", "trace", "span", "model", "serve"]
    for _ in range(lines):
        yield " ".join(rng.choice(words) + str(rng.randint(0, 99)) for _ in range(12))


def tokenizer(out: Path) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<s>", "</s>", "<unk>", "<pad>"]
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(20000), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    return fast


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    fast = tokenizer(out)
    torch.manual_seed(7)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=256, intermediate_size=512,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=2048, bos_token_id=fast.bos_token_id,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id,
                         torch_dtype="float32")
    LlamaForCausalLM(config).save_pretrained(out)
    print(f"model: {out}")


if __name__ == "__main__":
    main()
