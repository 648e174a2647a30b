#!/usr/bin/env bash
# The headline experiment behind model_cards/README.md: every command that produced a 1-bit or peer number there,
# from the bundled float baseline (model_cards/float; its card has the commands that trained it). Each step is
# skipped when its output exists, and QAT resumes from its checkpoints after an interruption.
#
#   bash recipes/headline.sh                   # corpora in ./corpus and ./corpus30k, runs in ./runs, results in ./results
#   CORPUS30K=/data/corpus30k RUNS=/data/runs bash recipes/headline.sh
#
# On 2 CPU cores: corpora about 35 min, QAT about 1.5 h on one core, evaluations 10 min.
set -euo pipefail
CORPUS=${CORPUS:-corpus}
CORPUS30K=${CORPUS30K:-corpus30k}
INDEPENDENT=${INDEPENDENT:-independent}
FLOAT=${FLOAT:-model_cards/float}
RUNS=${RUNS:-runs}
RESULTS=${RESULTS:-results}
QAT_STEPS=${QAT_STEPS:-2400}

# The scored splits are corpus's; corpus30k (the same plan, 4x longer) is what the float model finished training on.
[ -d "$CORPUS" ] || hf-binarize make-dataset --out "$CORPUS" --utterances 7552 --seed 0
[ -d "$CORPUS30K" ] || hf-binarize make-dataset --out "$CORPUS30K" --utterances 30000 --seed 0
[ -d "$INDEPENDENT" ] || python scripts/make_independent_eval.py --out "$INDEPENDENT" --corpus "$CORPUS" --count 150

resuming() { [ -d "$1-checkpoints" ] && echo --resume || true; }  # resuming OUTPUT_DIR: --resume where it has checkpoints

# QAT from the float baseline: learned scales, 100-step binarization warm-up, int8 joint head and embedding,
# auxiliary CTC 0.3, distillation from the float model, batch 16.
[ -d "$RUNS/binary-int8" ] || python recipes/qat.py --model "$FLOAT" --data "$CORPUS30K" \
    --output-dir "$RUNS/binary-int8" --int8 joint decoder.embedding --learnable-scales --warmup-steps 100 \
    --ctc-weight 0.3 --distill-weight 1 --max-steps "$QAT_STEPS" --eval-steps 600 --eval-limit 100 \
    --save-steps 300 --sample-steps 0 $(resuming "$RUNS/binary-int8")

# A 16x point chosen by the sensitivity analysis (on validation): the groups its suggestion keeps in int8 (or
# float), the same QAT for 600 steps.
[ -f "$RUNS/sensitivity-16x.json" ] || hf-binarize sensitivity --model "$FLOAT" --dataset "$CORPUS" \
    --split validation --limit 150 --threads 1 --target-ratio 16 --json "$RUNS/sensitivity-16x.json"
suggested() {  # suggested METHOD: the groups the 16x suggestion sets to METHOD
    python -c 'import json, sys
overrides = json.load(open(sys.argv[1]))["suggestion"]["config"]["module_overrides"]
print(" ".join(group for group, method in overrides.items() if method == sys.argv[2]))' "$RUNS/sensitivity-16x.json" "$1"
}
MIX_INT8=$(suggested int8)
MIX_FLOAT=$(suggested float)
[ -d "$RUNS/binary-mixed-16x" ] || python recipes/qat.py --model "$FLOAT" --data "$CORPUS30K" \
    --output-dir "$RUNS/binary-mixed-16x" --int8 $MIX_INT8 ${MIX_FLOAT:+--float $MIX_FLOAT} --learnable-scales \
    --warmup-steps 100 --ctc-weight 0.3 --distill-weight 1 --max-steps 600 --eval-steps 300 --eval-limit 100 \
    --save-steps 300 --sample-steps 0 $(resuming "$RUNS/binary-mixed-16x")

# Ablation: 600-step runs, the full recipe and each without one ingredient, scored into $RESULTS/ablation.
ablation() {  # ablation NAME OPTIONS...
    local name=$1; shift
    [ -d "$RUNS/$name" ] || python recipes/qat.py --model "$FLOAT" --data "$CORPUS30K" --output-dir "$RUNS/$name" \
        --int8 joint decoder.embedding --warmup-steps 100 --ctc-weight 0.3 --max-steps 600 --eval-steps 300 \
        --eval-limit 100 --save-steps 300 --sample-steps 0 $(resuming "$RUNS/$name") "$@"
    for split in test test_unseen; do
        [ -f "$RESULTS/ablation/$name-$split.json" ] || hf-binarize evaluate --model "$RUNS/$name" \
            --dataset "$CORPUS" --split "$split" --threads 1 --variant "$name" --json "$RESULTS/ablation/$name-$split.json"
    done
}
mkdir -p "$RESULTS/ablation"
ablation ablation-full --learnable-scales --distill-weight 1
ablation ablation-no-distill --learnable-scales
ablation ablation-fixed-scales --distill-weight 1

# Without training: our sign binarization (the same int8 layers), and our int8 weights everywhere.
[ -d "$RUNS/sign-no-training" ] || hf-binarize quantize --model "$FLOAT" --output-dir "$RUNS/sign-no-training" \
    --int8 joint decoder.embedding
[ -d "$RUNS/int8" ] || hf-binarize quantize --model "$FLOAT" --output-dir "$RUNS/int8" \
    --int8 encoder encoder_projector decoder joint

folder() { [ "$1" = float ] && echo "$FLOAT" || echo "$RUNS/$1"; }
score() {  # score VARIANT DATASET SPLIT NAME: greedy decoding, one thread, into $RESULTS/VARIANT-NAME.json
    [ -f "$RESULTS/$1-$4.json" ] || hf-binarize evaluate --model "$(folder "$1")" --dataset "$2" --split "$3" \
        --split-name "$4" --threads 1 --variant "$1" --json "$RESULTS/$1-$4.json"
}
for split in test test_unseen; do
    for variant in float binary-int8 binary-mixed-16x sign-no-training int8; do
        score "$variant" "$CORPUS" "$split" "$split"
    done
done
# The independent set (festival reading Python docstrings) has one split, "test"; its results are filed as the
# split "independent", so that the cards keep it apart from the corpus' test split.
for variant in float binary-int8 binary-mixed-16x; do
    score "$variant" "$INDEPENDENT" test independent
done
# The peers a user would pick instead, on the same float model (pip install "hf-binarize[peers]").
[ -f "$RESULTS/torch-dynamic-int8-test_unseen.json" ] || python bench/peers.py --model "$FLOAT" \
    --dataset "$CORPUS" --splits test test_unseen --threads 1 --out "$RESULTS"

# The summary, plots and cards (model_cards/README.md and each variant's README.md are copies of these; the float
# model's own card is written with its training history, see its README).
hf-binarize card --results "$RESULTS"/*.json --out-dir "$RESULTS/cards" --baseline float \
    --how-made model_cards/how_made.md --license apache-2.0 --language en \
    --dataset-name "hf-binarize synthetic corpus (seed 0) and independent festival set" \
    --no-card hqq-1bit-g64 quanto-int4 quanto-int8 torch-dynamic-int8
