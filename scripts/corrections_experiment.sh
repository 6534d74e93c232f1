#!/usr/bin/env bash
# The measured gain of correction rounds (docs/CORRECTIONS.md): hours of CPU at full size.
#
# A deliberately weak policy (the small-sim-reach recipe's action expert on the grounded VLM of
# `make demo-train`, trained on 100 plain demos), then ROUNDS rounds of BUDGET new episodes per
# round spent three ways, each arm continuing from its own previous policy:
#   plain      BUDGET more scripted-expert demos from rest
#   dagger     a correction round of its current policy (`edgevla sim rollout`), trained with the
#              corrected frames weighted (corrections.intervention_weight)
#   advantage  the same, trained with corrections.advantage (RECAP-style, runs asking "positive")
#   hg-dagger  a correction round like dagger, trained on the person's frames alone
#              (corrections.policy_weight=0, as HG-DAgger); not in the default ARMS
# After each round: success over 50 held-out scenes (`edgevla eval`, seeds 100000..) and, for the
# correction arms, interventions per attempt of that round. Results: $OUT/results.jsonl.
#
#   make corrections-experiment            (or: bash scripts/corrections_experiment.sh)
#   OUT=runs/corr BUDGET=50 ROUNDS=3 STEPS=3000 bash scripts/corrections_experiment.sh
# WEAK=RUN starts every arm from an existing run (RUN/policy + RUN/onnx-int8) instead of training one
# on 100 demos, e.g. the demo policy on a task it never saw: TASK=reach_either WEAK=runs/small-reach.
# PROBE=N ends with a correction round of N episodes (recorded, not trained on) of each correction
# arm's last policy: how often the person still had to take over.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=${OUT:-runs/corrections-experiment}
VLM=${VLM:-runs/small-vlm}            # from `make demo-train` (its first command), or any checkpoint: its VLM
BUDGET=${BUDGET:-50}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-3000}                  # steps per training round
WEIGHT=${WEIGHT:-3}                   # corrections.intervention_weight
EVAL=${EVAL:-50}
EVAL_FLAGS=${EVAL_FLAGS:-}            # extra `edgevla eval` flags, e.g. "--sync 10" (clockless: faster, no latency)
TASK=${TASK:-reach}
WEAK=${WEAK:-}
PROBE=${PROBE:-0}
ARMS=${ARMS:-plain dagger advantage}
RECIPE=recipes/small-sim-reach.yaml
mkdir -p "$OUT"
[ -n "$WEAK" ] || [ -d "$VLM" ] || { echo "no grounded VLM at $VLM: run the first command of make demo-train" >&2; exit 2; }

artifact() {  # $1 run dir -> its int8 artifact
  "$BIN/edgevla" export onnx --policy "$1/policy" --out "$1/onnx-fp32"
  "$BIN/edgevla" quantize --policy "$1/onnx-fp32" --method int8-dynamic --out "$1/onnx-int8"
}
evaluate() {  # $1 arm, $2 round, $3 artifact, $4 interventions per attempt (or null)
  # shellcheck disable=SC2086  # EVAL_FLAGS is words on purpose
  "$BIN/edgevla" eval --policy "$3" --task "$TASK" --episodes "$EVAL" $EVAL_FLAGS --json --episodes-out "$OUT/$1-r$2-eval.jsonl" \
    > "$OUT/$1-r$2-eval.json"
  python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(json.dumps({'arm': sys.argv[2], 'round': int(sys.argv[3]), 'success_rate': s['success_rate'], 'interventions_per_attempt': json.loads(sys.argv[4])}))" \
    "$OUT/$1-r$2-eval.json" "$1" "$2" "$4" >> "$OUT/results.jsonl"
}
train() {  # $1 base, $2 out, then datasets and --set options
  local base=$1 out=$2; shift 2
  "$BIN/edgevla" train --recipe "$RECIPE" --set base="$base" --set steps="$STEPS" --set optim.decay_steps="$STEPS" \
    --set optim.warmup_steps=100 --set eval.episodes=0 "$@" --out "$out"
}

per_attempt() {  # $1 correction round dataset -> interventions per attempt
  "$BIN/edgevla" dataset info "$1" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['corrections']['interventions_per_attempt'])"
}

declare -A sets policy
if [ -n "$WEAK" ]; then  # every arm starts from this run, and trains on its new episodes only
  weak=$WEAK
  for arm in $ARMS; do sets[$arm]=""; done
else  # the weak start: 100 plain demos (DEMOS0=an existing plain-demo dataset skips recording them)
  DEMOS0=${DEMOS0:-$OUT/demos-0}
  [ -d "$DEMOS0" ] || "$BIN/edgevla" sim demos --task "$TASK" --episodes 100 --seed 0 --episode-seconds 4 --dataset "$DEMOS0"
  # only the VLM of the base: the expert starts fresh, whether VLM is `sim pretrain`'s output or a
  # trained policy (e.g. the demo policy recovered by scripts/recover_checkpoint.py)
  [ -d "$OUT/weak/onnx-int8" ] || { train "$VLM" "$OUT/weak" --dataset "$DEMOS0" --set base_parts=vlm; artifact "$OUT/weak"; }
  weak=$OUT/weak
  for arm in $ARMS; do sets[$arm]="--dataset $DEMOS0"; done
fi
grep -q '"arm": "weak"' "$OUT/results.jsonl" 2>/dev/null || evaluate weak 0 "$weak/onnx-int8" null

# rounds outside, arms inside: an interrupted run still compares the arms at the rounds it finished
for arm in $ARMS; do policy[$arm]=$weak; done
for round in $(seq 1 "$ROUNDS"); do
  for arm in $ARMS; do
    data="$OUT/$arm-r$round-data"
    if [ "$arm" = plain ]; then
      [ -d "$data" ] || "$BIN/edgevla" sim demos --task "$TASK" --episodes "$BUDGET" --seed $((20000 + round * 1000)) \
        --episode-seconds 4 --dataset "$data"
      extra=(); per=null
    else
      # round 1 rolls out the same weak policy on the same seeds for every correction arm: one
      # correction round, copied, so that the arms differ in how they train on it alone
      [ "$round" = 1 ] && [ -n "${first_round:-}" ] && [ ! -d "$data" ] && cp -a "$first_round" "$data"
      [ -d "$data" ] || "$BIN/edgevla" sim rollout --task "$TASK" --policy "${policy[$arm]}/onnx-int8" --episodes "$BUDGET" \
        --seed $((200000 + round * 1000)) --episode-seconds 8 --dataset "$data"
      [ "$round" = 1 ] && first_round=${first_round:-$data}
      per=$(per_attempt "$data")
      extra=(--set corrections.intervention_weight="$WEIGHT")
      [ "$arm" = advantage ] && extra+=(--set corrections.advantage=true)
      [ "$arm" = hg-dagger ] && extra+=(--set corrections.policy_weight=0)
    fi
    sets[$arm]="${sets[$arm]} --dataset $data"
    # shellcheck disable=SC2086  # the dataset list is words on purpose
    [ -d "$OUT/$arm-r$round/onnx-int8" ] || { train "${policy[$arm]}/policy" "$OUT/$arm-r$round" ${sets[$arm]} "${extra[@]}"; artifact "$OUT/$arm-r$round"; }
    evaluate "$arm" "$round" "$OUT/$arm-r$round/onnx-int8" "$per"
    policy[$arm]="$OUT/$arm-r$round"
  done
done
if [ "$PROBE" -gt 0 ]; then  # how often the person still takes over from each correction arm's last policy
  for arm in $ARMS; do
    [ "$arm" = plain ] && continue
    probe="$OUT/$arm-probe-data"
    [ -d "$probe" ] || "$BIN/edgevla" sim rollout --task "$TASK" --policy "${policy[$arm]}/onnx-int8" --episodes "$PROBE" \
      --seed 300000 --episode-seconds 8 --dataset "$probe"
    echo "{\"arm\": \"$arm\", \"probe\": true, \"interventions_per_attempt\": $(per_attempt "$probe")}" >> "$OUT/results.jsonl"
  done
fi
cat "$OUT/results.jsonl"
