#!/usr/bin/env bash
# Regenerates the embedded demo from public-domain text: the King James Bible from Debian's bible-kjv-text
# package (read with the bible-kjv program), a character-level tokenizer, a random 0.9 M-parameter Llama,
# qlora4j's own pre-training of it (configs/demo-pretrain.yaml) into examples/demo-base, and the
# spell-with-dashes dataset in examples/data. Needs apt-get (Debian/Ubuntu, lists updated) and python3.
# Run from anywhere; the pre-training takes about 5 to 25 minutes on 2 cores (see examples/README.md).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# 1. the text: 66 books, one line per verse
(cd "$work" && apt-get download bible-kjv-text bible-kjv >/dev/null)
for deb in "$work"/*.deb; do dpkg -x "$deb" "$work/pkg"; done
"$work/pkg/usr/bin/bible" -l9999 -p "$work/pkg/usr/lib" gen1:1-rev22:21 > "$work/kjv.txt"
mkdir -p out/demo-kjv
python3 examples/demo_recipe.py text "$work/kjv.txt" out/demo-kjv/kjv.jsonl

# 2. tokenizer and architecture, then random weights
rm -rf out/demo-src out/demo-init
python3 examples/demo_recipe.py tokenizer out/demo-src
cat > out/demo-src/config.json <<'JSON'
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "hidden_size": 128,
  "intermediate_size": 384,
  "num_hidden_layers": 4,
  "num_attention_heads": 4,
  "num_key_value_heads": 4,
  "vocab_size": 100,
  "max_position_embeddings": 256,
  "rms_norm_eps": 1e-5,
  "rope_theta": 10000.0,
  "tie_word_embeddings": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "pad_token_id": 0,
  "initializer_range": 0.02,
  "torch_dtype": "float32"
}
JSON
./qlora4j init-model out/demo-src out/demo-init --seed 1611 --std 0.02

# 3. pre-training (finetuning_type: full, stage: pt), timed
start=$(date +%s)
./qlora4j train configs/demo-pretrain.yaml
echo "pre-training took $(( $(date +%s) - start )) s"
mkdir -p examples/demo-base
for f in config.json model.safetensors tokenizer.json tokenizer_config.json generation_config.json; do
  cp out/demo-pretrain/"$f" examples/demo-base/
done

# 4. the instruction dataset (train and held-out test, disjoint words)
python3 examples/demo_recipe.py dataset "$work/kjv.txt" examples/data
echo "wrote examples/demo-base and examples/data"
