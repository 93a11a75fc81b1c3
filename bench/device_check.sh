#!/usr/bin/env bash
# One lent-GPU session, prepared ahead (device time is short). Sections, in the order named (default: all):
#   cifar   the CIFAR-10 airbench recipe on CUDA, two seeds (needs the CIFAR tarballs in .devdata)
#   determinism  runtime.deterministic gives the same bits twice on CUDA (digits CNN)
#   tests   the test suite with CUDA as the `auto` device (PYTEST_ARGS to pick tests)
#   fsdd    a speaker-held-out screen of FSDD recipe variants on the GPU, several runs at once (needs fsdd)
# Expects, beside the working tree: .whl/ (wheels the GPU image lacks: pydantic, kornia, soundfile, …) and
# .devdata/datasets/ (the parts of ../shared/datasets that fit the 64 MiB transfer).
#   run(command="bash bench/device_check.sh determinism tests", carry=[".whl", ".devdata"])
set -u
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
mkdir -p ../shared && ln -sfn "$PWD/.devdata/datasets" ../shared/datasets
nvidia-smi -L
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

cifar() {
    local start=$(date +%s)
    for seed in 0 1; do
        timeout 200 python3 -m lamina train configs/cifar10_airbench.yaml --quiet --runs-dir /tmp/runs --name "gpu-$seed" \
            --set seed=$seed --set runtime.device=cuda --set runtime.threads=8 2>&1 | tee "$OUT/cifar_$seed.log"
        cp /tmp/runs/*gpu-$seed/summary.json "$OUT/cifar_summary_$seed.json" 2>/dev/null
    done
    echo "cifar total incl. decoding: $(( $(date +%s) - start )) s"
}

determinism() {
    for attempt in a b; do
        timeout 60 python3 -m lamina train configs/digits_cnn.yaml --quiet --runs-dir /tmp/det --name "det-$attempt" \
            --set runtime.device=cuda --set runtime.deterministic=true >/dev/null 2>&1
    done
    python3 - <<'PY'
import glob, json
runs = sorted(glob.glob("/tmp/det/*det-*"))
epochs = [[line for line in open(f"{run}/metrics.jsonl") if '"epoch"' in line.split(",")[0]] for run in runs]
strip = lambda lines: [{k: v for k, v in json.loads(l).items() if k not in ("seconds", "samples_per_second")} for l in lines]
print("deterministic cuda runs:", len(runs), "identical metrics:", len(runs) == 2 and strip(epochs[0]) == strip(epochs[1]))
PY
}

tests() {  # PYTEST_ARGS: e.g. "-k audio" (default: the whole suite on 8 workers)
    timeout 300 python3 -m pytest -q -p no:cacheprovider ${PYTEST_ARGS:--n 8} 2>&1 | tee "$OUT/tests.log" | tail -40
}

fsdd() {  # FSDD_VARIANTS: ';'-separated lists of --set arguments; each variant runs as two jobs of three speakers
    local deadline=${FSDD_SECONDS:-200} variants variant speakers
    IFS=';' read -ra variants <<< "${FSDD_VARIANTS:-}"
    [ ${#variants[@]} -eq 0 ] && variants=("")
    for variant in "${variants[@]}"; do
        for speakers in "george jackson lucas" "nicolas theo yweweler"; do
            timeout "$deadline" python3 bench/fsdd_speakers.py --speakers $speakers $variant 2>&1 \
                | sed -u "s|^|[${variant:-baseline}] |" >> "$OUT/fsdd_screen.log" &
        done
    done
    wait
    cat "$OUT/fsdd_screen.log"
}

for section in "${@:-cifar determinism tests fsdd}"; do
    for name in $section; do "$name"; done
done
