#!/usr/bin/env bash
# The headline experiment behind model_cards/: every command that produced a number there, in order.
# Each step is skipped when its output exists, so the script resumes after an interruption (training steps
# resume from their checkpoints with --resume when their output folder is missing but checkpoints exist).
#
#   bash recipes/headline.sh                   # corpus in ./corpus, runs in ./runs, results in ./results
#   CORPUS=/data/corpus RUNS=/data/runs bash recipes/headline.sh
#
# On 2 CPU cores: corpus 2 min, float training about 60 min, each QAT run 20-30 min, evaluations 15 min.
set -euo pipefail
CORPUS=${CORPUS:-corpus}
RUNS=${RUNS:-runs}
RESULTS=${RESULTS:-results}
QAT_STEPS=${QAT_STEPS:-500}

resume_flag() { [ -d "$1-checkpoints" ] && echo --resume || true; }

[ -d "$CORPUS" ] || hf-binarize make-dataset --out "$CORPUS" --hours 3 --seed 0

# The float baseline. It was run for 600 steps with --max-steps 3600, then resumed with --max-steps 2400 (the
# cosine schedule is recomputed for the new length on resume); a fresh run of this line takes 2,400 steps.
[ -d "$RUNS/float" ] || python recipes/train_float.py --data "$CORPUS" --output-dir "$RUNS/float" \
    --max-steps 2400 --eval-steps 400 --save-steps 200 --save-total-limit 2 --sample-steps 400 \
    $(resume_flag "$RUNS/float")

qat() {  # qat NAME OPTIONS...: QAT from the float baseline into $RUNS/NAME
    local name=$1; shift
    [ -d "$RUNS/$name" ] || python recipes/qat.py --model "$RUNS/float" --data "$CORPUS" \
        --output-dir "$RUNS/$name" --max-steps "$QAT_STEPS" --eval-steps 250 --eval-limit 200 \
        --learnable-scales --warmup-steps 100 --ctc-weight 0.3 "$@" $(resume_flag "$RUNS/$name")
}
qat binary-int8-distill --int8 joint decoder.embedding --distill-weight 1
qat binary-int8 --int8 joint decoder.embedding
qat binary-centred-g64-distill --int8 joint decoder.embedding --centred --group-size 64 --distill-weight 1

# Without training: our sign binarization, and our int8 weights everywhere.
[ -d "$RUNS/sign-no-training" ] || hf-binarize quantize --model "$RUNS/float" \
    --output-dir "$RUNS/sign-no-training" --int8 joint decoder.embedding
[ -d "$RUNS/int8" ] || hf-binarize quantize --model "$RUNS/float" --output-dir "$RUNS/int8" --int8 encoder encoder_projector decoder joint

for split in test test_unseen; do
    for variant in float binary-int8-distill binary-int8 binary-centred-g64-distill \
            sign-no-training int8; do
        [ -f "$RESULTS/$variant-$split.json" ] || hf-binarize evaluate --model "$RUNS/$variant" \
            --dataset "$CORPUS" --split "$split" --threads 1 --json "$RESULTS/$variant-$split.json"
    done
done
# The peers a user would pick instead, on the same float model (pip install "hf-binarize[peers]").
[ -f "$RESULTS/quanto-int8-test_unseen.json" ] || python bench/peers.py --model "$RUNS/float" \
    --dataset "$CORPUS" --splits test test_unseen --threads 1 --out "$RESULTS"

hf-binarize card --results "$RESULTS"/*.json --out-dir model_cards --baseline float --how-made model_cards/how_made.md \
    --license apache-2.0 \
    --no-card hqq-1bit-g64 quanto-int4 quanto-int8
