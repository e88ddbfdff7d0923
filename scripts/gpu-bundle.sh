#!/usr/bin/env bash
# Prepares qlora4j for an air-gapped CUDA node that has Python torch but no Java (see README.md,
# "Running on a CUDA GPU"): the runtime jars without the 111 MB CPU native jar, a jlink'd Java
# runtime packed as jre.tar.xz, DJL's JNI sources (djl-jni/), and run.sh, which points DJL at the node's torch
# libraries, compiling DJL's JNI against them first when that torch is not 2.7 (needs g++ on the node).
# `run.sh train job.yaml ...` runs the command line; `run.sh cuda-bench [7b|65b|small] [steps]` the GPU
# training benchmark (CudaTrainBenchmark, issue 4); `run.sh inspect configs/guanaco-65b.yaml
# model_name_or_path=llama-65b-config device=cuda` the memory plan of the Guanaco-65B run on the node's GPU.
#   scripts/gpu-bundle.sh [OUT_DIR]      (default: gpu-bundle/, ignored by git)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/gpu-bundle}"
"$root/mvnw" -q -B -DskipTests -f "$root/pom.xml" -pl bench -am package
rm -rf "$out" && mkdir -p "$out/lib"
cp "$root"/bench/target/qlora4j-bench-*.jar "$out/lib/"
# the bench module's classpath holds the command line's; JMH and its helpers are not needed there
tr ':' '\n' < "$root/bench/target/classpath.txt" | grep -v -E 'pytorch-native-cpu|jmh|jopt-simple|commons-math3' | while read -r jar; do
  cp "$jar" "$out/lib/"
done
# the node is linux-x86_64: the other platforms' natives inside DJL's jars (about 13 MB of the tokenizers jar) stay
# behind, so the bundle and a working tree fit a 64 MiB transfer
for jar in "$out"/lib/*.jar; do
  if unzip -Z1 "$jar" | grep -q -E '^(native/lib|jnilib)/(osx|win|linux-aarch64)'; then
    zip -q -d "$jar" 'native/lib/osx-*' 'native/lib/win-*' 'native/lib/linux-aarch64/*' \
      'jnilib/osx-*' 'jnilib/win-*' 'jnilib/linux-aarch64/*'
  fi
done
# org.bytedeco's native glue for the CUDA runtime (pinned optimizer pages, cudaMemGetInfo): only libjnicudart.so
# of the cuda natives jar (the rest binds libraries qlora4j does not call) and javacpp's own; they link against the
# node's libcudart.so.12, which torch ships
javacpp="$(sed -n 's:.*<javacpp.version>\(.*\)</javacpp.version>.*:\1:p' "$root/pom.xml")"
cuda="$(sed -n 's:.*<cuda.version>\(.*\)</cuda.version>.*:\1:p' "$root/pom.xml" | sed "s/\${javacpp.version}/$javacpp/")"
natives="$(mktemp -d)"
for artifact in "org.bytedeco:javacpp:$javacpp:jar:linux-x86_64" "org.bytedeco:cuda:$cuda:jar:linux-x86_64"; do
  "$root/mvnw" -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$natives"
done
cp "$natives/javacpp-$javacpp-linux-x86_64.jar" "$out/lib/"
(cd "$natives" && unzip -q "cuda-$cuda-linux-x86_64.jar" 'org/bytedeco/cuda/linux-x86_64/libjnicudart.so' \
  && jar cf "$out/lib/cuda-$cuda-cudart-linux-x86_64.jar" org/bytedeco/cuda/linux-x86_64/libjnicudart.so)
rm -rf "$natives"
# DJL's JNI sources, to compile the JNI on a node whose torch is not 2.7 (scripts/build-djl-jni.sh, called by run.sh):
# the native folders of DJL's release (from GitHub, or DJL_SOURCES=a tar.gz of the repository at that tag), the JDK's
# JNI headers, and the PyTorchLibrary header javac -h writes from a stub of DJL's native methods (javap lists them)
djl="$(sed -n 's:.*<djl.version>\(.*\)</djl.version>.*:\1:p' "$root/pom.xml")"
src="$(mktemp -d)"
if [ -n "${DJL_SOURCES:-}" ]; then
  tar -C "$src" -xzf "$DJL_SOURCES"
else
  curl -fsSL "https://codeload.github.com/deepjavalibrary/djl/tar.gz/refs/tags/v$djl" | tar -C "$src" -xz
fi
top="$(dirname "$(find "$src" -maxdepth 2 -type d -name engines | head -1)")"
mkdir -p "$out/djl-jni/src" "$out/djl-jni/include" "$src/stub/ai/djl/pytorch/jni"
cp "$top"/engines/pytorch/pytorch-native/src/main/native/* "$out/djl-jni/src/"
cp -r "$top"/api/src/main/native/djl "$out/djl-jni/src/"
java_home="$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")"
cp "$java_home/include/jni.h" "$out/djl-jni/include/" && mkdir -p "$out/djl-jni/include/linux"
cp "$java_home/include/linux/jni_md.h" "$out/djl-jni/include/linux/"
engine="$(tr ':' '\n' < "$root/bench/target/classpath.txt" | grep "pytorch-engine-$djl.jar")"
{ echo "package ai.djl.pytorch.jni;"; echo "final class PyTorchLibrary {"
  javap -cp "$engine" ai.djl.pytorch.jni.PyTorchLibrary | grep ' native ' | sed -e ':a' -e 's/<[^<>]*>//g' -e 'ta' \
    | awk -F'[()]' '{ n = split($2, p, ", "); s = ""; for (i = 1; i <= n; i++) s = s (i > 1 ? ", " : "") p[i] " a" i;
        print $1 "(" s ");" }'
  echo "}"; } > "$src/stub/ai/djl/pytorch/jni/PyTorchLibrary.java"
javac -h "$out/djl-jni/include" -d "$src/classes" "$src/stub/ai/djl/pytorch/jni/PyTorchLibrary.java"
cp "$root/scripts/build-djl-jni.sh" "$out/djl-jni/"
rm -rf "$src"
# the job files, the demo's model and data, LLaMA-65B's config.json (`run.sh inspect configs/guanaco-65b.yaml
# model_name_or_path=llama-65b-config`) and check.sh, the GPU checks in one go
cp -r "$root/configs" "$out/configs"
mkdir -p "$out/examples" && cp -r "$root/examples/demo-base" "$root/examples/data" "$out/examples/"
cp -r "$root/examples/llama-65b-config" "$out/llama-65b-config"
cp "$root/scripts/gpu-check.sh" "$out/check.sh"
jlink --add-modules java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.xml,java.desktop \
  --strip-debug --no-man-pages --no-header-files --compress=2 --output "$out/jre"
tar -C "$out" -cJf "$out/jre.tar.xz" jre && rm -rf "$out/jre"
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# qlora4j on a CUDA node: uses the node's Python torch libraries (CUDA libtorch) through DJL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -x "$here/jre/bin/java" ] || tar -C "$here" -xJf "$here/jre.tar.xz"
read -r torch_dir torch_version torch_cuda < <(python3 -c \
  'import torch, os; print(os.path.dirname(torch.__file__), torch.__version__, torch.version.cuda or "")')
site="$(dirname "$torch_dir")"
release="${torch_version%%+*}"
if [[ "$release" == 2.7.* ]]; then
  # the release DJL's own JNI (the cu128 one in pytorch-jni's jar) was built for
  export PYTORCH_LIBRARY_PATH="$torch_dir/lib" PYTORCH_FLAVOR="${PYTORCH_FLAVOR:-cu128}"
  export PYTORCH_VERSION="${PYTORCH_VERSION:-2.7.1}"
else
  # another release: DJL's JNI compiled against it, once, into a folder of links to its libraries
  lib="$here/djl-jni/torch-$torch_version"
  if [ ! -e "$lib/libdjl_torch.so" ]; then
    echo "torch $torch_version is not DJL's 2.7: compiling DJL's JNI against it (once, under a minute on 16 cores)" >&2
    "$here/djl-jni/build-djl-jni.sh" "$here/djl-jni" "$torch_dir" "$lib" >&2
  fi
  flavor=cpu
  [ -n "$torch_cuda" ] && flavor="cu${torch_cuda//./}"
  export PYTORCH_LIBRARY_PATH="$lib" PYTORCH_FLAVOR="$flavor" PYTORCH_VERSION="$release"
fi
export DJL_OFFLINE=true
# float32 matmuls in TF32 (DJL 0.36 has no switch for it; libtorch reads this variable)
export TORCH_ALLOW_TF32_CUBLAS_OVERRIDE="${TORCH_ALLOW_TF32_CUBLAS_OVERRIDE:-1}"
# DJL finds GPUs through libcudart: torch's cu12 wheels keep it in nvidia/cuda_runtime/lib, its cu13 wheels in nvidia/cu13/lib
for dir in "$site"/nvidia/cuda_runtime/lib "$site"/nvidia/cu13/lib; do
  [ -d "$dir" ] && export LD_LIBRARY_PATH="$dir:${LD_LIBRARY_PATH:-}"
done
main=io.qlora4j.trainer.cli.Main
if [ "${1:-}" = cuda-bench ]; then
  main=io.qlora4j.bench.CudaTrainBenchmark
  shift
fi
exec "$here/jre/bin/java" ${JAVA_OPTS:-} -Dai.djl.offline=true -cp "$here/lib/*" "$main" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out" "$out/jre.tar.xz" "$out/lib"
