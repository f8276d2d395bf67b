#pragma once
// Renderers for the racoon backend: /etc/ipsec-tools.conf (setkey(8) syntax) and
// /etc/racoon/racoon.conf (racoon.conf(5)). Pure and byte-for-byte deterministic: the
// same inputs give the same bytes, whatever the order of the policies; no timestamps.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/cidr.hpp"
#include "core/config.hpp"
#include "core/policy.hpp"

namespace ipopsec {

struct RenderedFile {
  std::string path;
  std::string content;
  unsigned mode = 0644;

  bool operator==(const RenderedFile&) const = default;
};

// A value that the target syntax cannot express (a '"' or a control character in a
// quoted string, an algorithm name that is not a bare word, a selector mixing address
// families, ...). The config validator rejects such values first; this is the backstop
// that keeps a malformed file from ever being written.
class RenderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// /etc/ipsec-tools.conf in setkey(8) syntax for these policies: `spdupdate` only, so it
// loads twice without error and never flushes what other software installed.
// Throws RenderError.
std::string renderSpd(const std::vector<Policy>& policies, const Config& cfg);

// /etc/racoon/racoon.conf. `localAddress` is the tap's address, used for a
// listen { isakmp ADDRESS [500]; } block when cfg.racoon.listenOnTap; nullopt -> no listen
// block (racoon then listens on every address). Throws RenderError.
std::string renderRacoonConf(const Config& cfg, const std::optional<IpAddress>& localAddress);

// Both files of the racoon backend: cfg.racoon.spdFile and cfg.racoon.config, mode 0644
// (neither holds a secret: the private key stays in its own file). Throws RenderError.
std::vector<RenderedFile> renderRacoonBackend(const std::vector<Policy>& policies, const Config& cfg,
                                              const std::optional<IpAddress>& localAddress);

// setkey's priority specification for a raw kernel XFRM priority ("prio 2147233648" for
// 250000). libipsec stores `prio N` as 0x80000000 - N, not as N: see render.cpp.
std::string setkeyPriority(std::uint32_t kernelPriority);

// A racoon `timeunit` duration: "8 hour", "90 min", "45 sec" (largest exact unit).
std::string racoonDuration(std::chrono::seconds d);

}  // namespace ipopsec
