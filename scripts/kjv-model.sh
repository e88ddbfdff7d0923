#!/usr/bin/env bash
# Makes the larger model of the quality tables in docs/BENCHMARKS.md (kjv-2.7M, out/kjv-2.7m): the demo's text
# split into the tables' held-out chapters (every tenth) and the other chapters (out/kjv-split), a random
# 2.7 M-parameter Llama with the demo's tokenizer (seed 1611), and configs/kjv-pretrain.yaml's pre-training on the
# other chapters only; the final model is copied to out/kjv-2.7m. Needs out/demo-kjv/kjv.jsonl
# (examples/regenerate-demo-base.sh writes it).
#
# Reproducible: libtorch runs single-threaded here, because with two intra-op threads two runs of the same 8 steps
# already wrote different weights (same losses to 4 digits, different bytes), the likely cause of two earlier builds
# scoring 6.195 and 6.173. Initialisation and data order are seeded (1611); single-threaded, two 8-step runs wrote
# byte-identical weights and a rebuild's first 100 steps logged bit-equal losses (the model's sha256 is in
# docs/BENCHMARKS.md). Pin it to one core if the machine is shared (`taskset -c 1 scripts/kjv-model.sh`): the 2,400
# steps took 56 minutes on one shared core of an AMD EPYC (2026-12-05).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export OMP_NUM_THREADS=1
export JAVA_OPTS="${JAVA_OPTS:-} -Dai.djl.pytorch.num_threads=1 -Dai.djl.pytorch.num_interop_threads=1"
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
  cp out/kjv-pretrain/"$f" out/kjv-2.7m/
done
sha256sum out/kjv-2.7m/model.safetensors
