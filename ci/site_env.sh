# Sourced by ci/gpu.sh and ci/gpu_quick.sh: with SPK_SITE set, pip installs go into that folder
# (the device machine's image is read-only) and Python and asv find them there.
pip_target=()
if [[ -n "${SPK_SITE:-}" ]]; then
  mkdir -p "$SPK_SITE"
  SPK_SITE=$(cd "$SPK_SITE" && pwd)
  pip_target=(--target "$SPK_SITE" --upgrade)
  export PYTHONPATH="$SPK_SITE${PYTHONPATH:+:$PYTHONPATH}"
  export ASV_PYTHONPATH="$PYTHONPATH"
fi
