#!/usr/bin/env bash
# The one short GPU check (issue 15, section 4): a few minutes on one NVIDIA GPU.
#
#   pip install -e ".[cuda12,dev]" && bash experiments/gpu_check.sh [OUT_DIR]
#
# 1. The ladder's 160m size (Pythia-160M: 12 layers, width 768, 12 heads, GPT-3 Small's
#    shape; 162M parameters with the 50,304-token vocabulary), bf16 compute, context 2048,
#    synthetic tokens: tokens/s and MFU against the GPU's bf16 peak (research/hardware.py),
#    with fused attention (jax.nn.dot_product_attention: cuDNN) and with the explicit path.
# 2. 16 `tiny` runs as one vmapped ensemble against 16 sequential runs
#    (experiments/benchmark.py --cases ensemble): on a 2-core CPU the ensemble only saves
#    the per-run fixed cost (x1.61); on a GPU the tiny step is dispatch-bound.
# Prints one line per measurement; put them in the README (Accelerators) with the device name.
set -euo pipefail
OUT="${1:-runs/gpu_check}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for ATTN in fused explicit; do
  DIR="$OUT/160m_$ATTN"
  rm -rf "$DIR"
  # 60 steps of 16 x 2048 tokens; MFU is read from perf.jsonl, whose rates exclude the
  # first (compiling) call. Remat dots, as the script was sized for: the preset's
  # v5p:4x4x4 layout (remat none, 8 sequences a microbatch) would need ~105 GB per chip
  # for 16 at once.
  python -m research.main --config=configs/lm_ladder.py:160m --workdir="$DIR" \
    --config.model.attention="$ATTN" --config.mesh.data=-1 --config.mesh.fsdp=1 \
    --config.model.remat=dots \
    --config.train.batch_size=16 --config.train.grad_accum_steps=1 \
    --config.train.num_steps=60 --config.train.steps_per_call=10 --config.train.log_every=20 \
    --config.train.eval_every=0 --config.train.checkpoint_every=0 --config.optim.warmup_steps=10 \
    --config.probe.eval_sequences=8 --config.probe.generate_tokens=4 2>"$DIR.log" \
    || { tail -5 "$DIR.log"; exit 1; }
  python - "$DIR" "$ATTN" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(f"{sys.argv[1]}/perf.jsonl") if l.strip()]
last = rows[-1]
print(f"160m bf16 attention={sys.argv[2]}: {last['tokens_per_s']:,.0f} tokens/s, "
      f"MFU {100 * last.get('mfu', float('nan')):.1f}% (steps {rows[0]['step']}-{last['step']})")
EOF
done
python -m experiments.benchmark --cases ensemble
