#!/usr/bin/env bash
# Makes the larger model of the quality tables in docs/BENCHMARKS.md (kjv-2.7M, out/kjv-2.7m): the demo's text
# split into the tables' held-out chapters (every tenth) and calibration chapters (the rest, out/kjv-split), a
# random 2.7 M-parameter Llama with the demo's tokenizer (seed 1611), configs/kjv-pretrain.yaml's pre-training, and
# its checkpoint-200 copied to out/kjv-2.7m. Needs out/demo-kjv/kjv.jsonl (examples/regenerate-demo-base.sh writes
# it). Steps 1-200 took 31 minutes wall on 2 shared cores (160 to 700 tokens/s, 2026-12-04 23:41 to 12-05 00:12 UTC).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python3 examples/demo_recipe.py split out/demo-kjv/kjv.jsonl out/kjv-split
rm -rf out/kjv-src out/kjv-init
mkdir -p out/kjv-src
cp examples/demo-base/{tokenizer.json,tokenizer_config.json,generation_config.json} out/kjv-src/
# the demo's architecture, wider and deeper
python3 -c "
import json
c = json.load(open('examples/demo-base/config.json'))
c.update(hidden_size=192, intermediate_size=512, num_hidden_layers=6, num_attention_heads=6, num_key_value_heads=6)
json.dump(c, open('out/kjv-src/config.json', 'w'), indent=2)"
./qlora4j init-model out/kjv-src out/kjv-init --seed 1611 --std 0.02
start=$(date +%s)
./qlora4j train configs/kjv-pretrain.yaml
echo "pre-training took $(( $(date +%s) - start )) s"
rm -rf out/kjv-2.7m
mkdir -p out/kjv-2.7m
for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
  cp out/kjv-pretrain/checkpoint-200/"$f" out/kjv-2.7m/
done
