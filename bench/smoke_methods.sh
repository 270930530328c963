#!/bin/bash
# Every method's job on this machine's device (CUDA when torch sees a GPU, else the CPU): the default GRPO
# run in full, then each other recipe for a few steps on 32 problems. It prints one line per job
# (`== <job> rc=<exit> <seconds>s`) and the tail of its log, and is how a GPU machine is checked (docs/scale-out.md).
#   bash bench/smoke_methods.sh             (the harness on PATH, else H="python3 -m rzoo.harness.cli")
# A first run builds the testbed models into $RZOO_CACHE (minutes); runs go to $RZOO_RUNS.
H=${H:-harness}
S=${SUMMARY:-/dev/stdout}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
job() {
  local name=$1 t=$2 s; shift 2; s=$(date +%s)
  timeout "$t" $H "$@" > "${TMPDIR:-/tmp}/smoke-$name.log" 2>&1
  echo "== $name rc=$? $(( $(date +%s) - s ))s" >> "$S"
  grep -v "it/s\]\|s/it\]" "${TMPDIR:-/tmp}/smoke-$name.log" | grep -v "^\s*$" | tail -"${TAILN:-12}" >> "$S"
}
job grpo "${GRPO_T:-1200}" train+eval method=grpo
job eval_sampled 300 eval model=testbed:early_stop task=runsum eval.k=4 eval.temperature=0.6 eval.limit=32 eval.budgets=[4,16]
job deepscaler 600 train+eval method=deepscaler stage_steps=[1,1,1] steps=3 eval.limit=32
job kimi 900 train+eval method=kimi steps=2 eval.limit=32
job cot_valve 600 train+eval method=cot_valve max_steps=3 eval.limit=32
job l2s_dpo 600 train+eval method=long2short variant=dpo sample_problems=32 train_steps=2 eval.limit=32
job s1 900 train+eval method=s1 max_steps=3 eval.limit=32
job l2s_merge 900 train+eval method=long2short variant=merge eval.limit=32
job latent 900 train+eval method=latent max_steps=3 eval.limit=32
