#!/usr/bin/env bash
# The GPU rows of issue 12: the file and streaming benchmarks with CTranslate2 on CUDA, on a lent
# GPU machine that has no package registry. Everything it needs travels as a tar (wheels for
# Python 3.12, the assembled whisper-base folder with model.bin gzipped, shared/audio) split into
# parts small enough for one transfer each; earlier calls leave parts in /root/stash.
#
# Why the cuBLAS link: the PyPI ctranslate2 wheel dlopens libcublas.so.12 (CUDA 12) and the
# machine has CUDA 13 only; the five cuBLAS calls CTranslate2 makes (Create, Destroy, SetStream,
# GemmEx, GemmStridedBatchedEx/Sgemm) keep their signatures in cuBLAS 13, so a libcublas.so.12
# name for the CUDA 13 library lets it load. The smoke test below checks the output is right.
#
#   bash benchmarks/gpu_run.sh  PART...    (OUT=folder for logs; default /tmp/gpu-out)
set -u
OUT=${OUT:-/tmp/gpu-out}
mkdir -p "$OUT" /tmp/site /tmp/cushim /tmp/cache/whisper-base
cat "$@" | tar -x -C /tmp || { echo "payload incomplete"; exit 3; }
P=/tmp/payload
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$P"/wheels/*.whl 2>&1 | tail -3
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 - <<'EOF'
import gzip, shutil
with gzip.open("/tmp/payload/model/model.bin.gz") as src, \
        open("/tmp/cache/whisper-base/model.bin", "wb") as dst:
    shutil.copyfileobj(src, dst, 1 << 22)
EOF
cp "$P"/model/config.json "$P"/model/tokenizer.json "$P"/model/vocabulary.json \
  "$P"/model/.verified /tmp/cache/whisper-base/
CUBLAS=$(python3 -c "import glob, nvidia; print(next(iter(sorted(p for d in nvidia.__path__ \
for p in glob.glob(d + '/**/libcublas.so.13*', recursive=True))), ''))")
[ -z "$CUBLAS" ] && CUBLAS=$(ls /usr/local/cuda*/lib*/libcublas.so.13* 2>/dev/null | head -1)
echo "cuBLAS 13: $CUBLAS"
ln -sf "$CUBLAS" /tmp/cushim/libcublas.so.12
export LD_LIBRARY_PATH=/tmp/cushim:$(dirname "$CUBLAS"):${LD_LIBRARY_PATH:-}
export VOXSCOPE_CACHE_DIR=/tmp/cache VOXSCOPE_TEST_AUDIO=$P/audio
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 - <<'EOF' 2>&1 | tee "$OUT/smoke.log"
import time
import ctranslate2
from faster_whisper import WhisperModel
print("ctranslate2", ctranslate2.__version__, "cuda devices", ctranslate2.get_cuda_device_count(),
      sorted(ctranslate2.get_supported_compute_types("cuda")))
m = WhisperModel("/tmp/cache/whisper-base", device="cuda", compute_type="float16")
for i in range(2):
    t = time.monotonic()
    segs, info = m.transcribe("/tmp/payload/audio/en_jfk_inaugural.flac", beam_size=5)
    text = " ".join(s.text.strip() for s in segs)
    print(f"smoke {i}: {time.monotonic() - t:.2f} s for {info.duration:.1f} s: {text}")
EOF
grep -q "smoke 1:" "$OUT/smoke.log" || { echo "CUDA smoke test failed"; exit 4; }
timeout "${FILES_S:-170}" python3 benchmarks/bench_file_throughput.py --device cuda \
  --minutes 5 --langs en zh --threads 4 --max-batch "${MAX_BATCH:-16}" 2>&1 | tee "$OUT/files.log"
# Every 5 s: the server's CPU ticks (utime+stime, 100 per core-second) and the GPU's utilization,
# to say what limits the streams.
( while sleep 5; do pid=$(pgrep -n -f "voxscope.cli serve")
    t=$([ -n "$pid" ] && awk '{print $14+$15}' "/proc/$pid/stat")
    echo "$(date +%s) pid=${pid:-none} ticks=${t:-0} gpu=$(nvidia-smi \
      --query-gpu=utilization.gpu --format=csv,noheader,nounits)"; done ) > "$OUT/util.log" 2>&1 &
SAMPLER=$!
timeout "${STREAMS_S:-270}" python3 benchmarks/bench_streaming.py --device cuda \
  --streams ${STREAMS:-8 24 48} --sessions 5 --set max_batch="${MAX_BATCH:-16}" \
  --json "$OUT/streaming.json" 2>&1 | tee "$OUT/streaming.log"
# Optional second streaming run with other thread-pool settings. On a GPU the server now caps
# numpy's BLAS pool at 1 and CTranslate2's at 2 threads (engine/threads.py; session 10 found ~90 %
# of the server's CPU was idle pools spinning); SET_B="blas_threads=0 cpu_threads=16" brings back
# the old uncapped pools for a same-run pair, one knob at a time to say which pool spins.
#   STREAMS_B="36 48" SET_B="blas_threads=0" bash benchmarks/gpu_run.sh PART...
if [ -n "${STREAMS_B:-}" ]; then
  timeout "${STREAMS_B_S:-200}" python3 benchmarks/bench_streaming.py --device cuda \
    --streams $STREAMS_B --sessions 0 --set max_batch="${MAX_BATCH:-16}" \
    ${SET_B:-blas_threads=0 cpu_threads=16} --json "$OUT/streaming_b.json" 2>&1 \
    | tee "$OUT/streaming_b.log"
fi
kill "$SAMPLER" 2>/dev/null
