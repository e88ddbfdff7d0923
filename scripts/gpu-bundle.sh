#!/usr/bin/env bash
# Prepares qlora4j for an air-gapped CUDA node that has Python torch but no Java (see README.md,
# "Running on a CUDA GPU"): the runtime jars without the 111 MB CPU native jar, a jlink'd Java
# runtime packed as jre.tar.xz, and run.sh, which points DJL at the node's torch libraries.
#   scripts/gpu-bundle.sh [OUT_DIR]      (default: gpu-bundle/, ignored by git)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/gpu-bundle}"
"$root/mvnw" -q -B -DskipTests -f "$root/pom.xml" -pl trainer -am package
rm -rf "$out" && mkdir -p "$out/lib"
cp "$root"/trainer/target/qlora4j-trainer-*.jar "$out/lib/"
tr ':' '\n' < "$root/trainer/target/classpath.txt" | grep -v 'pytorch-native-cpu' | while read -r jar; do
  cp "$jar" "$out/lib/"
done
jlink --add-modules java.base,java.logging,java.management,jdk.unsupported,java.xml,java.desktop \
  --strip-debug --no-man-pages --no-header-files --compress=2 --output "$out/jre"
tar -C "$out" -cJf "$out/jre.tar.xz" jre && rm -rf "$out/jre"
cat > "$out/run.sh" <<'RUN'
#!/usr/bin/env bash
# qlora4j on a CUDA node: uses the node's Python torch libraries (CUDA libtorch) through DJL.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -x "$here/jre/bin/java" ] || tar -C "$here" -xJf "$here/jre.tar.xz"
torch_dir="$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')"
site="$(dirname "$torch_dir")"
export PYTORCH_LIBRARY_PATH="$torch_dir/lib" PYTORCH_FLAVOR="${PYTORCH_FLAVOR:-cu128}"
export PYTORCH_VERSION="${PYTORCH_VERSION:-2.7.1}" DJL_OFFLINE=true
export LD_LIBRARY_PATH="$site/nvidia/cuda_runtime/lib:${LD_LIBRARY_PATH:-}"
exec "$here/jre/bin/java" ${JAVA_OPTS:-} -Dai.djl.offline=true -cp "$here/lib/*" io.qlora4j.trainer.cli.Main "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out" "$out/jre.tar.xz" "$out/lib"
