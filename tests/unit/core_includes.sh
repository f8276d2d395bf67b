#!/usr/bin/env bash
# The dependency rule (docs/architecture.md): lib/core is pure. It may include only
#   - the C++ standard library's headers (the fixed list below: <vector>, <cstdint>, ...;
#     not the C forms such as <stdio.h>, not POSIX or Linux headers),
#   - yaml-cpp's headers (<yaml-cpp/...>),
#   - its own headers, "core/..." naming a file that exists in lib/core.
# Everything else is refused: an allow-list, so <unistd.h>, <arpa/inet.h>, <fmt/...>, Asio,
# OpenSSL, spdlog, systemd and the adapters' "os/..." are all caught, and so is any header
# nobody thought of. The check is first shown to work on fixtures (one good file, and one
# bad file per kind of include it must refuse), then run on the core.
# Usage: core_includes.sh LIB_CORE_DIR
set -euo pipefail
dir=${1:?usage: core_includes.sh LIB_CORE_DIR}
[[ -d $dir ]] || { echo "FAIL: $dir is not a directory"; exit 1; }

# C++20's standard library headers ([headers] tables 24 and 25: C++ library headers and the
# C++ headers for C library facilities).
std_headers=(
  algorithm any array atomic barrier bit bitset charconv chrono codecvt compare complex
  concepts condition_variable coroutine deque exception execution expected filesystem format
  forward_list fstream functional future initializer_list iomanip ios iosfwd iostream istream
  iterator latch limits list locale map memory memory_resource mutex new numbers numeric
  optional ostream queue random ranges ratio regex scoped_allocator semaphore set
  shared_mutex source_location span sstream stack stdexcept stop_token streambuf string
  string_view syncstream system_error thread tuple type_traits typeindex typeinfo
  unordered_map unordered_set utility valarray variant vector version
  cassert cctype cerrno cfenv cfloat cinttypes climits clocale cmath csetjmp csignal cstdarg
  cstddef cstdint cstdio cstdlib cstring ctime cuchar cwchar cwctype
)
declare -A allowed_std=()
for h in "${std_headers[@]}"; do allowed_std[$h]=1; done

# check_dir CORE_DIR: prints one line per include outside the allow-list (file:line: text),
# returns 1 if there was any. Own headers are "core/X" with X a file under CORE_DIR.
check_dir() {
  local core=$1 bad=0 file n line target
  local files=()
  mapfile -t files < <(find "$core" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | sort)
  if (( ${#files[@]} == 0 )); then echo "$core: no sources"; return 1; fi
  for file in "${files[@]}"; do
    n=0
    while IFS= read -r line || [[ -n $line ]]; do
      n=$((n + 1))
      [[ $line =~ ^[[:space:]]*#[[:space:]]*include ]] || continue
      if [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\<([^>]+)\> ]]; then
        target=${BASH_REMATCH[1]}
        [[ -n ${allowed_std[$target]:-} ]] && continue
        [[ $target == yaml-cpp/* && $target != *..* ]] && continue
      elif [[ $line =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]]; then
        target=${BASH_REMATCH[1]}
        [[ $target == core/* && $target != *..* && -f $core/${target#core/} ]] && continue
      fi
      echo "${file#"$core"/}:$n: $line"
      bad=1
    done <"$file"
  done
  return $bad
}

fixtures=$(mktemp -d)
trap 'rm -rf "$fixtures"' EXIT

# 1. A core that keeps the rule passes.
mkdir -p "$fixtures/good"
cat >"$fixtures/good/a.hpp" <<'CPP'
#pragma once
#include <cstdint>
#include <string>
#  include   <vector>
CPP
cat >"$fixtures/good/a.cpp" <<'CPP'
#include "core/a.hpp"

#include <yaml-cpp/yaml.h>
#include <charconv>
CPP
if ! out=$(check_dir "$fixtures/good"); then
  echo "FAIL: the check refuses a core that keeps the rule:"; echo "$out"; exit 1
fi

# 2. Each include the rule forbids makes the check fail and is named (file:line).
forbidden=('<unistd.h>' '<arpa/inet.h>' '<netinet/in.h>' '<net/if.h>' '<fcntl.h>' '<fmt/format.h>'
           '<sys/socket.h>' '<linux/xfrm.h>' '<stdio.h>' '<asio.hpp>' '<boost/asio.hpp>'
           '<openssl/x509.h>' '<spdlog/spdlog.h>' '<systemd/sd-daemon.h>'
           '"os/netlink/netlink.hpp"' '"daemon/daemon.hpp"' '"core/missing.hpp"' '"core/../os/x.hpp"'
           '"a.hpp"' '<yaml-cpp/../unistd.h>' 'SOME_MACRO')
for inc in "${forbidden[@]}"; do
  rm -rf "$fixtures/bad"; cp -r "$fixtures/good" "$fixtures/bad"
  printf '#include <string>\n#include %s\n' "$inc" >>"$fixtures/bad/a.cpp"
  if out=$(check_dir "$fixtures/bad"); then
    echo "FAIL: the check accepts #include $inc"; exit 1
  fi
  if [[ $out != "a.cpp:6: #include $inc" ]]; then
    echo "FAIL: for #include $inc the check printed '$out', expected 'a.cpp:6: #include $inc'"; exit 1
  fi
done
echo "fixtures: a core within the rule passes; each of ${#forbidden[@]} forbidden includes is refused and named"

# 3. The core itself.
count=$(find "$dir" -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | wc -l)
if ! out=$(check_dir "$dir"); then
  echo "FAIL: lib/core includes headers outside its allow-list (standard C++, yaml-cpp, core/):"
  echo "$out"
  exit 1
fi
echo "PASS: core_includes ($count files in $dir include only standard C++, yaml-cpp and core/ headers)"
