#!/usr/bin/env bash
# Compiles DJL's PyTorch JNI (libdjl_torch.so) against a Python torch other than the 2.7 that DJL 0.36 ships its JNI
# for: that JNI loads over a newer torch and sees the GPU, then fails on the first array it creates (measured with
# torch 2.11.0+cu130 on an H100), while the same sources compiled against the torch at hand run. The GPU bundle
# (scripts/gpu-bundle.sh) carries the sources and calls this from run.sh, once per torch release; by hand:
#   scripts/build-djl-jni.sh DJL_JNI_DIR TORCH_DIR OUT_DIR
# DJL_JNI_DIR holds src/ (DJL's engines/pytorch/pytorch-native/src/main/native and api/src/main/native/djl) and
# include/ (the JDK's jni.h and jni_md.h, and the PyTorchLibrary header javac -h writes for DJL's Java side);
# TORCH_DIR is the torch package (python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))').
# OUT_DIR receives links to every library of TORCH_DIR/lib and libdjl_torch.so beside them: point
# PYTORCH_LIBRARY_PATH at it (DJL takes a libdjl_torch.so from that folder before its own). Needs g++ 10 or newer.
set -euo pipefail
jni="$(cd "$1" && pwd)"; torch="$(cd "$2" && pwd)"; out="$3"
command -v g++ > /dev/null || { echo "build-djl-jni.sh: g++ is needed to compile DJL's JNI against torch in $torch" >&2; exit 1; }
site="$(dirname "$torch")"
flags=(-std=c++20 -O2 -fPIC -w -D_GLIBCXX_USE_CXX11_ABI=1 -I"$torch/include" -I"$torch/include/torch/csrc/api/include"
  -I"$jni/include" -I"$jni/include/linux" -I"$jni/src")
libs=(-ltorch -ltorch_cpu -lc10)
if [ -e "$torch/lib/libtorch_cuda.so" ]; then
  # a CUDA torch: DJL's CUDA calls (the caching allocator, streams) need the CUDA headers its wheels or the toolkit hold
  flags+=(-DUSE_CUDA)
  for inc in "$site"/nvidia/*/include /usr/local/cuda/include; do
    [ -d "$inc" ] && flags+=(-I"$inc")
  done
  libs+=(-ltorch_cuda -lc10_cuda)
fi
obj="$(mktemp -d)"
trap 'rm -rf "$obj"' EXIT
export obj
printf '%s\n' "$jni"/src/*.cc | xargs -P "$(nproc)" -I{} sh -c 'g++ "$@" -c "{}" -o "$obj/$(basename "{}" .cc).o"' _ "${flags[@]}"
mkdir -p "$out"
for lib in "$torch"/lib/*.so*; do
  ln -sf "$lib" "$out/$(basename "$lib")"
done
g++ -shared -o "$out/libdjl_torch.so.tmp" "$obj"/*.o -L"$torch/lib" "${libs[@]}" -Wl,-rpath,"$torch/lib"
mv "$out/libdjl_torch.so.tmp" "$out/libdjl_torch.so"
echo "built $out/libdjl_torch.so against torch in $torch"
