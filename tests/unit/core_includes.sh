#!/usr/bin/env bash
# The dependency rule (docs/architecture.md): lib/core is pure. It includes no Asio or
# Boost, Linux or POSIX system, systemd, OpenSSL or spdlog header, and no header of the
# adapters (os/) or the daemon (daemon/). The build enforces the last part (the core's
# include root holds only core/); this test the first. Usage: core_includes.sh LIB_CORE_DIR
set -euo pipefail
dir=${1:?usage: core_includes.sh LIB_CORE_DIR}
[[ -d $dir ]] || { echo "FAIL: $dir is not a directory"; exit 1; }
shopt -s nullglob
files=("$dir"/*.cpp "$dir"/*.hpp)
(( ${#files[@]} > 0 )) || { echo "FAIL: no sources in $dir"; exit 1; }
# #include <...> or "..." naming one of these families (also asio.hpp, boost/..., sys/...).
forbidden='^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"](asio|boost|linux|sys|systemd|openssl|spdlog|os|daemon)(/|\.h|\.hpp|>|")'
if hits=$(grep -nE "$forbidden" "${files[@]}"); then
  echo "FAIL: lib/core includes headers the core must not depend on:"
  echo "$hits"
  exit 1
fi
echo "PASS: core_includes (${#files[@]} files, no Asio/Boost/Linux/sys/systemd/OpenSSL/spdlog/os/daemon header)"
