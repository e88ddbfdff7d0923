#!/usr/bin/env bash
# The long, randomized version of CrashAnywhereTest (docs/RELIABILITY.md): trains a short QLoRA job on the demo
# model once without interruption, then ROUNDS times from scratch while killing it with SIGKILL at random instants
# (start-up, steps, checkpoint saves, pruning, the final write, resumed runs alike), resuming after every kill, and
# checks that every round ends with the adapter and the last checkpoint's optimizer state byte for byte those of the
# uninterrupted run, and that no checkpoint on disk is ever incomplete. A second run started on the same output_dir
# while one runs must be refused. Exit 0 when all rounds pass.
#   scripts/crash-test.sh [ROUNDS] [SEED] [WORK_DIR]     (defaults: 5, 1, a fresh temp directory)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-5}"
RANDOM="${2:-1}"
work="${3:-$(mktemp -d -t qlora4j-crash-XXXXXX)}"
mkdir -p "$work"
export JAVA_OPTS="${JAVA_OPTS:--Dai.djl.pytorch.num_threads=1}"
job=(train "model_name_or_path=$root/examples/demo-base" "dataset_dir=$root/examples/data" dataset=demo_train
  max_samples=64 cutoff_len=64 quantization_bit=4 lora_rank=8 lora_dropout=0.1 optim=paged_adamw_8bit
  per_device_train_batch_size=4 gradient_accumulation_steps=2 learning_rate=3e-3 lr_scheduler_type=cosine
  warmup_steps=2 max_steps=12 save_steps=3 save_total_limit=2 logging_steps=1 seed=11)

"$root/qlora4j" "${job[@]}" "output_dir=$work/straight" overwrite_output_dir=true > "$work/straight.log"
start=$(date +%s%N)
"$root/qlora4j" "${job[@]}" "output_dir=$work/timing" overwrite_output_dir=true > /dev/null
span_ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "uninterrupted run: ${span_ms} ms; killing at random instants up to that"

complete_checkpoints() { # every checkpoint-N directory holds every file of a checkpoint
  local d
  for d in "$1"/checkpoint-*; do
    [ -d "$d" ] || continue
    for f in adapter_config.json adapter_model.safetensors optimizer.safetensors trainer_state.json training_args.yaml; do
      [ -f "$d/$f" ] || { echo "FAIL: $d lacks $f"; return 1; }
    done
  done
}

for round in $(seq 1 "$rounds"); do
  out="$work/round-$round"
  rm -rf "$out"
  kills=0
  while :; do
    if compgen -G "$out/checkpoint-*" > /dev/null; then more=(resume_from_checkpoint=true); else more=(overwrite_output_dir=true); fi
    "$root/qlora4j" "${job[@]}" "output_dir=$out" "${more[@]}" > "$out.log" 2>&1 &
    pid=$!
    delay_ms=$(( RANDOM % (span_ms + 1) ))
    if [ $(( RANDOM % 4 )) -eq 0 ]; then # now and then, a second run on the directory the first one holds
      for _ in $(seq 100); do grep -qs "^$pid on " "$out/.qlora4j.lock" && break; sleep 0.05; done
      if grep -qs "^$pid on " "$out/.qlora4j.lock"; then
        if "$root/qlora4j" "${job[@]}" "output_dir=$out" resume_from_checkpoint=true > "$out.second.log" 2>&1; then
          state="$(ps -o stat= -p "$pid" || true)"
          [ -z "$state" ] || [[ "$state" == Z* ]] || { echo "FAIL: round $round: two runs on $out at once"; exit 1; }
        else
          grep -q "is in use by another run (pid $pid on " "$out.second.log" \
            || { echo "FAIL: round $round: unexpected refusal: $(cat "$out.second.log")"; exit 1; }
        fi
      fi
    fi
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    if kill -9 "$pid" 2> /dev/null; then
      wait "$pid" 2> /dev/null || true
      kills=$((kills + 1))
      complete_checkpoints "$out"
      continue
    fi
    if ! wait "$pid"; then echo "FAIL: round $round: a run failed: $(cat "$out.log")"; exit 1; fi
    break
  done
  complete_checkpoints "$out"
  cmp "$work/straight/adapter_model.safetensors" "$out/adapter_model.safetensors"
  cmp "$work/straight/adapter_config.json" "$out/adapter_config.json"
  cmp "$work/straight/checkpoint-12/optimizer.safetensors" "$out/checkpoint-12/optimizer.safetensors"
  echo "round $round: $kills kills, adapter byte-identical"
done
echo "all $rounds rounds passed ($work)"
