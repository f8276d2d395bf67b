# The hardening Debian builds its packages with (dpkg-buildflags, DEB_BUILD_MAINT_OPTIONS=
# hardening=+all): _FORTIFY_SOURCE, -fstack-protector-strong, -Wformat -Werror=format-security,
# -fcf-protection (x86), RELRO with BIND_NOW (-Wl,-z,relro -Wl,-z,now) and PIE. Applied to every
# target of the project, so the default build (`cmake -S . -B build`), the package (CPack from
# that build) and the tests are built alike. Included once from the top-level CMakeLists.txt,
# before any target.
#
#   -DIPOPSEC_HARDENING=OFF   none of it (e.g. to compare, or for a toolchain that refuses a flag)
#
# Where dpkg-buildflags exists, its flags are taken at configure time, without the ones that are
# not hardening: -g and -O (the build type decides: RelWithDebInfo is -O2 -g) and
# -ffile-prefix-map (reproducible paths); elsewhere (or with -DIPOPSEC_DPKG_BUILDFLAGS=OFF) a
# fixed list of the same. Neither list
# overrides what CMAKE_CXX_FLAGS already holds (CXXFLAGS from the environment, e.g. under
# dpkg-buildpackage): a _FORTIFY_SOURCE level given there wins.
#
# _FORTIFY_SOURCE needs optimisation (glibc warns without it, which -Werror would make fatal), so
# it is left out of the Debug build type; and out of sanitizer builds (-fsanitize= in
# CMAKE_CXX_FLAGS, scripts/test's Sanitize build): the checked __*_chk functions would hide
# accesses from AddressSanitizer's own interceptors.

option(IPOPSEC_HARDENING "Build with Debian's hardening flags (dpkg-buildflags hardening=+all)" ON)
if(NOT IPOPSEC_HARDENING)
  message(STATUS "Hardening: off (IPOPSEC_HARDENING=OFF)")
  return()
endif()

include(CheckCXXCompilerFlag)
include(CheckPIESupported)

set(_ipopsec_cpp "")
set(_ipopsec_cxx "")
set(_ipopsec_ld "")
find_program(IPOPSEC_DPKG_BUILDFLAGS dpkg-buildflags)
mark_as_advanced(IPOPSEC_DPKG_BUILDFLAGS)
if(IPOPSEC_DPKG_BUILDFLAGS)
  # An operator's own DEB_BUILD_MAINT_OPTIONS come after hardening=+all, so they can turn a
  # feature off again (hardening=-fortify).
  set(_ipopsec_maint "hardening=+all $ENV{DEB_BUILD_MAINT_OPTIONS}")
  foreach(var CPPFLAGS CXXFLAGS LDFLAGS)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env "DEB_BUILD_MAINT_OPTIONS=${_ipopsec_maint}"
                            ${IPOPSEC_DPKG_BUILDFLAGS} --get ${var}
                    OUTPUT_VARIABLE _ipopsec_out RESULT_VARIABLE _ipopsec_rc ERROR_VARIABLE _ipopsec_err
                    OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(NOT _ipopsec_rc EQUAL 0)
      message(FATAL_ERROR "Hardening: '${IPOPSEC_DPKG_BUILDFLAGS} --get ${var}' failed (${_ipopsec_rc}): "
                          "${_ipopsec_err}; configure with -DIPOPSEC_HARDENING=OFF to build without it")
    endif()
    separate_arguments(_ipopsec_out UNIX_COMMAND "${_ipopsec_out}")
    list(FILTER _ipopsec_out EXCLUDE REGEX "^-(g.*|O.*|ffile-prefix-map=.*|fdebug-prefix-map=.*|fmacro-prefix-map=.*)$")
    if(var STREQUAL "CPPFLAGS")
      set(_ipopsec_cpp ${_ipopsec_out})
    elseif(var STREQUAL "CXXFLAGS")
      set(_ipopsec_cxx ${_ipopsec_out})
    else()
      set(_ipopsec_ld ${_ipopsec_out})
    endif()
  endforeach()
  set(_ipopsec_from "dpkg-buildflags")
else()
  set(_ipopsec_cpp -D_FORTIFY_SOURCE=2)
  set(_ipopsec_cxx -fstack-protector-strong -Wformat -Werror=format-security)
  set(_ipopsec_ld -Wl,-z,relro -Wl,-z,now)
  check_cxx_compiler_flag(-fstack-clash-protection IPOPSEC_HAS_STACK_CLASH)
  if(IPOPSEC_HAS_STACK_CLASH)
    list(APPEND _ipopsec_cxx -fstack-clash-protection)
  endif()
  set(_ipopsec_from "a fixed list (no dpkg-buildflags)")
endif()

# Control-flow protection (CET) on x86: dpkg-buildflags gives it from dpkg 1.22 (Debian 13) on.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i.86)$" AND NOT "-fcf-protection" IN_LIST _ipopsec_cxx)
  check_cxx_compiler_flag(-fcf-protection IPOPSEC_HAS_CF_PROTECTION)
  if(IPOPSEC_HAS_CF_PROTECTION)
    list(APPEND _ipopsec_cxx -fcf-protection)
  endif()
endif()

# What the command line already decides is kept.
set(_ipopsec_given "${CMAKE_CXX_FLAGS}")
set(_ipopsec_notes "")
if(_ipopsec_given MATCHES "-fsanitize=")
  list(FILTER _ipopsec_cpp EXCLUDE REGEX "_FORTIFY_SOURCE")
  list(APPEND _ipopsec_notes "no _FORTIFY_SOURCE: a sanitizer build")
elseif(_ipopsec_given MATCHES "_FORTIFY_SOURCE")
  list(FILTER _ipopsec_cpp EXCLUDE REGEX "_FORTIFY_SOURCE")
  list(APPEND _ipopsec_notes "_FORTIFY_SOURCE as CMAKE_CXX_FLAGS gives it")
endif()
string(REPLACE ";" " " _ipopsec_shown "${_ipopsec_cpp};${_ipopsec_cxx};${_ipopsec_ld};PIE")
if(CMAKE_BUILD_TYPE STREQUAL "Debug" AND _ipopsec_cpp MATCHES "_FORTIFY_SOURCE")
  list(APPEND _ipopsec_notes "_FORTIFY_SOURCE not in the Debug build type")
endif()
# _FORTIFY_SOURCE only where the compiler optimises (not in the Debug build type).
list(TRANSFORM _ipopsec_cpp REPLACE "^(-D_FORTIFY_SOURCE.*)$" "$<$<NOT:$<CONFIG:Debug>>:\\1>")

add_compile_options(${_ipopsec_cpp} ${_ipopsec_cxx})
add_link_options(${_ipopsec_ld})
# PIE: every object position-independent and executables linked with -pie (Debian's GCC does
# both by default; an upstream compiler may not).
check_pie_supported(LANGUAGES CXX)
set(CMAKE_POSITION_INDEPENDENT_CODE ON)

if(_ipopsec_notes)
  string(REPLACE ";" "; " _ipopsec_notes " (${_ipopsec_notes})")
endif()
message(STATUS "Hardening (from ${_ipopsec_from}): ${_ipopsec_shown}${_ipopsec_notes}")
