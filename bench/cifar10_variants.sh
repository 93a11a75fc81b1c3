#!/usr/bin/env bash
# CIFAR-10 recipes side by side: each variant trains configs/cifar10_resnet9.yaml with its overrides and prints
# one line (test accuracy, training wall time, first epoch whose val accuracy reached 90 %).
#   bench/cifar10_variants.sh RUNS_DIR [SECONDS_BUDGET] [extra --set ...]   (data paths via extra --set)
set -u
runs=${1:?runs dir}; budget=${2:-100000}; shift 2 || shift $#
python=${PYTHON:-python3}
start=$(date +%s)
T="--set model.stem=whitened --set model.activation=celu --set model.norm_group_size=32 --set model.train_norm_scales=false --set model.pool_before_norm=true --set train.optimizer.bias_learning_rate_factor=64"
declare -a variants=(
  "base12|--set train.epochs=12"
  "tricks10|$T --set train.epochs=10 --set train.schedule.warmup_steps=192"
  "tricks10_lr1|$T --set train.epochs=10 --set train.schedule.warmup_steps=192 --set train.optimizer.learning_rate=1.0"
  "ghost10|--set model.norm_group_size=32 --set train.epochs=10"
  "tricks8|$T --set train.epochs=8 --set train.schedule.warmup_steps=192"
  "tricks10_nowhite|$T --set model.stem=small --set train.epochs=10 --set train.schedule.warmup_steps=192"
  "base18|--set train.epochs=18 --set train.schedule.warmup_steps=360"
  "tricks12|$T --set train.epochs=12 --set train.schedule.warmup_steps=192"
  "tricks10_lr06|$T --set train.epochs=10 --set train.schedule.warmup_steps=192 --set train.optimizer.learning_rate=0.6"
  "tricks10_relu|$T --set model.activation=relu --set train.epochs=10 --set train.schedule.warmup_steps=192"
  "tricks10_g64|$T --set model.norm_group_size=64 --set train.epochs=10 --set train.schedule.warmup_steps=192"
  "tricks10_bias16|$T --set train.optimizer.bias_learning_rate_factor=16 --set train.epochs=10 --set train.schedule.warmup_steps=192"
  "tricks9|$T --set train.epochs=9 --set train.schedule.warmup_steps=192"
  "tricks11|$T --set train.epochs=11 --set train.schedule.warmup_steps=192"
)
for entry in "${variants[@]}"; do
  name=${entry%%|*}; sets=${entry#*|}
  if (( $(date +%s) - start > budget )); then echo "SKIP $name (budget)"; continue; fi
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  $python -m lamina train configs/cifar10_resnet9.yaml $sets "$@" --runs-dir "$runs" --name "$name" --progress plain \
    > "$runs/$name.log" 2>&1 || { echo "FAIL $name"; tail -5 "$runs/$name.log"; continue; }
  t1=$(date +%s.%N)
  $python - "$runs" "$name" "$t0" "$t1" <<'PY'
import json, sys, pathlib
runs, name, t0, t1 = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
folder = sorted(path for path in pathlib.Path(runs).glob(f"*-{name}") if path.is_dir())[-1]
summary = json.loads((folder / "summary.json").read_text())
rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
epochs = [row for row in rows if row.get("kind") == "epoch"]
first = next((row["epoch"] for row in epochs if row["val.accuracy"] >= 0.90), None)
vals = " ".join(f"{row['val.accuracy']:.3f}" for row in epochs)
print(f"{name:18s} test {summary['metrics']['test']['accuracy']:.4f}  train {summary['wall_seconds']:.1f}s  "
      f"command {t1 - t0:.1f}s  first val>=0.90 at epoch {first}  val: {vals}", flush=True)
PY
done
